"""The message after resolution and the one-question survey it carries (`FollowUp`)."""

from __future__ import annotations

import uuid

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from appease.issuance.models.customers import Customer
from feedback.models.cases import Case
from feedback.models.choices import Intervention


class FollowUp(models.Model):
    """The message after a resolved case, or after an appeasement given outside a case:
    thanks, and "was your problem solved?".

    Due in the database; the beat task hands due ones to the delivery outbox. The
    survey link carries a signed token naming this row; answering sets `answered_at`
    with a conditional update, so a link works once.
    """

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("Scheduled")
        SENT = "sent", _("Sent")
        ANSWERED = "answered", _("Answered")
        EXPIRED = "expired", _("No answer")
        SKIPPED = "skipped", _("Skipped")

    id = models.UUIDField(_("ID"), primary_key=True, default=uuid.uuid4, editable=False)
    # A resolved case's follow-up names the case; an appeasement given outside a case
    # (the customer panel, an automatic rule, the API, the sidebar) names the issuance.
    case = models.ForeignKey(
        Case, null=True, blank=True, on_delete=models.PROTECT, related_name="follow_ups", verbose_name=_("case")
    )
    issuance = models.ForeignKey(
        "appease.Issuance",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="follow_ups",
        verbose_name=_("appeasement"),
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="follow_ups", verbose_name=_("customer")
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.SCHEDULED)
    # What the case got in the round this follow-up asks about (the case's intervention
    # when it was resolved). A reopened case may get something else next round; its
    # answers are credited to what was actually tried. db_default for COPY-loaded rows.
    intervention = models.CharField(
        _("intervention"), max_length=15, choices=Intervention.choices, blank=True, default="", db_default=""
    )
    due_at = models.DateTimeField(_("due at"))
    expires_at = models.DateTimeField(_("expires at"), help_text=_("After this the survey link no longer works."))
    delivery = models.OneToOneField(
        "delivery.Delivery",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="follow_up",
        verbose_name=_("delivery"),
    )
    skip_reason = models.CharField(_("skip reason"), max_length=100, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)
    solved = models.BooleanField(_("solved"), null=True, blank=True)
    csat = models.PositiveSmallIntegerField(
        _("satisfaction"), null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    comment = models.TextField(_("comment"), blank=True, max_length=2000)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("follow-up")
        verbose_name_plural = _("follow-ups")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["due_at"], name="follow_up_due_idx", condition=Q(status="scheduled")),
            models.Index(fields=["expires_at"], name="follow_up_open_idx", condition=Q(status="sent")),
            models.Index(fields=["customer", "sent_at"]),
            # Answers since the last rollup refresh (reporting.services).
            models.Index(fields=["answered_at"], name="follow_up_answered_idx", condition=Q(answered_at__isnull=False)),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(csat__gte=1, csat__lte=5) | Q(csat=None), name="csat_1_to_5"),
            models.CheckConstraint(
                condition=Q(case__isnull=False) | Q(issuance__isnull=False), name="follow_up_names_case_or_issuance"
            ),
            # An appeasement given outside a case is asked about once, however many times
            # its message is sent or reported delivered.
            models.UniqueConstraint(
                fields=["issuance"], condition=Q(issuance__isnull=False), name="one_follow_up_per_appeasement"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.case or self.issuance} ({self.get_status_display()})"
