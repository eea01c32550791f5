"""Outbound webhooks: the endpoints, the events, and which delivery carries which event
to which endpoint (docs/adr/0011-outbound-webhooks.md)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class EventType(models.TextChoices):
    """The event vocabulary an endpoint subscribes to (docs/integrations.md)."""

    ISSUANCE_CREATED = "issuance.created", _("Issuance created")
    ISSUANCE_APPROVED = "issuance.approved", _("Issuance approved")
    ISSUANCE_REJECTED = "issuance.rejected", _("Issuance rejected")
    ISSUANCE_VOIDED = "issuance.voided", _("Issuance voided")
    DELIVERY_SENT = "delivery.sent", _("Message sent to the customer")
    DELIVERY_FAILED = "delivery.failed", _("Message to the customer failed")
    REDEMPTION_CREATED = "redemption.created", _("Code redeemed")
    REDEMPTION_REVERSED = "redemption.reversed", _("Redemption reversed")
    CASE_OPENED = "case.opened", _("Case opened")
    CASE_RESOLVED = "case.resolved", _("Case resolved")
    FOLLOW_UP_ANSWERED = "follow_up.answered", _("Follow-up answered")
    ANOMALY_FLAGGED = "anomaly.flagged", _("Anomaly flagged")


class WebhookEndpoint(models.Model):
    """Where events go, and which. The signing secret must be readable to sign, so it is
    stored encrypted with CODE_ENCRYPTION_KEYS (as codes are, ADR 0002), never hashed,
    and shown once, when made. After a rotation the previous secret still signs until
    `previous_secret_expires_at` (both signatures are sent)."""

    url = models.URLField(_("URL"), max_length=255)
    events = models.JSONField(_("events"), default=list, help_text=_("The event types it receives."))
    is_active = models.BooleanField(_("active"), default=True)
    description = models.CharField(_("description"), max_length=200, blank=True)
    secret_encrypted = models.TextField(_("secret (encrypted)"), editable=False)
    previous_secret_encrypted = models.TextField(_("previous secret (encrypted)"), blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(
        _("previous secret valid until"), null=True, blank=True, editable=False
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    # Deleting keeps the row (its deliveries point at it); a deleted endpoint gets nothing.
    deleted_at = models.DateTimeField(_("deleted at"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.url


class WebhookEvent(models.Model):
    """Something that happened, as endpoints receive it. Append-only; `id` is what a
    receiver deduplicates on (a delivery may arrive more than once)."""

    id = models.UUIDField(_("ID"), primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(_("type"), max_length=40, choices=EventType.choices)
    created = models.DateTimeField(_("created"), db_index=True)
    payload = models.JSONField(_("payload"), help_text=_("The event's `data`, as sent."))

    class Meta:
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.type} {self.pk}"


class WebhookDelivery(models.Model):
    """One event to one endpoint: the outbox's `webhook` delivery row carries it."""

    delivery = models.OneToOneField(
        "delivery.Delivery", on_delete=models.PROTECT, related_name="webhook", verbose_name=_("delivery")
    )
    event = models.ForeignKey(
        WebhookEvent, on_delete=models.PROTECT, related_name="deliveries", verbose_name=_("event")
    )
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.PROTECT, related_name="deliveries", verbose_name=_("endpoint")
    )

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="one_delivery_per_event_and_endpoint"),
        ]

    def __str__(self) -> str:
        return f"{self.event.type} → {self.endpoint.url}"
