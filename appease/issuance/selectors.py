"""Reads of the issuance domain shared by the API, the CSR pages and reporting."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Case, Count, F, Q, QuerySet, Sum, Value, When
from django.utils import timezone

from appease.core.money import quantize
from appease.core.roles import SUPERVISOR, has_role
from appease.issuance.models import (
    BudgetCounter,
    Customer,
    CustomerOrder,
    Issuance,
    LimitBudget,
    LimitPolicy,
    ReasonCode,
    StaffProfile,
    Team,
)
from appease.issuance.models import IncidentType as IncidentType
from coupons.models import Offer

# The domain's words other apps count and label issuances by (reporting's measures,
# filters and rollup columns), beside the IncidentType choices above.
IssuanceStatus = Issuance.Status
StartSource = Issuance.StartSource


def issuances_with_status() -> QuerySet[Issuance]:
    """Issuances with `effective_status`: `redeemed` once their code is."""
    return (
        Issuance.objects.select_related("csr", "customer", "offer", "reason_code", "code", "decided_by")
        .prefetch_related("deliveries")
        .annotate(effective_status_db=Case(When(code__status="redeemed", then=Value("redeemed")), default=F("status")))
    )


def issuances_visible_to(user) -> QuerySet[Issuance]:
    """A rep sees their own; a supervisor their team's (all, without a team); admins all."""
    queryset = issuances_with_status()
    if user.is_superuser:
        return queryset
    if has_role(user, SUPERVISOR):
        team_id = StaffProfile.objects.filter(user=user).values_list("team_id", flat=True).first()
        if team_id is None:
            return queryset
        return queryset.filter(Q(csr__profile__team_id=team_id) | Q(csr=user))
    return queryset.filter(csr=user)


def approvals_pending(user) -> QuerySet[Issuance]:
    return (
        issuances_visible_to(user)
        .filter(status=Issuance.Status.PENDING_APPROVAL)
        .exclude(csr=user)
        .order_by("created_at")
    )


def customers_matching(*, query: str) -> QuerySet[Customer]:
    """By name, email, phone, external id or order reference: every match, by name
    (the rep's search box shows the first few, the API pages through them)."""
    query = query.strip()
    if not query:
        return Customer.objects.none()
    digits = "".join(ch for ch in query if ch.isdigit() or ch == "+")
    condition = Q(name__icontains=query) | Q(email__iexact=query) | Q(external_id=query) | Q(orders__reference=query)
    if len(digits) >= 6:
        condition |= Q(phone__endswith=digits.lstrip("+")[-9:])
    return Customer.objects.filter(condition).distinct().order_by("name", "pk")


def customer_search(*, query: str, limit: int = 20) -> QuerySet[Customer]:
    """The first `limit` customers `customers_matching` the query."""
    return customers_matching(query=query)[:limit]


def customer_appeasement_summary(*, customer: Customer, window_days: int = 30) -> dict:
    """How often and how much this customer has been appeased lately, across reps."""
    since = timezone.now() - timedelta(days=window_days)
    recent = Issuance.objects.filter(customer=customer, created_at__gte=since).exclude(
        status__in=[Issuance.Status.REJECTED, Issuance.Status.VOIDED]
    )
    totals = recent.values("currency").annotate(count=Count("pk"), face=Sum("face_value_amount")).order_by("currency")
    return {
        "window_days": window_days,
        "count": sum(row["count"] for row in totals),
        "reps": recent.values("csr").distinct().count(),
        "by_currency": [{"currency": row["currency"], "count": row["count"], "face": row["face"]} for row in totals],
    }


def issuance_recent_repeat(*, customer: Customer, offer, within: timedelta) -> Issuance | None:
    """The latest appeasement of the same offer to the same customer within `within`
    (by any rep, not rejected or voided): giving it again asks the rep to confirm."""
    return (
        Issuance.objects.filter(customer=customer, offer=offer, created_at__gte=timezone.now() - within)
        .exclude(status__in=[Issuance.Status.REJECTED, Issuance.Status.VOIDED])
        .select_related("csr")
        .order_by("-created_at")
        .first()
    )


