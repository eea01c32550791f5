"""The numbers behind every report, aggregated in the database (GROUP BY, date
truncation, conditional sums), never by looping over rows in Python.

Each function takes the page's ReportFilter and asks reporting.facts for its rows: a
rollup when one holds every dimension it filters and groups by, the live rows
otherwise; the result is the same either way (tests/reporting check both).

Money is summed per currency only: every money figure takes the one `currency` it is
for; counts include every currency, never a sum of mixed money.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count, F, Q, QuerySet, Sum
from django.utils import timezone

from appease.issuance.selectors import order_values, reason_code_labels
from coupons.selectors import offer_names
from feedback.selectors import OUTCOME_APOLOGY_ARM
from reporting.facts import (
    CASES,
    DELIVERIES,
    FAILED,
    FEEDBACK,
    GIVEN,
    ISSUANCES,
    OUTCOMES,
    SPEED_BANDS,
    START_SOURCES,
    Facts,
    zone,
)
from reporting.filters import RecoveryFilter, ReportFilter
from reporting.models import RecoverySettings

BUCKETS = ("day", "week", "month")
SPEED_LABELS = {10: "≤ 10 s", 60: "≤ 60 s", 300: "≤ 5 min", 3600: "≤ 1 h"}
DIMENSIONS = ("rep", "reason_code", "incident_type", "offer", "channel")


def given(issuances: QuerySet) -> QuerySet:
    """Appeasements the customer got (not waiting, rejected or voided)."""
    return issuances.filter(status__in=GIVEN)


def listed(filters: ReportFilter) -> QuerySet:
    """The issuances behind a chart (the list page and its CSV): given, in the period,
    under every filter of the page the chart was on, its currency included (a bar of
    dollars lists no reais)."""
    return given(filters.qs).filter(currency=filters.selected_currency)


def _money(facts: Facts, currency: str) -> dict:
    return {
        "face": facts.total("face_value_amount", Q(currency=currency)),
        "cost": facts.total("cost_amount", Q(currency=currency)),
    }


def _given_rows(rows: QuerySet) -> QuerySet:
    # A group with no appeasement given (only waiting or rejected ones) is no row.
    return rows.filter(count__gt=0)


def totals(filters: ReportFilter, currency: str) -> dict:
    facts = filters.facts(ISSUANCES)
    return facts.qs.aggregate(
        count=facts.total("issuances"),
        **_money(facts, currency),
        used=facts.total("used"),
        with_code=facts.total("with_code"),
    )


def totals_per_currency(filters: ReportFilter) -> list[dict]:
    """The period's appeasements and their money, one row per currency (never a sum
    across currencies): what the page's currency choice leaves out, at a glance."""
    facts = filters.facts(ISSUANCES, by=["currency"])
    rows = (
        facts.qs.values("currency")
        .annotate(
            count=facts.total("issuances"),
            face=facts.total("face_value_amount"),
            cost=facts.total("cost_amount"),
        )
        .filter(count__gt=0)
        .order_by("currency")
    )
    return list(rows)


def customers(filters: ReportFilter) -> int:
    """Customers appeased in the period: a distinct count, so from the live rows."""
    return given(filters.qs).aggregate(n=Count("customer", distinct=True))["n"]


def labels(filters: ReportFilter, dimension: str, keys) -> dict:
    """Names for the keys of a dimension (grouping by the key alone keeps the join out
    of the aggregate), read from the small tables once per page. Incident types and
    channels are their own keys: the views translate them."""
    keys = {key for key in keys if key is not None}
    known = filters.names.setdefault(dimension, {})
    missing = keys - set(known)
    if missing and dimension == "rep":
        known.update(get_user_model().objects.filter(pk__in=missing).values_list("pk", "username"))
    elif missing and dimension == "reason_code":
        known.update(reason_code_labels())
    elif missing and dimension == "offer":
        known.update(offer_names())
    elif missing:
        known.update({key: key for key in missing})
    return known


