"""The numbers behind every report, aggregated in the database (GROUP BY, date
truncation, conditional sums), never by looping over rows in Python.

Each function takes the page's ReportFilter and asks reporting.facts for its rows: a
rollup when one holds every dimension it filters and groups by, the live rows
otherwise; the result is the same either way (tests/reporting check both).

Money is summed per currency only: every money figure takes the one `currency` it is
for; counts include every currency, never a sum of mixed money.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from appease.issuance.selectors import reason_code_labels
from coupons.selectors import offer_names
from feedback.selectors import Intervention
from reporting.facts import (
    CASES,
    DELIVERIES,
    FAILED,
    FEEDBACK,
    GIVEN,
    ISSUANCES,
    OUTCOMES,
    RECOVERY_COSTS,
    SPEED_BANDS,
    START_SOURCES,
    Facts,
    zone,
)
from reporting.filters import ReportFilter

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


def recovery_by_intervention(filters: ReportFilter, currency: str) -> list[dict]:
    """Per incident type, soft against hard interventions: answered follow-ups, the
    share solved, CSAT, and the cost (in `currency`) per customer recovered."""
    soft = Intervention.soft()
    outcomes = filters.facts(OUTCOMES, by=["incident_type", "intervention"])
    answered = (
        outcomes.qs.exclude(**{outcomes.path("intervention"): ""})
        .values(incident=F(outcomes.path("incident_type")), chosen=F(outcomes.path("intervention")))
        .annotate(**outcomes.totals("answers", "solved", "csat_answers", "csat_total"))
        .order_by()
    )
    costs = filters.facts(RECOVERY_COSTS, by=["incident_type", "intervention", "currency"])
    cost_of = {
        (row["incident"], row["chosen"]): row["cost"]
        for row in costs.qs.filter(**{costs.path("currency"): currency})
        .values(incident=F(costs.path("incident_type")), chosen=F(costs.path("intervention")))
        .annotate(cost=costs.total("cost_amount"))
        .order_by()
    }
    grouped: dict[tuple[str, str], dict] = {}
    for row in answered:
        kind = "soft" if row["chosen"] in soft else "hard"
        entry = grouped.setdefault(
            (row["incident"], kind),
            {"incident_type": row["incident"], "kind": kind, "answers": 0, "solved": 0, "csat_total": 0},
        )
        entry.setdefault("csat_answers", 0)
        entry.setdefault("cost", Decimal("0"))
        entry["answers"] += row["answers"]
        entry["solved"] += row["solved"]
        entry["csat_total"] += row["csat_total"]
        entry["csat_answers"] += row["csat_answers"]
        entry["cost"] += cost_of.get((row["incident"], row["chosen"])) or Decimal("0")
    result = []
    for entry in grouped.values():
        entry["solved_rate"] = entry["solved"] / entry["answers"] if entry["answers"] else None
        entry["csat"] = entry.pop("csat_total") / entry["csat_answers"] if entry["csat_answers"] else None
        del entry["csat_answers"]
        entry["cost_per_recovered"] = entry["cost"] / entry["solved"] if entry["solved"] else None
        result.append(entry)
    return sorted(result, key=lambda entry: (entry["incident_type"], entry["kind"]))


@dataclass(frozen=True)
class RoiAssumptions:
    """What the return on appeasement rests on; supervisors edit them on the page."""

    average_order_value: Decimal
    orders_per_year: Decimal
    churn_without_recovery: Decimal  # share of failed customers who leave if not recovered
    word_of_mouth_reach: Decimal  # people each kept customer tells
    word_of_mouth_conversion: Decimal  # share of those who buy once


def return_on_appeasement(filters: ReportFilter, currency: str, a: RoiAssumptions) -> dict:
    """Revenue kept by recovered customers against what the appeasements cost.

    kept customers = cases the customer confirmed solved × churn without recovery
    revenue kept = kept × orders per year × average order value
                   + kept × word-of-mouth reach × conversion × average order value
    """
    cases = filters.facts(CASES)
    recovered = cases.qs.aggregate(n=cases.total("confirmed"))["n"]
    cost = totals(filters, currency)["cost"]
    kept = Decimal(recovered) * a.churn_without_recovery
    revenue = kept * a.orders_per_year * a.average_order_value
    word_of_mouth = kept * a.word_of_mouth_reach * a.word_of_mouth_conversion * a.average_order_value
    kept_total = revenue + word_of_mouth
    return {
        "recovered": recovered,
        "kept_customers": kept,
        "revenue_kept": revenue,
        "word_of_mouth": word_of_mouth,
        "total_kept": kept_total,
        "cost": cost,
        "net": kept_total - cost,
        "ratio": (kept_total / cost) if cost else None,
    }
