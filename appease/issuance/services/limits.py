"""Limit enforcement: what a rep may give, checked and spent in one atomic step.

Budgets are counters (`BudgetCounter`) per user, currency and period. Spending is one
conditional UPDATE per period:

    UPDATE budget_counter SET spent_cost = spent_cost + :cost, …
     WHERE id = :id AND spent_cost <= :limit - :cost AND spent_face <= :limit - :face

Zero rows means the spend would overshoot: nothing is written, and the caller's
savepoint rolls back the periods already spent. Twenty concurrent issuances by one rep
therefore never overshoot (docs/adr/0005-limit-enforcement.md). Counters of one user
are always updated day → week → month, so concurrent spends cannot deadlock; the
customer row is locked before them (repeat-claim guard), always in that order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from appease.core.money import format_money
from appease.issuance.models import BudgetCounter, Customer, Issuance, LimitBudget, LimitPolicy
from appease.issuance.selectors import PERIODS, amount_text, budget_for, period_starts, policy_for, user_zone
from coupons.models import Offer

# Issuances that count against the repeat-claim guard: given or about to be given.
COUNTED_STATUSES = [
    Issuance.Status.PENDING_APPROVAL,
    Issuance.Status.ISSUED,
    Issuance.Status.DELIVERED,
    Issuance.Status.FAILED,
]


@dataclass(frozen=True)
class LimitBreach:
    """One limit an issuance would break: which, by how much, what remains.

    Data only (amounts as strings in `currency`, counts, the offer's id): an issuance
    keeps it in `breached_limits`, and it is worded when shown, in the reader's
    language and number format (`breach_message`), never frozen in the issuer's.
    """

    limit: str
    limit_value: str | None = None
    attempted: str | None = None
    remaining: str | None = None
    over_by: str | None = None
    currency: str | None = None
    days: int | None = None
    offer_id: int | None = None

    def as_dict(self) -> dict:
        """What is stored: the data, no words."""
        return {key: value for key, value in self.__dict__.items() if value is not None}

    def as_response(self) -> dict:
        """What an API answer carries: the data and its wording in the caller's language."""
        return {**self.as_dict(), "message": breach_message(self.as_dict())}

    @property
    def message(self) -> str:
        return breach_message(self.as_dict())


def _shown(amount: str | None, currency: str | None) -> str:
    if amount is None or not currency:
        return amount or ""
    try:
        return format_money(Decimal(amount), currency)
    except (ArithmeticError, ValueError, LookupError):
        return f"{amount} {currency}"


def breach_message(data: dict, *, offer=None) -> str:
    """A stored breach (`LimitBreach.as_dict()`) in the active language, its amounts in
    that language's format. Breaches stored before they were kept as data carry their
    old `message`: it is shown when the data is not enough to word them again."""
    limit = data.get("limit", "")
    currency = data.get("currency")
    if limit == "offer_not_allowed":
        if offer is None and data.get("offer_id"):
            offer = Offer.objects.filter(pk=data["offer_id"]).first()
        if offer is not None:
            return _("Your limit policy does not include “%(offer)s”.") % {"offer": offer.name}
    elif limit == "no_budget_in_currency" and currency:
        return _("Your limit policy has no budget in %(currency)s.") % {"currency": currency}
    elif limit == "max_face_per_issuance" and data.get("limit_value") is not None:
        return _("The most you can give at once is %(cap)s.") % {"cap": _shown(data["limit_value"], currency)}
    elif limit == "customer_repeat" and data.get("days") is not None:
        cap = int(data["limit_value"])
        return _("This customer already had %(count)d appeasements in the last %(days)d days (limit %(cap)d).") % {
            "count": int(data["attempted"]) - 1,
            "days": int(data["days"]),
            "cap": cap,
        }
    elif limit == "no_policy":
        return _("You have no limit policy: ask a supervisor.")
    elif limit.endswith("_budget") and limit.split("_")[0] in PERIODS:
        return _("The budget changed meanwhile; try again.")
    else:
        period, _sep, measure = limit.partition("_")
        wording = _LIMIT_MESSAGES.get((period, measure))
        if wording is not None and data.get("limit_value") is not None and currency:
            return wording() % {
                "limit": _shown(data["limit_value"], currency),
                "remaining": _shown(data.get("remaining"), currency),
                "over": _shown(data.get("over_by"), currency),
            }
    return data.get("message") or limit


class LimitsExceeded(Exception):
    def __init__(self, breaches: list[LimitBreach]) -> None:
        super().__init__(", ".join(breach.limit for breach in breaches))
        self.breaches = breaches


def _static_breaches(*, policy: LimitPolicy, offer, budget: LimitBudget | None) -> list[LimitBreach]:
    breaches = []
    allowed = [allowed.pk for allowed in policy.allowed_offers.all()]
    if allowed and offer.pk not in allowed:
        breaches.append(LimitBreach("offer_not_allowed", offer_id=offer.pk))
    if offer.is_soft:
        return breaches
    if budget is None:
        breaches.append(LimitBreach("no_budget_in_currency", currency=offer.currency))
        return breaches
    cap = budget.max_face_per_issuance_amount
    if cap is not None and offer.value_amount > cap:
        breaches.append(
            LimitBreach(
                "max_face_per_issuance",
                limit_value=amount_text(cap, offer.currency),
                attempted=amount_text(offer.value_amount, offer.currency),
                over_by=amount_text(offer.value_amount - cap, offer.currency),
                remaining=amount_text(cap, offer.currency),
                currency=offer.currency,
            )
        )
    return breaches


def _repeat_breach(*, policy: LimitPolicy, customer: Customer, now: datetime) -> LimitBreach | None:
    cap = policy.max_issuances_per_customer
    if cap is None:
        return None
    since = now - timedelta(days=policy.customer_window_days)
    count = (
        Issuance.objects.filter(customer=customer, created_at__gte=since, status__in=COUNTED_STATUSES)
        .exclude(offer__kind__in=["apology", "callback"])
        .count()
    )
    if count < cap:
        return None
    return LimitBreach(
        "customer_repeat",
        days=policy.customer_window_days,
        limit_value=str(cap),
        attempted=str(count + 1),
        over_by=str(count + 1 - cap),
        remaining="0",
    )


def _counters(*, user, currency: str, starts: dict[str, date]) -> dict[str, BudgetCounter]:
    """The user's counters for these periods, created if missing (race-safe)."""

    def current() -> dict[str, BudgetCounter]:
        found = BudgetCounter.objects.filter(
            user=user, currency=currency, period__in=list(starts), period_start__in=list(starts.values())
        )
        return {counter.period: counter for counter in found if counter.period_start == starts[counter.period]}

    counters = current()
    if len(counters) < len(starts):
        # First issuance of a period: INSERT … ON CONFLICT DO NOTHING, then read again.
        BudgetCounter.objects.bulk_create(
            [
                BudgetCounter(user=user, currency=currency, period=period, period_start=start)
                for period, start in starts.items()
                if period not in counters
            ],
            ignore_conflicts=True,
        )
        counters = current()
    return counters


def _spend(*, counter: BudgetCounter, budget: LimitBudget, cost: Decimal, face: Decimal) -> list[LimitBreach]:
    condition = Q(pk=counter.pk)
    for measure, amount in (("cost", cost), ("face", face)):
        limit = budget.limit(counter.period, measure)
        if limit is not None:
            condition &= Q(**{f"spent_{measure}_amount__lte": limit - amount})
    spent = BudgetCounter.objects.filter(condition).update(
        spent_cost_amount=F("spent_cost_amount") + cost,
        spent_face_amount=F("spent_face_amount") + face,
        issuances_count=F("issuances_count") + 1,
    )
    if spent:
        return []
    counter.refresh_from_db()
    breaches: list[LimitBreach] = []
    for measure, amount in (("cost", cost), ("face", face)):
        limit = budget.limit(counter.period, measure)
        used = getattr(counter, f"spent_{measure}_amount")
        if limit is not None and used + amount > limit:
            breaches.append(
                LimitBreach(
                    f"{counter.period}_{measure}",
                    limit_value=amount_text(limit, counter.currency),
                    attempted=amount_text(used + amount, counter.currency),
                    remaining=amount_text(max(limit - used, Decimal(0)), counter.currency),
                    over_by=amount_text(used + amount - limit, counter.currency),
                    currency=counter.currency,
                )
            )
    # The update refused but the re-read fits: the budget changed in between. Refuse.
    return breaches or [LimitBreach(f"{counter.period}_budget")]


_LIMIT_MESSAGES = {
    ("day", "cost"): lambda: _("Daily cost budget %(limit)s: %(over)s over, %(remaining)s left today."),
    ("week", "cost"): lambda: _("Weekly cost budget %(limit)s: %(over)s over, %(remaining)s left this week."),
    ("month", "cost"): lambda: _("Monthly cost budget %(limit)s: %(over)s over, %(remaining)s left this month."),
    ("day", "face"): lambda: _("Daily face-value budget %(limit)s: %(over)s over, %(remaining)s left today."),
    ("week", "face"): lambda: _("Weekly face-value budget %(limit)s: %(over)s over, %(remaining)s left this week."),
    ("month", "face"): lambda: _("Monthly face-value budget %(limit)s: %(over)s over, %(remaining)s left this month."),
}


def limits_spend(*, user, offer, customer: Customer | None, check_customer: bool = True, now=None) -> LimitPolicy:
    """Check every limit and spend the budgets, atomically, in the caller's transaction.

    Raises LimitsExceeded with every breach (and spends nothing) when any limit would
    be broken. `check_customer=False` skips the repeat-claim guard (a supervisor's
    approval overrides it; their budget still applies).
    """
    now = now or timezone.now()
    policy = policy_for(user)
    if policy is None:
        raise LimitsExceeded([LimitBreach("no_policy")])
    budget = budget_for(policy, offer.currency)
    breaches = _static_breaches(policy=policy, offer=offer, budget=budget)
    if check_customer and customer is not None and not offer.is_soft:
        # Serialise issuances to one customer so the count below cannot be raced.
        Customer.objects.select_for_update().filter(pk=customer.pk).first()
        repeat = _repeat_breach(policy=policy, customer=customer, now=now)
        if repeat is not None:
            breaches.append(repeat)
    if breaches:
        raise LimitsExceeded(breaches)
    if offer.is_soft or budget is None:
        return policy
    counters = _counters(user=user, currency=offer.currency, starts=period_starts(now, user_zone(user)))
    # A savepoint: when a later period refuses, the earlier periods' spends roll back.
    with transaction.atomic():
        for period in PERIODS:
            breaches.extend(
                _spend(counter=counters[period], budget=budget, cost=offer.cost_amount, face=offer.value_amount)
            )
        if breaches:
            raise LimitsExceeded(breaches)
    return policy
