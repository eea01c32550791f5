"""An issuance: one appeasement given by a rep (or a rule) to a customer, and why."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from appease.delivery.models import Channel
from appease.issuance.models.customers import AMOUNT, Customer, ReasonCode


class Issuance(models.Model):
    """Redemption is the code's business (coupons owns it): an issuance reads as
    redeemed through its code, see `effective_status` and the issuance selectors."""

    class StartSource(models.TextChoices):
        """Where the complaint's clock started (the 60-second goal). Empty: not timed, or
        given before the source was recorded (the page's opening, then)."""

        CASE = "case", _("the case's opening")
        REP = "rep", _("the rep's Start")
        LINK = "link", _("the telephony or helpdesk link")
        API = "api", _("the API caller's time")
        EVENT = "event", _("the merchant event")

    class Status(models.TextChoices):
        PENDING_APPROVAL = "pending_approval", _("Waiting for approval")
        ISSUED = "issued", _("Issued")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Delivery failed")
        REJECTED = "rejected", _("Rejected")
        VOIDED = "voided", _("Voided")

    id = models.UUIDField(_("ID"), primary_key=True, default=uuid.uuid4, editable=False)
    csr = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="issuances",
        verbose_name=_("rep"),
        help_text=_("Empty when an automatic rule gave it."),
    )
    auto_rule = models.ForeignKey(
        "feedback.AutoRule",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="issuances",
        verbose_name=_("automatic rule"),
    )
    case = models.ForeignKey(
        "feedback.Case",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="issuances",
        verbose_name=_("case"),
    )
    event = models.ForeignKey(
        "feedback.MerchantEvent",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="issuances",
        verbose_name=_("event"),
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="issuances", verbose_name=_("customer")
    )
    offer = models.ForeignKey(
        "coupons.Offer", on_delete=models.PROTECT, related_name="issuances", verbose_name=_("offer")
    )
    reason_code = models.ForeignKey(
        ReasonCode, on_delete=models.PROTECT, related_name="issuances", verbose_name=_("reason code")
    )
    note = models.TextField(_("note"), blank=True, max_length=2000)
    apology_text = models.TextField(
        _("apology"),
        blank=True,
        max_length=2000,
        help_text=_("The rep's own words, sent instead of the default apology."),
    )
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    code = models.OneToOneField(
        "coupons.Code", null=True, blank=True, on_delete=models.PROTECT, related_name="issuance", verbose_name=_("code")
    )
    status = models.CharField(_("status"), max_length=20, choices=Status.choices)
    currency = models.CharField(_("currency"), max_length=3)
    face_value_amount = models.DecimalField(_("face value"), **AMOUNT)
    cost_amount = models.DecimalField(_("cost"), **AMOUNT)
    breached_limits = models.JSONField(
        _("breached limits"), default=list, blank=True, help_text=_("The limits that sent this issuance for approval.")
    )
    complaint_started_at = models.DateTimeField(_("complaint started"), null=True, blank=True)
    # db_default: rows written without the ORM (COPY, the benchmarks' SQL) get "" too.
    complaint_start_source = models.CharField(
        _("complaint clock started by"),
        max_length=5,
        choices=StartSource.choices,
        blank=True,
        default="",
        db_default="",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    issued_at = models.DateTimeField(_("issued at"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("decided by"),
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decision_comment = models.TextField(_("decision comment"), blank=True, max_length=2000)
    escalated_at = models.DateTimeField(_("escalated at"), null=True, blank=True)
    voided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("voided by"),
    )
    voided_at = models.DateTimeField(_("voided at"), null=True, blank=True)
    void_reason = models.CharField(_("void reason"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("issuance")
        verbose_name_plural = _("issuances")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["csr", "created_at"]),
            models.Index(fields=["customer", "created_at"]),
            models.Index(
                fields=["status", "created_at"], name="issuance_pending_idx", condition=Q(status="pending_approval")
            ),
            # Decisions and voids since the last rollup refresh (reporting.services).
            models.Index(fields=["decided_at"], name="issuance_decided_idx", condition=Q(decided_at__isnull=False)),
            models.Index(fields=["voided_at"], name="issuance_voided_idx", condition=Q(voided_at__isnull=False)),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(csr__isnull=False, auto_rule__isnull=True) | Q(csr__isnull=True, auto_rule__isnull=False),
                name="issuance_given_by_a_rep_or_a_rule",
            ),
            models.UniqueConstraint(
                fields=["auto_rule", "event", "customer"],
                condition=Q(auto_rule__isnull=False),
                name="one_auto_issuance_per_event_and_customer",
            ),
            models.CheckConstraint(condition=Q(face_value_amount__gte=0), name="issuance_face_non_negative"),
            models.CheckConstraint(condition=Q(cost_amount__gte=0), name="issuance_cost_non_negative"),
            models.CheckConstraint(
                condition=~Q(status="pending_approval") | Q(code__isnull=True),
                name="pending_issuance_has_no_code",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.offer} → {self.customer}"

    @property
    def given_by(self) -> str:
        """The rep's username, or the automatic rule's name."""
        return self.csr.get_username() if self.csr_id else f"auto: {self.auto_rule}"

    @property
    def redeemed_at(self):
        return self.code.redeemed_at if self.code_id else None

    @property
    def effective_status(self) -> str:
        if self.code_id and self.code.status == "redeemed":
            return "redeemed"
        return self.status

    @property
    def latest_delivery(self):
        """The newest delivery (prefetched `deliveries` are used when present)."""
        deliveries = getattr(self, "_prefetched_objects_cache", {}).get("deliveries")
        if deliveries is not None:
            return max(deliveries, key=lambda d: d.created_at, default=None)
        return self.deliveries.order_by("-created_at").first() if self.pk else None

    @property
    def seconds_to_issue(self) -> int | None:
        """From the complaint opening to the appeasement given: the 60-second goal."""
        if self.complaint_started_at is None or self.issued_at is None:
            return None
        return max(0, round((self.issued_at - self.complaint_started_at).total_seconds()))

    @property
    def approved_by(self):
        return self.decided_by if self.status not in (self.Status.PENDING_APPROVAL, self.Status.REJECTED) else None