def by_dimension(filters: ReportFilter, currency: str, dimension: str) -> list[dict]:
    """Counts, money and use per one dimension (rep, reason code, incident type, offer, channel)."""
    facts = filters.facts(ISSUANCES, by=[dimension])
    rows = facts.qs.values(key=F(facts.path(dimension))).annotate(
        count=facts.total("issuances"),
        **_money(facts, currency),
        with_code=facts.total("with_code"),
        used=facts.total("used"),
    )
    rows = list(_given_rows(rows).order_by("-count", "key"))
    names = labels(filters, dimension, (row["key"] for row in rows))
    return [{**row, "label": names.get(row["key"])} for row in rows]


def by_rep_and_reason(filters: ReportFilter, currency: str, *, limit: int = 25) -> list[dict]:
    """Per rep (automatic rules as one row), stacked by reason code: the top `limit`
    reps by count."""
    top = [row["key"] for row in by_dimension(filters, currency, "rep")[:limit]]
    facts = filters.facts(ISSUANCES, by=["rep", "reason_code"])
    reps = Q(csr__in=[rep for rep in top if rep is not None])
    if None in top:
        reps |= Q(csr__isnull=True)
    rows = list(
        _given_rows(
            facts.qs.filter(reps)
            .values("csr_id", "reason_code_id")
            .annotate(count=facts.total("issuances"), **_money(facts, currency))
        ).order_by()
    )
    reps, reasons = labels(filters, "rep", top), labels(filters, "reason_code", (row["reason_code_id"] for row in rows))
    rows = [
        {**row, "csr__username": reps.get(row["csr_id"]), "reason_code__label": reasons.get(row["reason_code_id"])}
        for row in rows
    ]
    return sorted(rows, key=lambda row: (row["csr__username"] or "", str(row["reason_code__label"])))


def over_time(filters: ReportFilter, currency: str, bucket: str) -> list[dict]:
    """Per day, week or month (of the report zone), stacked by reason code."""
    facts = filters.facts(ISSUANCES, by=["reason_code"])
    rows = list(
        _given_rows(
            facts.qs.values("reason_code_id", period=facts.period(bucket)).annotate(
                count=facts.total("issuances"), **_money(facts, currency)
            )
        ).order_by()
    )
    reasons = labels(filters, "reason_code", (row["reason_code_id"] for row in rows))
    rows = [{**row, "reason_code__label": reasons.get(row["reason_code_id"])} for row in rows]
    return sorted(rows, key=lambda row: (row["period"], str(row["reason_code__label"])))


def approvals(filters: ReportFilter) -> dict:
    """Issuances that needed a supervisor: requested, granted, rejected, still waiting."""
    facts = filters.facts(ISSUANCES)
    return facts.qs.aggregate(
        requested=facts.total("approvals_requested"),
        granted=facts.total("approvals_granted"),
        rejected=facts.total("approvals_rejected"),
        waiting=facts.total("approvals_waiting"),
    )


def value_redeemed(filters: ReportFilter, currency: str, bucket: str = "month") -> list[dict]:
    """Face value given versus value redeemed at checkout, per period the codes were given."""
    facts = filters.facts(ISSUANCES)
    where = Q(currency=currency)
    rows = (
        facts.qs.values(period=facts.period(bucket))
        .annotate(
            issued=facts.total("face_value_amount", where),
            redeemed=facts.total("redeemed_amount", where),
            count=facts.total("issuances", where),
        )
        .filter(count__gt=0)
        .order_by("period")
    )
    return [{"period": row["period"], "issued": row["issued"], "redeemed": row["redeemed"]} for row in rows]


def liability(filters: ReportFilter, *, now=None) -> list[dict]:
    """Outstanding liability per currency: codes given, not yet (fully) used, not
    expired. A coupon counts its face value, a gift card its remaining balance.

    From the rollup a code counts until the end of the day (report zone) it expires.
    """
    now = now or timezone.now()
    facts = filters.facts(ISSUANCES, by=["currency", "expires_on"], measures=["open_codes"])
    if facts.rollup is not None:
        unexpired = Q(expires_on__isnull=True) | Q(expires_on__gte=now.astimezone(zone()).date())
    else:
        unexpired = Q(code__expires_at__isnull=True) | Q(code__expires_at__gt=now)
    rows = (
        facts.qs.filter(unexpired)
        .values("currency")
        .annotate(
            codes=facts.total("open_codes"),
            coupons=facts.total("open_face_amount"),
            gift_cards=facts.total("open_balance_amount"),
        )
        .filter(codes__gt=0)
        .order_by("currency")
    )
    return [{**row, "total": row["coupons"] + row["gift_cards"]} for row in rows]


