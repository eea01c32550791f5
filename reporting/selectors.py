"""The numbers behind every report: aggregated in the database (GROUP BY, date
truncation, conditional counts), never by looping over rows in Python.

Money is summed per currency only: every money figure takes the one `currency` it is
for, and counts never mix currencies into a sum. Functions take the issuances (or
cases) already filtered by reporting.filters.ReportFilter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.db.models import Avg, Count, DecimalField, F, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, TruncDay, TruncMonth, TruncWeek
from django.utils import timezone

from appease.models import Delivery, Issuance
from coupons.models import Redemption
from feedback.models import Case, Feedback, FollowUp, Intervention

ZERO = Value(Decimal("0"), output_field=DecimalField(max_digits=14, decimal_places=4))
BUCKETS = {"day": TruncDay, "week": TruncWeek, "month": TruncMonth}
GIVEN = [Issuance.Status.ISSUED, Issuance.Status.DELIVERED, Issuance.Status.FAILED]
# A code counts as used once redeemed, or, for a gift card, once its balance went down.
USED = Q(code__status="redeemed") | Q(code__balance_amount__lt=F("code__initial_balance_amount"))


def given(issuances: QuerySet[Issuance]) -> QuerySet[Issuance]:
    """Appeasements the customer got (not waiting, rejected or voided)."""
    return issuances.filter(status__in=GIVEN)


def _money(currency: str, field: str):
    return Coalesce(Sum(field, filter=Q(currency=currency)), ZERO)


def totals(issuances: QuerySet[Issuance], currency: str) -> dict:
    return given(issuances).aggregate(
        count=Count("pk"),
        face=_money(currency, "face_value_amount"),
        cost=_money(currency, "cost_amount"),
        customers=Count("customer", distinct=True),
        used=Count("pk", filter=USED),
        with_code=Count("pk", filter=Q(code__isnull=False)),
    )


def by_rep_and_reason(issuances: QuerySet[Issuance], currency: str, *, limit: int = 25) -> list[dict]:
    """Per rep (automatic rules as one row), stacked by reason code: the top `limit`
    reps by count."""
    rows = list(
        given(issuances)
        .values("csr_id", "csr__username", "reason_code_id", "reason_code__label")
        .annotate(count=Count("pk"), face=_money(currency, "face_value_amount"), cost=_money(currency, "cost_amount"))
        .order_by()
    )
    per_rep: dict = {}
    for row in rows:
        per_rep[row["csr_id"]] = per_rep.get(row["csr_id"], 0) + row["count"]
    top = set(sorted(per_rep, key=lambda rep: -per_rep[rep])[:limit])
    return [row for row in rows if row["csr_id"] in top]


def over_time(issuances: QuerySet[Issuance], currency: str, bucket: str) -> list[dict]:
    """Per day, week or month (in the current time zone), stacked by reason code."""
    trunc = BUCKETS[bucket]("created_at", tzinfo=timezone.get_current_timezone())
    return list(
        given(issuances)
        .annotate(period=trunc)
        .values("period", "reason_code_id", "reason_code__label")
        .annotate(count=Count("pk"), face=_money(currency, "face_value_amount"), cost=_money(currency, "cost_amount"))
        .order_by("period", "reason_code__label")
    )


def by_dimension(issuances: QuerySet[Issuance], currency: str, field: str, label: str) -> list[dict]:
    """Counts, money and use per one dimension (reason code, incident type, offer, channel, rep)."""
    return list(
        given(issuances)
        .values(key=F(field), label=F(label))
        .annotate(
            count=Count("pk"),
            face=_money(currency, "face_value_amount"),
            cost=_money(currency, "cost_amount"),
            with_code=Count("pk", filter=Q(code__isnull=False)),
            used=Count("pk", filter=USED),
        )
        .order_by("-count")
    )


def approvals(issuances: QuerySet[Issuance]) -> dict:
    """Issuances that needed a supervisor: requested, granted, rejected, still waiting."""
    needed = issuances.exclude(breached_limits=[]).exclude(breached_limits__isnull=True)
    return needed.aggregate(
        requested=Count("pk"),
        granted=Count("pk", filter=Q(status__in=GIVEN) | Q(status=Issuance.Status.VOIDED)),
        rejected=Count("pk", filter=Q(status=Issuance.Status.REJECTED)),
        waiting=Count("pk", filter=Q(status=Issuance.Status.PENDING_APPROVAL)),
    )


def value_redeemed(issuances: QuerySet[Issuance], currency: str, bucket: str = "month") -> list[dict]:
    """Face value given versus value redeemed at checkout, per period of issuance."""
    trunc = BUCKETS[bucket]("created_at", tzinfo=timezone.get_current_timezone())
    issued = {
        row["period"]: row["face"]
        for row in given(issuances)
        .filter(currency=currency)
        .annotate(period=trunc)
        .values("period")
        .annotate(face=Sum("face_value_amount"))
        .order_by()
    }
    redeemed_trunc = BUCKETS[bucket]("code__issuance__created_at", tzinfo=timezone.get_current_timezone())
    redeemed = {
        row["period"]: row["value"]
        for row in Redemption.objects.filter(
            status=Redemption.Status.ACTIVE,
            currency=currency,
            code__issuance__in=given(issuances).values("pk"),
        )
        .annotate(period=redeemed_trunc)
        .values("period")
        .annotate(value=Sum("discount_amount"))
        .order_by()
    }
    return [
        {"period": period, "issued": issued.get(period, Decimal("0")), "redeemed": redeemed.get(period, Decimal("0"))}
        for period in sorted(set(issued) | set(redeemed))
    ]


def liability(issuances: QuerySet[Issuance], *, now=None) -> list[dict]:
    """Outstanding liability per currency: codes given, not yet (fully) used, not
    expired. A coupon counts its face value, a gift card its remaining balance."""
    now = now or timezone.now()
    open_codes = given(issuances).filter(code__status="issued", code__expires_at__gt=now)
    return list(
        open_codes.values("currency")
        .annotate(
            codes=Count("pk"),
            coupons=Coalesce(Sum("face_value_amount", filter=Q(code__balance_amount__isnull=True)), ZERO),
            gift_cards=Coalesce(Sum("code__balance_amount", filter=Q(code__balance_amount__isnull=False)), ZERO),
        )
        .annotate(total=F("coupons") + F("gift_cards"))
        .order_by("currency")
    )


# --- Speed ----------------------------------------------------------------------------
SPEED_BANDS = [(10, "≤ 10 s"), (60, "≤ 60 s"), (300, "≤ 5 min"), (3600, "≤ 1 h")]


def speed(issuances: QuerySet[Issuance], bucket: str = "week") -> list[dict]:
    """Per period: appeasements timed from the complaint, and how many within 60 s."""
    trunc = BUCKETS[bucket]("created_at", tzinfo=timezone.get_current_timezone())
    return list(
        given(issuances)
        .filter(complaint_started_at__isnull=False, issued_at__isnull=False)
        .annotate(period=trunc)
        .values("period")
        .annotate(
            timed=Count("pk"),
            within=Count("pk", filter=Q(issued_at__lte=F("complaint_started_at") + timedelta(seconds=60))),
        )
        .order_by("period")
    )


def delivery_speed(issuances: QuerySet[Issuance]) -> list[dict]:
    """Per channel: deliveries of these appeasements by time from issuance to sent."""
    sent = Delivery.objects.filter(
        kind=Delivery.Kind.APPEASEMENT, issuance__in=given(issuances).values("pk"), sent_at__isnull=False
    )
    bands = {
        f"within_{seconds}": Count("pk", filter=Q(sent_at__lte=F("issuance__issued_at") + timedelta(seconds=seconds)))
        for seconds, _label in SPEED_BANDS
    }
    return list(sent.values("channel").annotate(sent=Count("pk"), **bands).order_by("channel"))


def delivery_failures(issuances: QuerySet[Issuance]) -> list[dict]:
    return list(
        Delivery.objects.filter(
            kind=Delivery.Kind.APPEASEMENT,
            issuance__in=issuances.values("pk"),
            status__in=[Delivery.Status.FAILED, Delivery.Status.DEAD],
        )
        .values("channel", "status", "failure_reason")
        .annotate(count=Count("pk"))
        .order_by("channel", "-count")
    )


# --- Cases and recovery -------------------------------------------------------------
def cases_by_type_and_priority(cases: QuerySet[Case]) -> list[dict]:
    return list(
        cases.values("incident_type", "priority")
        .annotate(
            count=Count("pk"),
            first_breached=Count("pk", filter=Q(first_response_breached_at__isnull=False)),
            resolution_breached=Count("pk", filter=Q(resolution_breached_at__isnull=False)),
        )
        .order_by("incident_type", "priority")
    )


def resolution(cases: QuerySet[Case]) -> dict:
    """Resolution rate: cases the customer confirmed solved, over cases closed (not
    calls closed). Reopened cases count against it while open."""
    figures = cases.aggregate(
        total=Count("pk"),
        confirmed=Count("pk", filter=Q(status=Case.Status.CONFIRMED)),
        unconfirmed=Count("pk", filter=Q(status=Case.Status.UNCONFIRMED)),
        resolved_waiting=Count("pk", filter=Q(status=Case.Status.RESOLVED)),
        still_open=Count("pk", filter=Q(status__in=Case.OPEN_STATUSES)),
        reopened=Count("pk", filter=Q(reopened_count__gt=0)),
        first_breached=Count("pk", filter=Q(first_response_breached_at__isnull=False)),
        resolution_breached=Count("pk", filter=Q(resolution_breached_at__isnull=False)),
    )
    closed = figures["confirmed"] + figures["unconfirmed"]
    figures["rate"] = figures["confirmed"] / closed if closed else None
    return figures


def satisfaction(cases: QuerySet[Case], since, until) -> dict:
    """Follow-up CSAT for these cases, and NPS from feedback in the period."""
    answers = FollowUp.objects.filter(case__in=cases.values("pk"), status=FollowUp.Status.ANSWERED).aggregate(
        answers=Count("pk"), csat=Avg("csat"), solved=Count("pk", filter=Q(solved=True))
    )
    nps = Feedback.objects.filter(created_at__gte=since, created_at__lt=until, nps__isnull=False).aggregate(
        n=Count("pk"), promoters=Count("pk", filter=Q(nps__gte=9)), detractors=Count("pk", filter=Q(nps__lte=6))
    )
    answers["nps"] = round(100 * (nps["promoters"] - nps["detractors"]) / nps["n"]) if nps["n"] else None
    answers["nps_n"] = nps["n"]
    return answers


def recovery_by_intervention(cases: QuerySet[Case], currency: str) -> list[dict]:
    """Per incident type, soft against hard interventions: answered follow-ups, the
    share solved, CSAT, and the cost (in `currency`) per customer recovered."""
    soft = list(Intervention.soft())
    outcome = (
        FollowUp.objects.filter(case__in=cases.values("pk"), status=FollowUp.Status.ANSWERED)
        .exclude(case__intervention="")
        .values("case__incident_type", "case__intervention")
        .annotate(answers=Count("pk"), solved=Count("pk", filter=Q(solved=True)), csat=Avg("csat"))
        .order_by()
    )
    costs = (
        given(Issuance.objects.filter(case__in=cases.values("pk"), currency=currency))
        .values("case__incident_type", "case__intervention")
        .annotate(cost=Sum("cost_amount"))
        .order_by()
    )
    cost_of = {(row["case__incident_type"], row["case__intervention"]): row["cost"] for row in costs}
    grouped: dict[tuple[str, str], dict] = {}
    for row in outcome:
        kind = "soft" if row["case__intervention"] in soft else "hard"
        key = (row["case__incident_type"], kind)
        entry = grouped.setdefault(
            key,
            {"incident_type": key[0], "kind": kind, "answers": 0, "solved": 0, "csat_sum": 0.0, "cost": Decimal("0")},
        )
        entry["answers"] += row["answers"]
        entry["solved"] += row["solved"]
        entry["csat_sum"] += (row["csat"] or 0) * row["answers"]
        entry["cost"] += cost_of.get((row["case__incident_type"], row["case__intervention"])) or Decimal("0")
    result = []
    for entry in grouped.values():
        entry["solved_rate"] = entry["solved"] / entry["answers"] if entry["answers"] else None
        entry["csat"] = entry.pop("csat_sum") / entry["answers"] if entry["answers"] else None
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


def return_on_appeasement(issuances: QuerySet[Issuance], cases: QuerySet[Case], currency: str, a: RoiAssumptions):
    """Revenue kept by recovered customers against what the appeasements cost.

    kept customers = cases the customer confirmed solved × churn without recovery
    revenue kept = kept × orders per year × average order value
                   + kept × word-of-mouth reach × conversion × average order value
    """
    recovered = cases.filter(status=Case.Status.CONFIRMED).count()
    cost = totals(issuances, currency)["cost"]
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
