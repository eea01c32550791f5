"""What a rep may give: limit policies, their budgets per currency, and the counters
that spend them."""

from __future__ import annotations

import zoneinfo
from decimal import Decimal
from functools import cache

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from appease.issuance.models.customers import AMOUNT


class Team(models.Model):
    name = models.CharField(_("name"), max_length=100, unique=True)

    class Meta:
        verbose_name = _("team")
        verbose_name_plural = _("teams")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class LimitPolicy(models.Model):
    """Bounds on what a rep gives. Applies to a user directly (their staff profile) or,
    by default, to every member of a group."""

    class OverLimit(models.TextChoices):
        APPROVAL = "approval", _("Send to a supervisor for approval")
        REFUSE = "refuse", _("Refuse")

    name = models.CharField(_("name"), max_length=100, unique=True)
    group = models.OneToOneField(
        Group,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="limit_policy",
        verbose_name=_("default for group"),
        help_text=_("Members of this group get this policy unless their profile names another."),
    )
    over_limit = models.CharField(
        _("over a limit"), max_length=10, choices=OverLimit.choices, default=OverLimit.APPROVAL
    )
    max_issuances_per_customer = models.PositiveIntegerField(
        _("max appeasements per customer"),
        null=True,
        blank=True,
        help_text=_("Across all reps, in the rolling window below. Empty for no limit."),
    )
    customer_window_days = models.PositiveIntegerField(
        _("customer window (days)"), default=30, validators=[MinValueValidator(1)]
    )
    allowed_offers = models.ManyToManyField(
        "coupons.Offer",
        blank=True,
        related_name="+",
        verbose_name=_("offers this policy may give"),
        help_text=_("Empty: every active offer."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("limit policy")
        verbose_name_plural = _("limit policies")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class LimitBudget(models.Model):
    """A policy's limits in one currency. Empty means no limit."""

    policy = models.ForeignKey(LimitPolicy, on_delete=models.CASCADE, related_name="budgets", verbose_name=_("policy"))
    currency = models.CharField(_("currency"), max_length=3, default=settings.DEFAULT_CURRENCY)
    max_face_per_issuance_amount = models.DecimalField(
        _("max face value per issuance"), **AMOUNT, null=True, blank=True
    )
    day_cost_amount = models.DecimalField(_("cost per day"), **AMOUNT, null=True, blank=True)
    week_cost_amount = models.DecimalField(_("cost per week"), **AMOUNT, null=True, blank=True)
    month_cost_amount = models.DecimalField(_("cost per month"), **AMOUNT, null=True, blank=True)
    day_face_amount = models.DecimalField(_("face value per day"), **AMOUNT, null=True, blank=True)
    week_face_amount = models.DecimalField(_("face value per week"), **AMOUNT, null=True, blank=True)
    month_face_amount = models.DecimalField(_("face value per month"), **AMOUNT, null=True, blank=True)

    class Meta:
        verbose_name = _("budget")
        verbose_name_plural = _("budgets")
        constraints = [models.UniqueConstraint(fields=["policy", "currency"], name="one_budget_per_currency")]

    def __str__(self) -> str:
        return f"{self.policy} · {self.currency}"

    def limit(self, period: str, measure: str) -> Decimal | None:
        return getattr(self, f"{period}_{measure}_amount")


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def validate_time_zone(value: str) -> None:
    """A zone the server's tz database knows (zoneinfo.available_timezones)."""
    if value and value not in _time_zones():
        raise ValidationError(
            _("“%(value)s” is not a time zone name; use one like Europe/Madrid or America/Sao_Paulo."),
            code="invalid_time_zone",
            params={"value": value},
        )


def validate_languages(value) -> None:
    known = {code for code, _name in settings.LANGUAGES}
    if not isinstance(value, list) or any(code not in known for code in value):
        raise ValidationError(_("Choose among: %(languages)s.") % {"languages": ", ".join(sorted(known))})


class StaffProfile(models.Model):
    """A rep's or supervisor's settings: team, limit policy override, language, zone."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile", verbose_name=_("user")
    )
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="members", verbose_name=_("team")
    )
    policy = models.ForeignKey(
        LimitPolicy,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="staffprofile_users",
        verbose_name=_("limit policy"),
        help_text=_("Overrides the policy of the user's group."),
    )
    language = models.CharField(_("language"), max_length=10, choices=settings.LANGUAGES, blank=True)
    languages = models.JSONField(
        _("languages worked in"),
        default=list,
        blank=True,
        validators=[validate_languages],
        help_text=_("The languages this person serves customers in: “Next case” prefers cases in them. Empty: any."),
    )
    time_zone = models.CharField(
        _("time zone"),
        max_length=64,
        blank=True,
        validators=[validate_time_zone],
        help_text=_("An IANA name such as Europe/Madrid or America/Sao_Paulo. “Today's budget” follows this zone."),
    )

    class Meta:
        verbose_name = _("staff profile")
        verbose_name_plural = _("staff profiles")

    def __str__(self) -> str:
        return str(self.user)


class BudgetCounter(models.Model):
    """What one user has spent in one currency in one period (day, week or month).

    Spent by one conditional UPDATE that also checks the limit; never read-then-write.
    """

    class Period(models.TextChoices):
        DAY = "day", _("Day")
        WEEK = "week", _("Week")
        MONTH = "month", _("Month")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="budget_counters", verbose_name=_("user")
    )
    currency = models.CharField(_("currency"), max_length=3)
    period = models.CharField(_("period"), max_length=5, choices=Period.choices)
    period_start = models.DateField(_("period start"))
    spent_cost_amount = models.DecimalField(_("spent cost"), **AMOUNT, default=Decimal("0"))
    spent_face_amount = models.DecimalField(_("spent face value"), **AMOUNT, default=Decimal("0"))
    issuances_count = models.PositiveIntegerField(_("issuances count"), default=0)

    class Meta:
        verbose_name = _("budget counter")
        verbose_name_plural = _("budget counters")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "currency", "period", "period_start"], name="one_counter_per_period"
            ),
            models.CheckConstraint(condition=Q(spent_cost_amount__gte=0), name="counter_cost_non_negative"),
            models.CheckConstraint(condition=Q(spent_face_amount__gte=0), name="counter_face_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.period} {self.period_start} {self.currency}"