# --- Speed ----------------------------------------------------------------------------


def speed(filters: ReportFilter, bucket: str = "week") -> list[dict]:
    """Per period: appeasements timed from the complaint, and how many within 60 s."""
    facts = filters.facts(ISSUANCES)
    rows = (
        facts.qs.values(period=facts.period(bucket))
        .annotate(timed=facts.total("timed"), within=facts.total("within_goal"))
        .filter(timed__gt=0)
        .order_by("period")
    )
    return list(rows)


def speed_by_start(filters: ReportFilter) -> list[dict]:
    """Over the filters' days: the timed appeasements per start of the clock (the case's
    opening, the rep's Start, a link, the API caller, the event; "" for the older ones
    timed from the CSR page's opening), and how many were within 60 s of it."""
    facts = filters.facts(ISSUANCES)
    names = ["timed", "within_goal"] + [f"{m}_{s}" for s in START_SOURCES for m in ("timed", "within_goal")]
    totals = facts.qs.aggregate(**facts.totals(*names))
    rows = []
    for source in START_SOURCES:
        rows.append({"source": source, "timed": totals[f"timed_{source}"], "within": totals[f"within_goal_{source}"]})
    rows.append(
        {
            "source": "",
            "timed": totals["timed"] - sum(row["timed"] for row in rows),
            "within": totals["within_goal"] - sum(row["within"] for row in rows),
        }
    )
    return [row for row in rows if row["timed"]]


def delivery_speed(filters: ReportFilter) -> list[dict]:
    """Per channel sent through: deliveries of these appeasements by time from issuance to sent."""
    facts = filters.facts(DELIVERIES, by=["delivery_channel"])
    bands = {f"within_{seconds}": facts.total(f"sent_within_{seconds}") for seconds in SPEED_BANDS}
    rows = (
        facts.qs.values(through=F(facts.path("delivery_channel")))
        .annotate(sent=facts.total("sent"), **bands)
        .filter(sent__gt=0)
        .order_by("through")
    )
    return [{"channel": row.pop("through"), **row} for row in rows]


def delivery_failures(filters: ReportFilter) -> list[dict]:
    facts = filters.facts(DELIVERIES, by=["delivery_channel", "failure_status", "failure_reason"])
    if facts.rollup is not None:
        failed, count = facts.qs.exclude(failure_status=""), facts.total("deliveries")
    else:
        failed, count = facts.qs.filter(FAILED), Count("pk")
    rows = (
        failed.values(
            through=F(facts.path("delivery_channel")),
            outcome=F(facts.path("failure_status")),
            reason=F(facts.path("failure_reason")),
        )
        .annotate(count=count)
        .order_by("through", "-count", "outcome", "reason")
    )
    return [
        {"channel": row["through"], "status": row["outcome"], "failure_reason": row["reason"], "count": row["count"]}
        for row in rows
    ]


# --- Cases and recovery -------------------------------------------------------------


def cases_by_type_and_priority(filters: ReportFilter) -> list[dict]:
    facts = filters.facts(CASES, by=["incident_type", "priority"])
    rows = (
        facts.qs.values("incident_type", "priority")
        .annotate(
            count=facts.total("cases"),
            first_breached=facts.total("first_breached"),
            resolution_breached=facts.total("resolution_breached"),
        )
        .filter(count__gt=0)
        .order_by("incident_type", "priority")
    )
    return list(rows)


def cases_handled(filters: ReportFilter) -> dict[int, int]:
    """Cases per rep they are assigned to (opened in the period)."""
    facts = filters.facts(CASES, by=["rep"], measures=["cases"])
    rows = (
        facts.qs.exclude(**{f"{facts.path('rep')}__isnull": True})
        .values(rep_id=F(facts.path("rep")))
        .annotate(n=facts.total("cases"))
        .order_by()
    )
    return {row["rep_id"]: row["n"] for row in rows if row["n"]}


def resolution(filters: ReportFilter) -> dict:
    """Resolution rate: cases the customer confirmed solved, over cases closed (not
    calls closed). Reopened cases count against it while open."""
    facts = filters.facts(CASES)
    figures = facts.qs.aggregate(
        total=facts.total("cases"),
        **facts.totals(
            "confirmed",
            "unconfirmed",
            "resolved_waiting",
            "still_open",
            "reopened",
            "first_breached",
            "resolution_breached",
        ),
    )
    closed = figures["confirmed"] + figures["unconfirmed"]
    figures["rate"] = figures["confirmed"] / closed if closed else None
    return figures


