"""Rollups: the report figures per day, kept by `reporting.rollups` so the dashboards
read a few thousand rows instead of every issuance (the Zulip `analytics` pattern).

Each table holds, per day (in REPORTING_TIME_ZONE) and per combination of its
dimensions, the same measures the live queries compute; the live tables stay the truth
and a rollup day is always rewritten whole from them. No table has a rep *and* an
offer or channel: with 200 reps such a row would be nearly one per issuance. What
each table can answer, and when the reports fall back to the live tables, is in
docs/reporting.md ("Rollups").
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from appease.delivery.selectors import Channel
from appease.issuance.selectors import IncidentType
from feedback.selectors import Intervention, Priority

AMOUNT = {"max_digits": 18, "decimal_places": 4, "default": 0}


def _fk(to: str, **extra) -> models.ForeignKey:
    # No database constraint: a rollup row is rewritten from the live tables, which
    # already hold the references; it must never block or cascade into them.
    return models.ForeignKey(to, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+", **extra)


class DayRow(models.Model):
    """A rollup row: the figures of one day (REPORTING_TIME_ZONE)."""

    day = models.DateField(_("day"))

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self._meta.verbose_name} {self.day.isoformat()}"


class IssuanceMeasures(DayRow):
    """What is counted of the issuances of one day and one combination of dimensions.

    Only appeasements the customer got (issued, delivered, or delivered and then failed)
    count in `issuances` and the money; the approvals count every issuance that needed
    a supervisor.
    """

    currency = models.CharField(_("currency"), max_length=3)
    issuances = models.PositiveIntegerField(_("issuances"), default=0)
    face_value_amount = models.DecimalField(_("face value"), **AMOUNT)
    cost_amount = models.DecimalField(_("cost"), **AMOUNT)
    with_code = models.PositiveIntegerField(_("with code"), default=0)
    used = models.PositiveIntegerField(_("used"), default=0)
    redeemed_amount = models.DecimalField(_("redeemed"), **AMOUNT)
    timed = models.PositiveIntegerField(_("timed"), default=0)
    within_goal = models.PositiveIntegerField(_("within goal"), default=0)
    # The same per start of the clock (Issuance.StartSource); what is left of `timed` was
    # timed from the CSR page's opening, before the start was recorded.
    timed_case = models.PositiveIntegerField(_("timed from the case"), default=0)
    within_goal_case = models.PositiveIntegerField(_("within goal from the case"), default=0)
    timed_rep = models.PositiveIntegerField(_("timed from the rep's start"), default=0)
    within_goal_rep = models.PositiveIntegerField(_("within goal from the rep's start"), default=0)
    timed_link = models.PositiveIntegerField(_("timed from a link"), default=0)
    within_goal_link = models.PositiveIntegerField(_("within goal from a link"), default=0)
    timed_api = models.PositiveIntegerField(_("timed from the API caller"), default=0)
    within_goal_api = models.PositiveIntegerField(_("within goal from the API caller"), default=0)
    timed_event = models.PositiveIntegerField(_("timed from the event"), default=0)
    within_goal_event = models.PositiveIntegerField(_("within goal from the event"), default=0)
    approvals_requested = models.PositiveIntegerField(_("approvals requested"), default=0)
    approvals_granted = models.PositiveIntegerField(_("approvals granted"), default=0)
    approvals_rejected = models.PositiveIntegerField(_("approvals rejected"), default=0)
    approvals_waiting = models.PositiveIntegerField(_("approvals waiting"), default=0)

    class Meta:
        abstract = True


class IssuanceDayBase(IssuanceMeasures):
    """Per day, reason code, offer, channel, currency and the day the codes expire (no rep).

    The open codes (issued, not redeemed, not voided) are as of the day's last rewrite;
    with `expires_on` beside them the outstanding liability needs no rewrite when a
    code expires: it is the open codes of the rows that expire today or later.
    """

    reason_code = _fk("appease.ReasonCode", verbose_name=_("reason code"))
    incident_type = models.CharField(
        _("incident type"), max_length=20, choices=IncidentType.choices
    )  # the reason code's
    offer = _fk("coupons.Offer", verbose_name=_("offer"))
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    expires_on = models.DateField(_("expires on"), null=True, blank=True)
    open_codes = models.PositiveIntegerField(_("open codes"), default=0)
    open_face_amount = models.DecimalField(_("open face value"), **AMOUNT)  # coupons: their face value
    open_balance_amount = models.DecimalField(_("open balance"), **AMOUNT)  # gift cards: what is left on them

    class Meta:
        abstract = True


class IssuanceDay(IssuanceDayBase):
    class Meta:
        verbose_name = _("issuances per day")
        verbose_name_plural = _("issuances per day")
        indexes = [models.Index(fields=["day"])]


class TeamIssuanceDay(IssuanceDayBase):
    """The same per team (the rep's, at the day's last rewrite): a team's report per
    offer or channel, which no per-rep rollup holds."""

    team = _fk("appease.Team", null=True, verbose_name=_("team"))

    class Meta:
        verbose_name = _("team issuances per day")
        verbose_name_plural = _("team issuances per day")
        indexes = [models.Index(fields=["team", "day"])]


class RepDay(IssuanceMeasures):
    """Per day, rep and currency; `csr` is empty for automatic rules."""

    csr = _fk(settings.AUTH_USER_MODEL, null=True, verbose_name=_("rep"))

    class Meta:
        verbose_name = _("rep issuances per day")
        verbose_name_plural = _("rep issuances per day")
        indexes = [models.Index(fields=["day"]), models.Index(fields=["csr", "day"])]


class RepReasonDay(IssuanceMeasures):
    """Per day, rep, reason code and currency: the per-rep charts stacked by reason."""

    csr = _fk(settings.AUTH_USER_MODEL, null=True, verbose_name=_("rep"))
    reason_code = _fk("appease.ReasonCode", verbose_name=_("reason code"))
    incident_type = models.CharField(
        _("incident type"), max_length=20, choices=IncidentType.choices
    )  # the reason code's

    class Meta:
        verbose_name = _("rep issuances per reason and day")
        verbose_name_plural = _("rep issuances per reason and day")
        indexes = [models.Index(fields=["day"]), models.Index(fields=["csr", "day"])]


class DeliveryDayBase(DayRow):
    """Deliveries of appeasements per day the appeasement was given, by its reason,
    offer and channel, the channel it went through, and how it failed (if it did)."""

    reason_code = _fk("appease.ReasonCode", verbose_name=_("reason code"))
    incident_type = models.CharField(
        _("incident type"), max_length=20, choices=IncidentType.choices
    )  # the reason code's
    offer = _fk("coupons.Offer", verbose_name=_("offer"))
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    delivery_channel = models.CharField(_("delivery channel"), max_length=10, choices=Channel.choices)
    failure_status = models.CharField(_("failure status"), max_length=10, blank=True)  # failed or dead; blank otherwise
    failure_reason = models.CharField(_("failure reason"), max_length=40, blank=True)
    deliveries = models.PositiveIntegerField(_("deliveries"), default=0)
    sent = models.PositiveIntegerField(_("sent"), default=0)
    sent_within_10 = models.PositiveIntegerField(_("sent within 10 s"), default=0)
    sent_within_60 = models.PositiveIntegerField(_("sent within 60 s"), default=0)
    sent_within_300 = models.PositiveIntegerField(_("sent within 300 s"), default=0)
    sent_within_3600 = models.PositiveIntegerField(_("sent within 3600 s"), default=0)

    class Meta:
        abstract = True


class DeliveryDay(DeliveryDayBase):
    class Meta:
        verbose_name = _("deliveries per day")
        verbose_name_plural = _("deliveries per day")
        indexes = [models.Index(fields=["day"])]


class TeamDeliveryDay(DeliveryDayBase):
    team = _fk("appease.Team", null=True, verbose_name=_("team"))

    class Meta:
        verbose_name = _("team deliveries per day")
        verbose_name_plural = _("team deliveries per day")
        indexes = [models.Index(fields=["team", "day"])]


class CaseDayBase(DayRow):
    """Cases per day opened, incident type, priority and channel, with where they stand."""

    incident_type = models.CharField(_("incident type"), max_length=20, choices=IncidentType.choices)
    priority = models.CharField(_("priority"), max_length=10, choices=Priority.choices)
    channel = models.CharField(_("channel"), max_length=10, blank=True)
    cases = models.PositiveIntegerField(_("cases"), default=0)
    first_breached = models.PositiveIntegerField(_("first breached"), default=0)
    resolution_breached = models.PositiveIntegerField(_("resolution breached"), default=0)
    confirmed = models.PositiveIntegerField(_("confirmed"), default=0)
    unconfirmed = models.PositiveIntegerField(_("unconfirmed"), default=0)
    resolved_waiting = models.PositiveIntegerField(_("resolved waiting"), default=0)
    still_open = models.PositiveIntegerField(_("still open"), default=0)
    reopened = models.PositiveIntegerField(_("reopened"), default=0)

    class Meta:
        abstract = True


class CaseDay(CaseDayBase):
    class Meta:
        verbose_name = _("cases per day")
        verbose_name_plural = _("cases per day")
        indexes = [models.Index(fields=["day"])]


class TeamCaseDay(CaseDayBase):
    """The same per team of the rep the case is assigned to."""

    team = _fk("appease.Team", null=True, verbose_name=_("team"))

    class Meta:
        verbose_name = _("team cases per day")
        verbose_name_plural = _("team cases per day")
        indexes = [models.Index(fields=["team", "day"])]


class RepCaseDay(DayRow):
    """Cases per day opened and rep they are assigned to: the cases a rep handled."""

    assigned_to = _fk(settings.AUTH_USER_MODEL, null=True, verbose_name=_("assigned to"))
    cases = models.PositiveIntegerField(_("cases"), default=0)

    class Meta:
        verbose_name = _("rep cases per day")
        verbose_name_plural = _("rep cases per day")
        indexes = [models.Index(fields=["day"]), models.Index(fields=["assigned_to", "day"])]


class OutcomeDayBase(DayRow):
    """Answered follow-ups per day the case was opened, its incident type and channel,
    and the intervention the customer was answering about."""

    incident_type = models.CharField(_("incident type"), max_length=20, choices=IncidentType.choices)
    channel = models.CharField(_("channel"), max_length=10, blank=True)
    intervention = models.CharField(_("intervention"), max_length=15, choices=Intervention.choices, blank=True)
    answers = models.PositiveIntegerField(_("answers"), default=0)
    solved = models.PositiveIntegerField(_("solved"), default=0)
    csat_answers = models.PositiveIntegerField(_("CSAT answers"), default=0)
    csat_total = models.PositiveIntegerField(_("CSAT total"), default=0)

    class Meta:
        abstract = True


class OutcomeDay(OutcomeDayBase):
    class Meta:
        verbose_name = _("outcomes per day")
        verbose_name_plural = _("outcomes per day")
        indexes = [models.Index(fields=["day"])]


class TeamOutcomeDay(OutcomeDayBase):
    team = _fk("appease.Team", null=True, verbose_name=_("team"))

    class Meta:
        verbose_name = _("team outcomes per day")
        verbose_name_plural = _("team outcomes per day")
        indexes = [models.Index(fields=["team", "day"])]


class RecoveryCostDayBase(DayRow):
    """What the appeasements given from cases cost, per day the case was opened, its
    incident type, channel and intervention, and currency."""

    incident_type = models.CharField(_("incident type"), max_length=20, choices=IncidentType.choices)
    channel = models.CharField(_("channel"), max_length=10, blank=True)
    intervention = models.CharField(_("intervention"), max_length=15, choices=Intervention.choices, blank=True)
    currency = models.CharField(_("currency"), max_length=3)
    cost_amount = models.DecimalField(_("cost"), **AMOUNT)

    class Meta:
        abstract = True


class RecoveryCostDay(RecoveryCostDayBase):
    class Meta:
        verbose_name = _("recovery cost per day")
        verbose_name_plural = _("recovery cost per day")
        indexes = [models.Index(fields=["day"])]


class TeamRecoveryCostDay(RecoveryCostDayBase):
    team = _fk("appease.Team", null=True, verbose_name=_("team"))

    class Meta:
        verbose_name = _("team recovery cost per day")
        verbose_name_plural = _("team recovery cost per day")
        indexes = [models.Index(fields=["team", "day"])]


class FeedbackDay(DayRow):
    """NPS answers per day."""

    day = models.DateField(_("day"), unique=True)
    nps_answers = models.PositiveIntegerField(_("NPS answers"), default=0)
    promoters = models.PositiveIntegerField(_("promoters"), default=0)
    detractors = models.PositiveIntegerField(_("detractors"), default=0)

    class Meta:
        verbose_name = _("NPS answers per day")
        verbose_name_plural = _("NPS answers per day")


class RollupState(models.Model):
    """One row: how far the rollups are brought up to date.

    `refreshed_at` is the clock of the last refresh: changes after it (less an overlap
    for transactions still open then) mark their days for the next one. `restated_at`
    is the last rewrite of every day in REPORTING_RESTATE_DAYS.
    """

    id = models.PositiveSmallIntegerField(_("ID"), primary_key=True, default=1)
    refreshed_at = models.DateTimeField(_("refreshed at"), null=True, blank=True)
    restated_at = models.DateTimeField(_("restated at"), null=True, blank=True)
    days_rewritten = models.PositiveIntegerField(_("days rewritten"), default=0)  # by the last refresh
    seconds = models.FloatField(_("seconds"), default=0)  # how long the last refresh took

    class Meta:
        verbose_name = _("rollup state")
        verbose_name_plural = _("rollup state")
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="one_rollup_state")]

    def __str__(self) -> str:
        return f"rollups refreshed at {self.refreshed_at}"


class AnomalyScan(models.Model):
    """The anomaly flags of one standard window (the last 7, 30, 90 or 365 days), as
    beat last computed them: the customer-level flags need every issuance of the window,
    too slow to count while a supervisor waits (docs/reporting-anomalies.md)."""

    days = models.PositiveSmallIntegerField(_("days"), unique=True)
    date_from = models.DateField(_("date from"))
    date_to = models.DateField(_("date to"))
    computed_at = models.DateTimeField(_("computed at"))
    seconds = models.FloatField(_("seconds"), default=0)
    flags = models.JSONField(_("flags"), default=list)  # Flag.as_dict() each, worded when shown

    class Meta:
        verbose_name = _("anomaly scan")
        verbose_name_plural = _("anomaly scans")

    def __str__(self) -> str:
        return f"anomalies of the last {self.days} days at {self.computed_at}"


class RecoverySettings(models.Model):
    """One row: the assumptions the return on appeasement still needs, saved for the
    whole organisation (not in a page's address) and changed by supervisors on the
    page (`recovery_settings_update`, audited). Everything else the page measures."""

    id = models.PositiveSmallIntegerField(_("ID"), primary_key=True, default=1)
    margin_percent = models.DecimalField(
        _("margin (%)"),
        max_digits=5,
        decimal_places=2,
        default=30,
        help_text=_("The share of an order's value the company keeps, in percent."),
    )
    horizon_days = models.PositiveIntegerField(
        _("horizon (days)"),
        default=60,
        help_text=_("How long a kept customer's orders are counted for, in days."),
    )
    # Per currency ({"USD": "60.00"}): an order value to use instead of the measured one.
    order_value_overrides = models.JSONField(_("order value overrides"), default=dict, blank=True)
    updated_at = models.DateTimeField(_("updated at"), null=True, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("updated by"),
    )

    class Meta:
        verbose_name = _("recovery settings")
        verbose_name_plural = _("recovery settings")
        constraints = [
            models.CheckConstraint(condition=models.Q(id=1), name="one_recovery_settings"),
            models.CheckConstraint(
                condition=models.Q(margin_percent__gte=0, margin_percent__lte=100), name="recovery_margin_0_to_100"
            ),
            models.CheckConstraint(condition=models.Q(horizon_days__gte=1), name="recovery_horizon_positive"),
        ]

    def __str__(self) -> str:
        return "recovery settings"
