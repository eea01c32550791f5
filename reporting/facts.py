"""What the reports count, defined once, and where each figure is read from.

A *family* is one kind of fact (issuances, deliveries, cases, follow-up answers, the
cost of recovery, NPS answers): its live rows, the measures over them, and the paths
by which the report filters reach them. Its *rollups* (reporting.models) hold the same
measures per day and per combination of a few dimensions, written by
`reporting.services.rollups_refresh` from exactly these definitions.

`Family.facts(filters, by=…)` picks the smallest rollup that holds every dimension the
page filters or groups by, and falls back to the live rows when none does (a rep's
figures per offer, say). A selector then aggregates `facts.qs` with `facts.total(…)`,
and cannot tell which one it got, except by speed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import (
    Case,
    CharField,
    Count,
    DateField,
    DecimalField,
    F,
    IntegerField,
    Model,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Trunc, TruncDate

from appease.delivery.selectors import DeliveryStatus, appeasement_deliveries
from appease.issuance.selectors import IssuanceStatus, StartSource, issuances_for_reports, team_member_ids
from coupons.selectors import redemptions_active
from feedback.selectors import (
    CASE_OPEN_STATUSES,
    CaseStatus,
    cases_for_reports,
    feedback_for_reports,
    follow_ups_answered,
)
from reporting import models as rollups

GOAL_SECONDS = 60  # the 60-second recovery: complaint to appeasement
SPEED_BANDS = (10, 60, 300, 3600)  # seconds from issuance to sent
BUCKETS = {"day": "day", "week": "week", "month": "month"}

GIVEN = (IssuanceStatus.ISSUED, IssuanceStatus.DELIVERED, IssuanceStatus.FAILED)
GIVEN_Q = Q(status__in=GIVEN)
# A code counts as used once redeemed, or, for a gift card, once its balance went down.
USED = Q(code__status="redeemed") | Q(code__balance_amount__lt=F("code__initial_balance_amount"))
NEEDED_APPROVAL = Q(breached_limits__isnull=False) & ~Q(breached_limits=[])
TIMED = Q(complaint_started_at__isnull=False, issued_at__isnull=False)
WITHIN_GOAL = Q(issued_at__lte=F("complaint_started_at") + timedelta(seconds=GOAL_SECONDS))
# Where each timed appeasement's clock started; "" (older ones): the CSR page's opening.
START_SOURCES = tuple(StartSource.values)
OPEN_CODE = Q(code__status="issued")
MONEY = DecimalField(max_digits=18, decimal_places=4)


def zone() -> ZoneInfo:
    """Report days are the shop's days (REPORTING_TIME_ZONE), whoever reads them: two
    supervisors in different zones see the same figures for the same dates."""
    return ZoneInfo(settings.REPORTING_TIME_ZONE)


def day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """The aware [start of `first`, start of the day after `last`) in the report zone."""
    tz = zone()
    return (
        datetime.combine(first, datetime.min.time(), tzinfo=tz),
        datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=tz),
    )


# --- Measures over the live rows ----------------------------------------------------------
# Each takes a condition (`where`: a currency, say) and gives one aggregate.

Measure = Callable[[Q], object]


def _count(condition: Q) -> Measure:
    return lambda where: Count("pk", filter=condition & where)


def _sum(field_name: str, condition: Q | None = None, output=None) -> Measure:
    return lambda where: Sum(field_name, filter=(condition or Q()) & where, output_field=output)


def _redeemed() -> Subquery:
    """What checkouts took off this issuance's code (active redemptions)."""
    return Subquery(
        redemptions_active()
        .filter(code=OuterRef("code_id"))
        .order_by()
        .values("code")
        .annotate(total=Sum("discount_amount"))
        .values("total"),
        output_field=MONEY,
    )