def satisfaction(filters: ReportFilter) -> dict:
    """Follow-up answers for the period's cases (CSAT, solved), and NPS from the
    period's feedback."""
    facts = filters.facts(OUTCOMES)
    answers = facts.qs.aggregate(**facts.totals("answers", "solved", "csat_answers", "csat_total"))
    feedback = filters.facts(FEEDBACK)
    nps = feedback.qs.aggregate(**feedback.totals("nps_answers", "promoters", "detractors"))
    return {
        "answers": answers["answers"],
        "solved": answers["solved"],
        "csat": answers["csat_total"] / answers["csat_answers"] if answers["csat_answers"] else None,
        "nps": round(100 * (nps["promoters"] - nps["detractors"]) / nps["nps_answers"]) if nps["nps_answers"] else None,
        "nps_n": nps["nps_answers"],
    }


# --- Recovery by intervention, and its return (feedback's AppeasementOutcome) ----------

ANSWERED = Q(answered_at__isnull=False, solved__isnull=False)


def recovery_rows(filters: RecoveryFilter, *, now=None) -> list[dict]:
    """Per incident type × arm × currency, in one GROUP BY over the appeasements of the
    period: how many were given, answered, solved; the CSAT answers and their sum; codes
    given and redeemed; how many are old enough to tell whether the customer ordered
    again (given a whole REPURCHASE_WINDOW ago) and how many of those did; the cost of
    them all and of the answered ones. Money is summed within its currency only."""
    now = now or timezone.now()
    matured = Q(given_at__lt=now - settings.REPURCHASE_WINDOW)
    with_code = Q(issuance__code__isnull=False)
    rows = (
        filters.qs.values("incident_type", "arm", "currency")
        .annotate(
            appeasements=Count("pk"),
            answered=Count("pk", filter=ANSWERED),
            # Named apart from the `solved` column: an annotation would shadow it in the filter.
            solved_answers=Count("pk", filter=ANSWERED & Q(solved=True)),
            csat_answers=Count("csat"),
            csat_total=Sum("csat"),
            codes=Count("pk", filter=with_code),
            redeemed=Count("pk", filter=with_code & Q(redeemed_at__isnull=False)),
            matured=Count("pk", filter=matured),
            repurchased=Count("pk", filter=matured & Q(repurchased_at__isnull=False)),
            cost=Sum("cost_amount"),
            answered_cost=Sum("cost_amount", filter=ANSWERED),
        )
        .order_by("incident_type", "currency", "arm")
    )
    return [
        {
            **row,
            "solved": row.pop("solved_answers"),
            "csat_total": row["csat_total"] or 0,
            "answered_cost": row["answered_cost"] or Decimal("0"),
        }
        for row in rows
    ]


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """The 95% Wilson score interval of a share (sound for small n and for 0% or 100%);
    None without a trial."""
    if n <= 0:
        return None
    p = successes / n
    centre = p + z * z / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    denominator = 1 + z * z / n
    return max(0.0, (centre - margin) / denominator), min(1.0, (centre + margin) / denominator)


def recovery_figures(row: dict) -> dict:
    """What the page shows of one aggregated row: the shares, the interval, the averages."""
    answered, solved = row["answered"], row["solved"]
    return {
        **row,
        "response_rate": answered / row["appeasements"] if row["appeasements"] else None,
        "solved_rate": solved / answered if answered else None,
        "solved_interval": wilson(solved, answered),
        "csat": row["csat_total"] / row["csat_answers"] if row["csat_answers"] else None,
        "redemption_rate": row["redeemed"] / row["codes"] if row["codes"] else None,
        "repurchase_rate": row["repurchased"] / row["matured"] if row["matured"] else None,
        # Extrapolated from the answered ones only: what they cost over how many of them
        # said solved (the unanswered are neither counted solved nor unsolved).
        "cost_per_recovered": row["answered_cost"] / solved if solved else None,
        "average_cost": row["cost"] / row["appeasements"] if row["appeasements"] else None,
    }


