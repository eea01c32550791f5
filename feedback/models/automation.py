"""Events from the merchant's systems (`MerchantEvent`) and the rules that appease
automatically (`AutoRule`: an airline's meal voucher after a three-hour delay)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from appease.issuance.models.customers import AMOUNT


class AutoRule(models.Model):
    """Event type + condition → an offer for each affected customer, as the system,
    within a total budget and a per-customer cap, while active."""

    class Operator(models.TextChoices):
        ANY = "", _("always")
        GTE = ">=", "≥"
        GT = ">", ">"
        LTE = "<=", "≤"
        LT = "<", "<"
        EQ = "==", "="

    name = models.CharField(_("name"), max_length=100)
    event_type = models.CharField(_("event type"), max_length=50, db_index=True)
    condition_field = models.CharField(
        _("field"), max_length=50, blank=True, help_text=_("A field of the event's data, e.g. delay_minutes.")
    )
    condition_operator = models.CharField(
        _("operator"), max_length=2, choices=Operator.choices, blank=True, default=Operator.ANY
    )
    condition_value = models.CharField(_("value"), max_length=100, blank=True)
    offer = models.ForeignKey("coupons.Offer", on_delete=models.PROTECT, related_name="+", verbose_name=_("offer"))
    reason_code = models.ForeignKey(
        "appease.ReasonCode", on_delete=models.PROTECT, related_name="+", verbose_name=_("reason code")
    )
    budget_amount = models.DecimalField(_("total budget"), **AMOUNT, help_text=_("In the offer's currency, at cost."))
    spent_amount = models.DecimalField(_("spent"), **AMOUNT, default=Decimal("0"), editable=False)
    issued_count = models.PositiveIntegerField(_("issued"), default=0, editable=False)
    per_customer_cap = models.PositiveSmallIntegerField(
        _("per customer"), default=1, help_text=_("At most this many from this rule to one customer.")
    )
    active_from = models.DateTimeField(_("active from"), null=True, blank=True)
    active_until = models.DateTimeField(_("active until"), null=True, blank=True)
    is_paused = models.BooleanField(_("paused"), default=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("automatic appeasement rule")
        verbose_name_plural = _("automatic appeasement rules")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(spent_amount__lte=models.F("budget_amount")), name="auto_rule_within_budget"
            ),
            models.CheckConstraint(condition=Q(budget_amount__gte=0), name="auto_rule_budget_non_negative"),
        ]

    def __str__(self) -> str:
        return self.name

    ORDERING = (Operator.GTE, Operator.GT, Operator.LTE, Operator.LT)

    def clean(self) -> None:
        """A condition that can never be read the way it is written is refused, field by
        field, instead of silently never (or always) matching."""
        errors = {}
        field, operator, value = self.condition_field.strip(), self.condition_operator, self.condition_value.strip()
        if operator and not field:
            errors["condition_field"] = _("Name the event field the operator compares, e.g. delay_minutes.")
        if field and not operator:
            errors["condition_operator"] = _("Choose how to compare the field, or clear the field.")
        if operator in self.ORDERING:
            try:
                number = Decimal(value)
            except InvalidOperation:
                number = None
            if number is None or not number.is_finite():
                errors["condition_value"] = _("Give a number to compare with, e.g. 180.")
        elif operator == self.Operator.EQ and not value:
            errors["condition_value"] = _("Give the value to compare with.")
        if self.active_from and self.active_until and self.active_until <= self.active_from:
            errors["active_until"] = _("The end of the active window must be after its start.")
        if errors:
            raise ValidationError(errors)


class MerchantEvent(models.Model):
    """An event from the merchant's systems. (merchant, event id) is unique: the same
    event twice has no second effect."""

    merchant = models.ForeignKey(
        "coupons.Merchant", on_delete=models.PROTECT, related_name="events", verbose_name=_("merchant")
    )
    event_id = models.CharField(_("event id"), max_length=100)
    event_type = models.CharField(_("event type"), max_length=50)
    data = models.JSONField(_("data"), default=dict)
    occurred_at = models.DateTimeField(_("occurred at"), null=True, blank=True)
    received_at = models.DateTimeField(_("received at"), auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)
    result = models.JSONField(_("result"), default=dict, blank=True)

    class Meta:
        verbose_name = _("merchant event")
        verbose_name_plural = _("merchant events")
        ordering = ["-received_at"]
        constraints = [models.UniqueConstraint(fields=["merchant", "event_id"], name="one_event_per_id")]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id}"