ISSUANCE_MEASURES: dict[str, Measure] = {
    "issuances": _count(GIVEN_Q),
    "face_value_amount": _sum("face_value_amount", GIVEN_Q),
    "cost_amount": _sum("cost_amount", GIVEN_Q),
    "with_code": _count(GIVEN_Q & Q(code__isnull=False)),
    "used": _count(GIVEN_Q & USED),
    "redeemed_amount": lambda where: Sum(_redeemed(), filter=GIVEN_Q & where, output_field=MONEY),
    "timed": _count(GIVEN_Q & TIMED),
    "within_goal": _count(GIVEN_Q & TIMED & WITHIN_GOAL),
    **{
        f"{measure}_{source}": _count(GIVEN_Q & TIMED & Q(complaint_start_source=source) & extra)
        for source in START_SOURCES
        for measure, extra in (("timed", Q()), ("within_goal", WITHIN_GOAL))
    },
    "approvals_requested": _count(NEEDED_APPROVAL),
    "approvals_granted": _count(NEEDED_APPROVAL & (GIVEN_Q | Q(status=IssuanceStatus.VOIDED))),
    "approvals_rejected": _count(NEEDED_APPROVAL & Q(status=IssuanceStatus.REJECTED)),
    "approvals_waiting": _count(NEEDED_APPROVAL & Q(status=IssuanceStatus.PENDING_APPROVAL)),
}
OPEN_MEASURES: dict[str, Measure] = {
    "open_codes": _count(GIVEN_Q & OPEN_CODE),
    "open_face_amount": _sum("face_value_amount", GIVEN_Q & OPEN_CODE & Q(code__balance_amount__isnull=True)),
    "open_balance_amount": _sum("code__balance_amount", GIVEN_Q & OPEN_CODE & Q(code__balance_amount__isnull=False)),
}

SENT = Q(sent_at__isnull=False, issuance__status__in=GIVEN)
FAILED = Q(status__in=(DeliveryStatus.FAILED, DeliveryStatus.DEAD))
DELIVERY_MEASURES: dict[str, Measure] = {
    "deliveries": _count(Q()),
    "sent": _count(SENT),
    **{
        f"sent_within_{seconds}": _count(SENT & Q(sent_at__lte=F("issuance__issued_at") + timedelta(seconds=seconds)))
        for seconds in SPEED_BANDS
    },
}

CASE_MEASURES: dict[str, Measure] = {
    "cases": _count(Q()),
    # Cases that missed a target at least once (a reopened case keeps its breaches).
    "first_breached": _count(Q(first_response_breaches__gt=0)),
    "resolution_breached": _count(Q(resolution_breaches__gt=0)),
    "confirmed": _count(Q(status=CaseStatus.CONFIRMED)),
    "unconfirmed": _count(Q(status=CaseStatus.UNCONFIRMED)),
    "resolved_waiting": _count(Q(status=CaseStatus.RESOLVED)),
    "still_open": _count(Q(status__in=CASE_OPEN_STATUSES)),
    "reopened": _count(Q(reopened_count__gt=0)),
}

OUTCOME_MEASURES: dict[str, Measure] = {
    "answers": _count(Q()),
    "solved": _count(Q(solved=True)),
    "csat_answers": _count(Q(csat__isnull=False)),
    "csat_total": _sum("csat", output=IntegerField()),
}

RECOVERY_COST_MEASURES: dict[str, Measure] = {"cost_amount": _sum("cost_amount")}

FEEDBACK_MEASURES: dict[str, Measure] = {
    "nps_answers": _count(Q(nps__isnull=False)),
    "promoters": _count(Q(nps__gte=9)),
    "detractors": _count(Q(nps__lte=6)),
}


# --- Families and their rollups -----------------------------------------------------------