def order_value_measured(filters: RecoveryFilter) -> dict[str, dict]:
    """The average order value per currency, from the customers' orders placed in the
    period (appease.issuance), with how many orders it rests on."""
    since, until = filters.period
    return order_values(since=since, until=until)


@dataclass(frozen=True)
class Assumptions:
    """What the measured return still assumes (reporting.RecoverySettings)."""

    margin_percent: Decimal
    horizon_days: int
    order_value_overrides: dict  # currency -> amount (text)

    def order_value(self, currency: str, measured: dict[str, dict]) -> tuple[Decimal | None, str]:
        """The average order value in `currency` and where it comes from."""
        override = self.order_value_overrides.get(currency)
        if override not in (None, ""):
            return Decimal(str(override)), "override"
        if currency in measured:
            return measured[currency]["average"], "measured"
        return None, "none"

    @property
    def orders_over_horizon(self) -> Decimal:
        """Orders a kept customer is counted for: one per repurchase window in the horizon
        (the measured repurchase is "at least one order within the window")."""
        return Decimal(self.horizon_days) / Decimal(settings.REPURCHASE_WINDOW.days or 1)

    def value_of_kept_customer(self, order_value: Decimal | None) -> Decimal | None:
        if order_value is None:
            return None
        return order_value * self.margin_percent / Decimal(100) * self.orders_over_horizon


def return_measured(rows: list[dict], assumptions: Assumptions, measured: dict[str, dict]) -> list[dict]:
    """Per currency: the cost of every appeasement of the period against the value of the
    customers they kept, measured.

    Comparison: within each incident type (and currency), each offer's appeasements against
    the apology-only arm's. Extra repurchases = appeasements of the arm × (its repurchase
    share − the apology's), both shares measured on appeasements given a whole repurchase
    window ago; an arm with no apology to compare with in its incident type (or nothing old
    enough to tell) is credited nothing, though its cost is counted.
    kept value = extra repurchases × order value × margin × orders over the horizon.
    """
    by_currency: dict[str, dict] = {}
    baselines = {
        (row["currency"], row["incident_type"]): row
        for row in rows
        if row["arm"] == OUTCOME_APOLOGY_ARM and row["matured"]
    }
    for row in rows:
        block = by_currency.setdefault(
            row["currency"],
            {"currency": row["currency"], "cost": Decimal("0"), "appeasements": 0, "kept": Decimal("0"), "arms": []},
        )
        block["cost"] += row["cost"] or Decimal("0")
        block["appeasements"] += row["appeasements"]
        if row["arm"] == OUTCOME_APOLOGY_ARM:
            continue
        base = baselines.get((row["currency"], row["incident_type"]))
        arm = {**row, "compared": bool(base and row["matured"])}
        if arm["compared"]:
            arm["share"] = Decimal(row["repurchased"]) / Decimal(row["matured"])
            arm["base_share"] = Decimal(base["repurchased"]) / Decimal(base["matured"])
            arm["base_matured"] = base["matured"]
            arm["kept"] = row["appeasements"] * (arm["share"] - arm["base_share"])
            block["kept"] += arm["kept"]
        block["arms"].append(arm)
    result = []
    for currency, block in sorted(by_currency.items()):
        order_value, source = assumptions.order_value(currency, measured)
        per_kept = assumptions.value_of_kept_customer(order_value)
        value = block["kept"] * per_kept if per_kept is not None else None
        block.update(
            order_value=order_value,
            order_value_source=source,
            orders=measured.get(currency, {}).get("orders", 0),
            per_kept=per_kept,
            value=value,
            net=(value - block["cost"]) if value is not None else None,
            ratio=(value / block["cost"]) if value is not None and block["cost"] else None,
        )
        result.append(block)
    return result


def recovery_settings() -> RecoverySettings:
    """The organisation's recovery assumptions (the defaults, unsaved, until a supervisor
    first saves them)."""
    return RecoverySettings.objects.filter(pk=1).select_related("updated_by").first() or RecoverySettings()


def recovery_assumptions(saved: RecoverySettings) -> Assumptions:
    return Assumptions(
        margin_percent=saved.margin_percent,
        horizon_days=saved.horizon_days,
        order_value_overrides=dict(saved.order_value_overrides or {}),
    )