def offers_available_to(user, *, customer: Customer | None = None) -> QuerySet:
    """Active offers the user's limit policy lets them give (all, if it names none);
    with `customer`, only those the customer can use (their currency, or soft)."""

    policy = policy_for(user)
    offers = Offer.objects.filter(is_active=True)
    if customer is not None:
        offers = offers.filter(Offer.usable_in(customer.currency))
    if policy is not None and policy.allowed_offers.exists():
        offers = offers.filter(pk__in=policy.allowed_offers.values("pk"))
    return offers.order_by("kind", "name")


def staff_languages(user) -> list[str]:
    """The languages a member of staff works in (their profile); empty: any."""
    profile = getattr(user, "profile", None) if user is not None else None
    return list(profile.languages or []) if profile is not None else []


def staff_reading_preferences(emails: list[str]) -> dict[str, tuple[str, str]]:
    """{lowercased email: (language, time zone)} of the active staff among `emails`, from
    their profiles: how mail to them is worded and timed (appease.core.readers)."""
    return {
        email.lower(): (language, zone)
        for email, language, zone in StaffProfile.objects.filter(
            user__email__in=emails, user__is_active=True
        ).values_list("user__email", "language", "time_zone")
    }


# --- Budgets ---------------------------------------------------------------------------
# What a rep has left is a read of the counters that limits_spend (services.limits)
# writes under its conditional UPDATE; reading them takes no lock and writes nothing.


@dataclass(frozen=True)
class Remaining:
    currency: str
    spent: dict[str, dict[str, str]]
    remaining: dict[str, dict[str, str | None]]
    limits: dict[str, dict[str, str | None]]


def limits_remaining(*, user, currency: str, now=None) -> Remaining | None:
    """What the user has spent and has left today, this week and this month."""
    policy = policy_for(user)
    if policy is None:
        return None
    budget = budget_for(policy, currency)
    starts = period_starts(now or timezone.now(), user_zone(user))
    counters = {
        counter.period: counter
        for counter in BudgetCounter.objects.filter(user=user, currency=currency, period__in=list(starts))
        if counter.period_start == starts[counter.period]
    }
    spent, remaining, limits = {}, {}, {}
    for period in PERIODS:
        counter = counters.get(period)
        spent[period], remaining[period], limits[period] = {}, {}, {}
        for measure in MEASURES:
            used = getattr(counter, f"spent_{measure}_amount") if counter else Decimal(0)
            limit = budget.limit(period, measure) if budget else Decimal(0)
            spent[period][measure] = amount_text(used, currency)
            limits[period][measure] = amount_text(limit, currency)
            remaining[period][measure] = None if limit is None else amount_text(max(limit - used, Decimal(0)), currency)
    return Remaining(currency=currency, spent=spent, remaining=remaining, limits=limits)


def budgets_remaining(user) -> list[Remaining]:
    """What the user has left in each currency their policy budgets (none without a policy)."""
    policy = policy_for(user)
    if policy is None:
        return []
    return [limits_remaining(user=user, currency=code) for code in policy.budgets.values_list("currency", flat=True)]


# --- For reports: the live rows they count, the names they show -----------------------


def issuances_for_reports() -> QuerySet[Issuance]:
    """Every issuance, as it is (no joins, no annotations): what reports aggregate."""
    return Issuance.objects.all()


def order_values(*, since, until) -> dict[str, dict]:
    """The customers' orders placed in [since, until), per currency: how many and their
    average total (money is never averaged across currencies)."""
    rows = (
        CustomerOrder.objects.filter(placed_at__gte=since, placed_at__lt=until)
        .values("currency")
        .annotate(orders=Count("pk"), total=Sum("total_amount"))
        .order_by()
    )
    return {
        row["currency"]: {"orders": row["orders"], "average": row["total"] / row["orders"]}
        for row in rows
        if row["orders"]
    }


def issuances_changed_since(since) -> QuerySet[Issuance]:
    """Issuances decided (approved or rejected) or voided since `since` (indexed timestamps)."""
    return Issuance.objects.filter(Q(decided_at__gte=since) | Q(voided_at__gte=since))