@dataclass(frozen=True)
class Rollup:
    """One rollup table: the dimensions it keeps (its field → the expression on the
    family's live rows) and what it can answer."""

    model: type[Model]
    dimensions: dict[str, object]
    measures: dict[str, Measure]
    paths: dict[str, str]  # report dimension → field path on the rollup's rows

    def answers(self, needed: Iterable[str], measures: Iterable[str]) -> bool:
        return set(needed) <= set(self.paths) | {"period"} and set(measures) <= set(self.measures)


@dataclass(frozen=True)
class Family:
    name: str
    live: Callable[[], QuerySet]
    day_of: str  # the live rows' datetime whose date (in the report zone) is their day
    paths: dict[str, str]  # report dimension → field path on the live rows
    measures: dict[str, Measure]
    rollups: tuple[Rollup, ...] = field(default=())  # smallest first
    # What a caller that names no measures may ask for; a rollup with fewer (the cases
    # per rep) serves only the callers that name what it has.
    core: tuple[str, ...] = ()
    # A datetime of the live rows never earlier than `day_of` (a delivery is made after
    # its issuance, an issuance from a case after the case). Rewriting a few days bounds
    # it too, so its own index finds the rows instead of a scan of everything joined.
    floor: str | None = None

    def facts(
        self, filters, *, by: Iterable[str] = (), measures: Iterable[str] = (), dates: tuple[date, date] | None = None
    ) -> Facts:
        """The rows to aggregate for `filters` (a ReportFilter), to be grouped `by` these
        dimensions and to give these `measures` (any, by default), over the filters'
        days or `dates`. Report filters this family has no path for do not apply to it
        (cases have no offer)."""
        active = {name: value for name, value in filters.dimensions().items() if name in self.paths}
        needed = set(active) | set(by)
        first, last = dates or filters.dates
        for rollup in self.rollups if filters.rollups else ():
            if rollup.answers(needed, measures or self.core or self.measures):
                qs = rollup.model.objects.filter(day__gte=first, day__lte=last)
                return Facts(self, rollup, _filtered(qs, rollup.paths, active))
        since, until = day_bounds(first, last)
        qs = self.live().filter(**{f"{self.day_of}__gte": since, f"{self.day_of}__lt": until})
        return Facts(self, None, _filtered(qs, self.paths, active))


@dataclass(frozen=True)
class Facts:
    """Rows to aggregate: a rollup's, or the live ones, already filtered."""

    family: Family
    rollup: Rollup | None
    qs: QuerySet

    @property
    def source(self) -> str:
        return self.rollup.model.__name__ if self.rollup else f"live {self.family.name}"

    def path(self, name: str) -> str:
        return (self.rollup.paths if self.rollup else self.family.paths)[name]

    def total(self, measure: str, where: Q | None = None) -> Coalesce:
        """One measure, summed over the rows (and `where`: a currency, say); never None."""
        live = self.rollup is None
        aggregate = self.family.measures[measure](where or Q()) if live else Sum(measure, filter=where)
        numeric = MONEY if measure.endswith("_amount") else IntegerField()
        return Coalesce(aggregate, Value(0), output_field=numeric)

    def totals(self, *measures: str, where: Q | None = None) -> dict:
        return {measure: self.total(measure, where) for measure in measures}

    def period(self, bucket: str):
        """The day, week or month of each row, as a date."""
        if self.rollup is not None:
            return F("day") if bucket == "day" else Trunc("day", BUCKETS[bucket], output_field=DateField())
        return Trunc(self.family.day_of, BUCKETS[bucket], output_field=DateField(), tzinfo=zone())


def _per_team(rollup: Rollup, model: type[Model], team: str) -> Rollup:
    """The twin of `rollup` with one more dimension, the team (`team`: its path on the
    live rows): what a team's report reads where no per-rep rollup holds its figures."""
    return Rollup(
        model=model,
        dimensions={**rollup.dimensions, "team_id": F(team)},
        measures=rollup.measures,
        paths={**rollup.paths, "team": "team"},
    )


