"""Every appeasement as an intervention with an outcome (`AppeasementOutcome`), and the
randomised experiments that give the recommendations unbiased evidence (`Experiment`).

One `AppeasementOutcome` row per thing given to a customer, whatever the path (the
customer panel, a case, an automatic rule, the API, the helpdesk sidebar): what was
given (the *arm*: one offer, or an apology), what it cost, the customer's segment
*when it was given*, and then what happened (solved? CSAT, redeemed, ordered again).
The recommendations learn from these rows and the recovery reports count them.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from appease.issuance.models.customers import AMOUNT, Customer, IncidentType
from feedback.models.cases import Case
from feedback.models.choices import Intervention
from feedback.models.surveys import FollowUp

APOLOGY_ARM = "apology"


def arm_key(offer) -> str:
    """The arm an offer is: `offer:<id>`, or `apology` for an apology (an apology offer,
    or the words of an apology template sent from a case): every apology costs nothing
    and is one arm, whatever its wording."""
    if offer is None or getattr(offer, "kind", None) == "apology":
        return APOLOGY_ARM
    return f"offer:{offer.pk}"


class Segment:
    """The bands a customer falls in when something is given to them."""

    TIERS = ["standard", "silver", "gold", "platinum"]  # ordered: a higher tier is worth more

    class Value(models.TextChoices):
        LOW = "low", _("Low value")
        MID = "mid", _("Mid value")
        HIGH = "high", _("High value")

    class Repeat(models.TextChoices):
        FIRST = "first", _("First incident")
        SECOND = "second", _("Second incident")
        MANY = "many", _("Three or more incidents")

    class Prior(models.TextChoices):
        NONE = "none", _("Never appeased")
        SOLVED = "solved", _("Last appeasement solved it")
        NOT_SOLVED = "not_solved", _("Last appeasement did not solve it")
        UNKNOWN = "unknown", _("Last appeasement unanswered")


class Experiment(models.Model):
    """A supervisor's randomised test for one incident type: a share of the eligible
    appeasements is assigned an arm at random (or by Thompson sampling), the rep sees
    the assigned arm and may override it with a reason."""

    class Method(models.TextChoices):
        RANDOM = "random", _("Equal random shares")
        THOMPSON = "thompson", _("Thompson sampling")

    name = models.CharField(_("name"), max_length=100)
    incident_type = models.CharField(_("incident type"), max_length=20, choices=IncidentType.choices)
    method = models.CharField(_("method"), max_length=10, choices=Method.choices, default=Method.RANDOM)
    share_percent = models.PositiveSmallIntegerField(
        _("share of appeasements"),
        default=10,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text=_("The share of eligible appeasements assigned an arm at random."),
    )
    offers = models.ManyToManyField(
        "coupons.Offer", blank=True, related_name="+", verbose_name=_("offers"), help_text=_("Each offer is an arm.")
    )
    apology_arm = models.BooleanField(
        _("apology-only arm"), default=True, help_text=_("A holdout arm: an apology and nothing else.")
    )
    stopped_arms = models.JSONField(
        _("stopped arms"), default=list, blank=True, help_text=_("Arms stopped as clearly worse; not assigned again.")
    )
    is_active = models.BooleanField(_("running"), default=True)
    started_at = models.DateTimeField(_("started at"), auto_now_add=True)
    stopped_at = models.DateTimeField(_("stopped at"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("created by"),
    )

    class Meta:
        verbose_name = _("experiment")
        verbose_name_plural = _("experiments")
        ordering = ["-started_at"]
        constraints = [
            # One running experiment per incident type: an appeasement is in one or none.
            models.UniqueConstraint(
                fields=["incident_type"], condition=Q(is_active=True), name="one_running_experiment_per_incident"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class AppeasementOutcome(models.Model):
    class Path(models.TextChoices):
        PANEL = "panel", _("Customer panel")
        CASE = "case", _("Case")
        RULE = "rule", _("Automatic rule")
        API = "api", _("API")
        SIDEBAR = "sidebar", _("Helpdesk sidebar")

    id = models.UUIDField(_("ID"), primary_key=True, default=uuid.uuid4, editable=False)
    issuance = models.OneToOneField(
        "appease.Issuance",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="outcome",
        verbose_name=_("appeasement"),
        help_text=_("Empty for an apology sent from a case without an offer."),
    )
    case = models.ForeignKey(
        Case, null=True, blank=True, on_delete=models.PROTECT, related_name="outcomes", verbose_name=_("case")
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="appeasement_outcomes", verbose_name=_("customer")
    )
    incident_type = models.CharField(_("incident type"), max_length=20, choices=IncidentType.choices)
    intervention = models.CharField(_("intervention"), max_length=15, choices=Intervention.choices)
    offer = models.ForeignKey(
        "coupons.Offer", null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("offer")
    )
    arm = models.CharField(_("arm"), max_length=40, help_text=_("`offer:<id>` or `apology`."))
    path = models.CharField(_("given from"), max_length=10, choices=Path.choices)
    currency = models.CharField(_("currency"), max_length=3)
    cost_amount = models.DecimalField(_("cost"), **AMOUNT, default=Decimal("0"))
    # The customer's segment when it was given (what the recommendation saw).
    tier = models.CharField(_("tier"), max_length=10, choices=Customer.Tier.choices)
    value_band = models.CharField(_("value band"), max_length=4, choices=Segment.Value.choices)
    repeat_band = models.CharField(_("repeat band"), max_length=6, choices=Segment.Repeat.choices)
    prior = models.CharField(_("earlier appeasements"), max_length=10, choices=Segment.Prior.choices)
    experiment = models.ForeignKey(
        Experiment,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="outcomes",
        verbose_name=_("experiment"),
    )
    assigned_arm = models.CharField(_("assigned arm"), max_length=40, blank=True)
    override_reason = models.CharField(_("override reason"), max_length=255, blank=True)
    # A ForeignKey, not one-to-one: a case's follow-up asks about everything the case got
    # in that round, so one answer is the outcome of each of them.
    follow_up = models.ForeignKey(
        FollowUp,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="outcomes",
        verbose_name=_("follow-up"),
        help_text=_("The follow-up whose answer is this appeasement's outcome."),
    )
    given_at = models.DateTimeField(_("given at"))
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)
    solved = models.BooleanField(_("solved"), null=True, blank=True)
    csat = models.PositiveSmallIntegerField(
        _("satisfaction"), null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    redeemed_at = models.DateTimeField(_("redeemed at"), null=True, blank=True)
    repurchased_at = models.DateTimeField(
        _("ordered again at"), null=True, blank=True, help_text=_("The first order within the repurchase window.")
    )

    class Meta:
        verbose_name = _("appeasement outcome")
        verbose_name_plural = _("appeasement outcomes")
        ordering = ["-given_at"]
        indexes = [
            models.Index(fields=["incident_type", "arm"]),
            models.Index(fields=["customer", "given_at"]),
            models.Index(fields=["given_at"]),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(csat__gte=1, csat__lte=5) | Q(csat=None), name="outcome_csat_1_to_5"),
        ]

    def __str__(self) -> str:
        return f"{self.get_incident_type_display()}: {self.arm}"

    @property
    def overridden(self) -> bool:
        return bool(self.assigned_arm) and self.assigned_arm != self.arm
