"""The delivery outbox: one row per message to send, the truth about its fate."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Channel(models.TextChoices):
    EMAIL = "email", _("Email")
    SMS = "sms", _("SMS")
    CHAT = "chat", _("Chat")
    SOCIAL = "social", _("Social message")


# The channels a customer is reached by are the four above (their preferred channel, an
# issuance's, a case's). A delivery may also go to a system: an outbound webhook to an
# endpoint a supervisor registered (appease/webhooks), with the endpoint's URL as its
# address and no customer. Only the outbox's own rows take this wider vocabulary.
WEBHOOK_CHANNEL = "webhook"
DELIVERY_CHANNELS = [*Channel.choices, (WEBHOOK_CHANNEL, _("Webhook"))]


# Why a delivery failed, as `Delivery.failure_reason` stores it (a machine code: the
# channel adapters' PermanentError reasons, "exhausted" or "unknown_kind" from the
# outbox, or the word a provider's status callback used), and the words a person reads.
FAILURE_REASON_LABELS = {
    "invalid_address": _("The address, number or handle does not exist"),
    "opted_out": _("The customer unsubscribed or blocked us"),
    "rejected": _("The provider refused the message"),
    "unauthorized": _("The provider refused our credentials"),
    "disabled": _("The channel is not set up"),
    "exhausted": _("Gave up after every attempt"),
    "unknown_kind": _("No app sends this kind of message"),
    "blocked_address": _("The endpoint is on a private network, which webhooks may not reach"),
    # provider callback words (Twilio and the chat/social webhooks)
    "failed": _("The provider could not send it"),
    "undelivered": _("The provider could not deliver it"),
    "bounced": _("The message bounced"),
}


def failure_reason_label(reason: str) -> str:
    """The translated words for a failure code; an unknown provider word as it came."""
    if not reason:
        return ""
    label = FAILURE_REASON_LABELS.get(reason)
    return str(label) if label is not None else reason


class Delivery(models.Model):
    """A message to a customer (or, of the `webhook` kind, to a registered endpoint).
    Written in the transaction that decided to send it;
    a Celery task claims it with a conditional update and a beat sweeper re-enqueues
    whatever is left behind (docs/adr/0006-delivery-outbox.md)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting to be sent")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed")
        DEAD = "dead", _("Gave up")

    class Kind(models.TextChoices):
        APPEASEMENT = "appeasement", _("Appeasement")
        FOLLOW_UP = "follow_up", _("Follow-up")
        WEBHOOK = "webhook", _("Webhook")

    id = models.UUIDField(_("ID"), primary_key=True, default=uuid.uuid4, editable=False)
    # The one caller the outbox still names: by the model's string (no import), for the
    # column the table always had. What an issuance does with its deliveries is the
    # issuance app's, through the `appeasement` kind it registers (appease/delivery/kinds.py).
    issuance = models.ForeignKey(
        "appease.Issuance",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="deliveries",
        verbose_name=_("issuance"),
    )
    # Every message to a customer has one; a webhook (to a system, not a person) has none,
    # which the `customer_unless_webhook` constraint allows for that kind only.
    customer = models.ForeignKey(
        "appease.Customer",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="deliveries",
        verbose_name=_("customer"),
    )
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices, default=Kind.APPEASEMENT)
    channel = models.CharField(_("channel"), max_length=10, choices=DELIVERY_CHANNELS)
    address = models.CharField(_("address"), max_length=255, help_text=_("Where it was sent, as it was then."))
    language = models.CharField(_("language"), max_length=10)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    attempts_before_requeue = models.PositiveSmallIntegerField(
        _("attempts before the last requeue"),
        default=0,
        db_default=0,  # rows written by raw SQL or COPY (generated history, benchmarks) get it too
        help_text=_("The retry horizon and the attempt limit count from the attempt after these."),
    )
    next_attempt_at = models.DateTimeField(
        _("next attempt at"), help_text=_("Due time: the sweeper sends it from then on.")
    )
    lease_expires_at = models.DateTimeField(_("lease expires at"), null=True, blank=True)
    provider_message_id = models.CharField(_("provider message ID"), max_length=255, blank=True)
    failure_reason = models.CharField(_("failure reason"), max_length=40, blank=True)
    last_error = models.CharField(_("last error"), max_length=255, blank=True)
    resend_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="resends", verbose_name=_("resend of")
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("requested by"),
    )
    request_id = models.CharField(_("request ID"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    failed_at = models.DateTimeField(_("failed at"), null=True, blank=True)

    class Meta:
        db_table = "appease_delivery"  # the table it had in the appease app (ADR 0010)
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["next_attempt_at"], name="delivery_due_idx", condition=Q(status="pending")),
            models.Index(fields=["lease_expires_at"], name="delivery_lease_idx", condition=Q(status="sending")),
            models.Index(fields=["provider_message_id"], name="delivery_provider_id_idx"),
            models.Index(fields=["status", "created_at"], name="delivery_dead_idx", condition=Q(status="dead")),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind="appeasement") | Q(issuance__isnull=False), name="appeasement_has_an_issuance"
            ),
            models.CheckConstraint(
                condition=~Q(status="sending") | Q(lease_expires_at__isnull=False), name="sending_has_a_lease"
            ),
            models.CheckConstraint(
                condition=Q(kind="webhook") | Q(customer__isnull=False), name="customer_unless_webhook"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} by {self.channel} ({self.get_status_display()})"

    @property
    def failure_reason_label(self) -> str:
        return failure_reason_label(self.failure_reason)

    @property
    def idempotency_key(self) -> str:
        """Stable across attempts: a provider that honours it drops a duplicate send."""
        return f"delivery-{self.pk}"


class DeliveryAttempt(models.Model):
    """One try at sending: when, how, and what the provider answered. Append-only."""

    class Outcome(models.TextChoices):
        SENT = "sent", _("Sent")
        TRANSIENT = "transient", _("Temporary failure")
        PERMANENT = "permanent", _("Permanent failure")

    delivery = models.ForeignKey(
        Delivery, on_delete=models.PROTECT, related_name="attempt_log", verbose_name=_("delivery")
    )
    number = models.PositiveSmallIntegerField(_("number"))
    channel = models.CharField(_("channel"), max_length=10, choices=DELIVERY_CHANNELS)
    started_at = models.DateTimeField(_("started at"))
    finished_at = models.DateTimeField(_("finished at"))
    outcome = models.CharField(_("outcome"), max_length=10, choices=Outcome.choices)
    status_code = models.PositiveIntegerField(
        _("status code"), null=True, blank=True, help_text=_("HTTP status or SMTP reply code.")
    )
    detail = models.CharField(_("detail"), max_length=255, blank=True)

    class Meta:
        db_table = "appease_deliveryattempt"  # the table it had in the appease app (ADR 0010)
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")
        ordering = ["delivery", "number"]

    def __str__(self) -> str:
        return f"#{self.number} {self.outcome}"


class DeliveryStatusEvent(models.Model):
    """A provider's status callback (delivered, failed, bounced), as received."""

    delivery = models.ForeignKey(
        Delivery, on_delete=models.PROTECT, related_name="status_events", verbose_name=_("delivery")
    )
    status = models.CharField(_("status"), max_length=20)
    provider_status = models.CharField(_("provider status"), max_length=50, blank=True)
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)

    class Meta:
        db_table = "appease_deliverystatusevent"  # the table it had in the appease app (ADR 0010)
        verbose_name = _("delivery status callback")
        verbose_name_plural = _("delivery status callbacks")
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.provider_status} → {self.status}"