def _filtered(qs: QuerySet, paths: dict[str, str], active: dict) -> QuerySet:
    for name, value in active.items():
        path = paths[name]
        if name == "team" and path.endswith("__profile__team"):
            # The team's reps as ids: the (rep, day) indexes serve that, a join to the
            # profiles would not.
            members = team_member_ids(value)
            qs = qs.filter(**{f"{path.removesuffix('__profile__team')}__in": members})
        else:
            qs = qs.filter(**{path: value})
    return qs.order_by()


def _local_day(path: str) -> TruncDate:
    return TruncDate(path, tzinfo=zone())


ISSUANCE_PATHS = {
    "team": "csr__profile__team",
    "rep": "csr",
    "reason_code": "reason_code",
    "incident_type": "reason_code__incident_type",
    "offer": "offer",
    "channel": "channel",
    "customer": "customer_id",
    "currency": "currency",
    "expires_on": "code__expires_at",
}
_REP_PATHS = {key: ISSUANCE_PATHS[key] for key in ("team", "rep", "currency")}
# The rollups keep the reason code's incident type beside it (no join to read it).
_REASON_PATHS = {"reason_code": "reason_code", "incident_type": "incident_type", "currency": "currency"}

ISSUANCES = Family(
    name="issuances",
    live=issuances_for_reports,
    day_of="created_at",
    paths=ISSUANCE_PATHS,
    measures={**ISSUANCE_MEASURES, **OPEN_MEASURES},
    core=tuple(ISSUANCE_MEASURES),
    rollups=(
        Rollup(
            model=rollups.RepDay,
            dimensions={"csr_id": F("csr_id"), "currency": F("currency")},
            measures=ISSUANCE_MEASURES,
            paths=_REP_PATHS,
        ),
        _ISSUANCE_DAY := Rollup(
            model=rollups.IssuanceDay,
            dimensions={
                "reason_code_id": F("reason_code_id"),
                "incident_type": F("reason_code__incident_type"),
                "offer_id": F("offer_id"),
                "channel": F("channel"),
                "currency": F("currency"),
                "expires_on": _local_day("code__expires_at"),
            },
            measures={**ISSUANCE_MEASURES, **OPEN_MEASURES},
            paths={
                **_REASON_PATHS,
                "offer": "offer",
                "channel": "channel",
                "expires_on": "expires_on",
            },
        ),
        _per_team(_ISSUANCE_DAY, rollups.TeamIssuanceDay, "csr__profile__team_id"),
        Rollup(
            model=rollups.RepReasonDay,
            dimensions={
                "csr_id": F("csr_id"),
                "reason_code_id": F("reason_code_id"),
                "incident_type": F("reason_code__incident_type"),
                "currency": F("currency"),
            },
            measures=ISSUANCE_MEASURES,
            paths={**_REP_PATHS, **_REASON_PATHS},
        ),
    ),
)

_FAILURE_STATUS = Case(When(FAILED, then=F("status")), default=Value(""), output_field=CharField())
DELIVERIES = Family(
    name="deliveries",
    live=appeasement_deliveries,
    day_of="issuance__created_at",
    floor="created_at",
    paths={
        **{name: f"issuance__{path}" for name, path in ISSUANCE_PATHS.items() if name != "expires_on"},
        "delivery_channel": "channel",
        "failure_status": "status",
        "failure_reason": "failure_reason",
    },
    measures=DELIVERY_MEASURES,
    rollups=(
        _DELIVERY_DAY := Rollup(
            model=rollups.DeliveryDay,
            dimensions={
                "reason_code_id": F("issuance__reason_code_id"),
                "incident_type": F("issuance__reason_code__incident_type"),
                "offer_id": F("issuance__offer_id"),
                "channel": F("issuance__channel"),
                "delivery_channel": F("channel"),
                "failure_status": _FAILURE_STATUS,
                "failure_reason": Case(
                    When(FAILED, then=F("failure_reason")), default=Value(""), output_field=CharField()
                ),
            },
            measures=DELIVERY_MEASURES,
            paths={
                "reason_code": "reason_code",
                "incident_type": "incident_type",
                "offer": "offer",
                "channel": "channel",
                "delivery_channel": "delivery_channel",
                "failure_status": "failure_status",
                "failure_reason": "failure_reason",
            },
        ),
        _per_team(_DELIVERY_DAY, rollups.TeamDeliveryDay, "issuance__csr__profile__team_id"),
    ),
)