def approvals_decided(*, user, since, until) -> dict[str, int]:
    """How many approval requests `user` granted and rejected in [since, until)."""
    return Issuance.objects.filter(decided_by=user, decided_at__gte=since, decided_at__lt=until).aggregate(
        granted=Count("pk", filter=~Q(status=Issuance.Status.REJECTED)),
        rejected=Count("pk", filter=Q(status=Issuance.Status.REJECTED)),
    )


def team_member_ids(team) -> list[int]:
    """The user ids of the team's members (their staff profiles)."""
    return list(StaffProfile.objects.filter(team=team).values_list("user_id", flat=True))


def teams() -> QuerySet[Team]:
    return Team.objects.all()


def reason_codes() -> QuerySet[ReasonCode]:
    return ReasonCode.objects.all()


def reason_codes_active() -> QuerySet[ReasonCode]:
    """The reasons a rep may give an appeasement for (what the give form lists), by label;
    the label reads in the active language (django-modeltranslation)."""
    return ReasonCode.objects.filter(is_active=True).order_by("label", "pk")


def reason_code_labels() -> dict[int, str]:
    """{reason code id: label} of every reason code."""
    return {pk: reason.label for pk, reason in ReasonCode.objects.in_bulk().items()}


# --- Limit policies: whose, in which currency, on whose clock ---------------------------

PERIODS = (BudgetCounter.Period.DAY, BudgetCounter.Period.WEEK, BudgetCounter.Period.MONTH)
MEASURES = ("cost", "face")


def policy_for(user) -> LimitPolicy | None:
    """The user's own policy, else the default of one of their groups.

    Kept on the user object for the rest of the request (an issuance asks three times).
    """
    if not hasattr(user, "_appease_policy"):
        policy = (
            LimitPolicy.objects.filter(staffprofile_users__user=user)
            .prefetch_related("budgets", "allowed_offers")
            .first()
        )
        if policy is None:
            policy = (
                LimitPolicy.objects.filter(group__in=user.groups.all())
                .prefetch_related("budgets", "allowed_offers")
                .order_by("name")
                .first()
            )
        user._appease_policy = policy
    return user._appease_policy


def budget_for(policy: LimitPolicy, currency: str) -> LimitBudget | None:
    """The policy's budget in `currency`, if it has one."""
    return next((budget for budget in policy.budgets.all() if budget.currency == currency), None)


def user_zone(user) -> zoneinfo.ZoneInfo:
    """“Today” for budgets is the rep's day: their profile's zone, else the server's."""
    profile = getattr(user, "profile", None)
    name = (profile.time_zone if profile is not None else "") or settings.TIME_ZONE
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def period_starts(now: datetime, zone: zoneinfo.ZoneInfo) -> dict[str, date]:
    today = timezone.localtime(now, zone).date()
    return {
        BudgetCounter.Period.DAY: today,
        BudgetCounter.Period.WEEK: today - timedelta(days=today.weekday()),
        BudgetCounter.Period.MONTH: today.replace(day=1),
    }


def amount_text(amount: Decimal | None, currency: str) -> str | None:
    """An amount as kept in breaches and shown in budgets: a string to the currency's exponent."""
    return None if amount is None else str(quantize(amount, currency))


def customers_for_ticket(*, email: str = "", phone: str = "", external_id: str = "", limit: int = 10) -> list[Customer]:
    """The customers a helpdesk ticket's requester may be, best evidence first: the
    shop's id (unique), else the email, else the phone (its last nine digits, as the
    search matches them). Erased customers are nobody."""
    customers = Customer.objects.filter(erased_at__isnull=True)
    if external_id:
        found = list(customers.filter(external_id=external_id)[:1])
        if found:
            return found
    if email:
        found = list(customers.filter(email__iexact=email).order_by("-updated_at")[:limit])
        if found:
            return found
    digits = "".join(ch for ch in phone if ch.isdigit())
    if len(digits) >= 6:
        return list(customers.filter(phone__endswith=digits[-9:]).order_by("-updated_at")[:limit])
    return []