CASE_PATHS = {
    "team": "assigned_to__profile__team",
    "rep": "assigned_to",
    "incident_type": "incident_type",
    "channel": "channel",
    "priority": "priority",
}
CASES = Family(
    name="cases",
    live=cases_for_reports,
    day_of="created_at",
    paths=CASE_PATHS,
    measures=CASE_MEASURES,
    rollups=(
        Rollup(
            model=rollups.RepCaseDay,
            dimensions={"assigned_to_id": F("assigned_to_id")},
            measures={"cases": CASE_MEASURES["cases"]},
            paths={"team": "assigned_to__profile__team", "rep": "assigned_to"},
        ),
        _CASE_DAY := Rollup(
            model=rollups.CaseDay,
            dimensions={"incident_type": F("incident_type"), "priority": F("priority"), "channel": F("channel")},
            measures=CASE_MEASURES,
            paths={key: key for key in ("incident_type", "channel", "priority")},
        ),
        _per_team(_CASE_DAY, rollups.TeamCaseDay, "assigned_to__profile__team_id"),
    ),
)

_THROUGH_CASE = {name: f"case__{path}" for name, path in CASE_PATHS.items() if name != "priority"}
OUTCOMES = Family(
    name="outcomes",
    live=follow_ups_answered,
    day_of="case__created_at",
    # The intervention the customer was answering about: the case's in that round.
    paths={**_THROUGH_CASE, "intervention": "intervention"},
    measures=OUTCOME_MEASURES,
    rollups=(
        _OUTCOME_DAY := Rollup(
            model=rollups.OutcomeDay,
            dimensions={
                "incident_type": F("case__incident_type"),
                "channel": F("case__channel"),
                "intervention": F("intervention"),
            },
            measures=OUTCOME_MEASURES,
            paths={key: key for key in ("incident_type", "channel", "intervention")},
        ),
        _per_team(_OUTCOME_DAY, rollups.TeamOutcomeDay, "case__assigned_to__profile__team_id"),
    ),
)

RECOVERY_COSTS = Family(
    name="recovery costs",
    live=lambda: issuances_for_reports().filter(GIVEN_Q, case__isnull=False),
    day_of="case__created_at",
    floor="created_at",
    paths={**_THROUGH_CASE, "intervention": "case__intervention", "currency": "currency"},
    measures=RECOVERY_COST_MEASURES,
    rollups=(
        _RECOVERY_COST_DAY := Rollup(
            model=rollups.RecoveryCostDay,
            dimensions={
                "incident_type": F("case__incident_type"),
                "channel": F("case__channel"),
                "intervention": F("case__intervention"),
                "currency": F("currency"),
            },
            measures=RECOVERY_COST_MEASURES,
            paths={key: key for key in ("incident_type", "channel", "intervention", "currency")},
        ),
        _per_team(_RECOVERY_COST_DAY, rollups.TeamRecoveryCostDay, "case__assigned_to__profile__team_id"),
    ),
)

FEEDBACK = Family(
    name="feedback",
    live=feedback_for_reports,
    day_of="created_at",
    paths={},
    measures=FEEDBACK_MEASURES,
    rollups=(Rollup(model=rollups.FeedbackDay, dimensions={}, measures=FEEDBACK_MEASURES, paths={}),),
)

FAMILIES = (ISSUANCES, DELIVERIES, CASES, OUTCOMES, RECOVERY_COSTS, FEEDBACK)
