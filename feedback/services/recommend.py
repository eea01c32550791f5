"""Which intervention fits this case: the supervisors' rules, then what worked.

Rules (RecommendationRule) match the case's incident type, the customer's tier and
how many incidents they had lately, and say soft (apology, explanation, callback) or
hard (discount, gift card, refund credit) with a suggested value scaled to the
customer and the size of the failure.

Outcomes: for each incident type × intervention, the share of answered follow-ups
that said "solved" (with a 95% Wilson interval), the average CSAT and the share of
given codes that were redeemed. Once a combination has RECOMMENDATION_MIN_SAMPLE
answers, it ranks by the interval's lower bound, ahead of rules without evidence: a
78% ± 4% beats a hopeful rule, and a 90% from five answers does not beat anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db.models import Avg, Count, OuterRef, Q, Subquery
from django.utils.translation import gettext as _

from appease.issuance.models import CustomerOrder, Issuance
from appease.issuance.selectors import offers_available_to
from coupons.models import Offer
from feedback.models import Case, FollowUp, Intervention, RecommendationRule
from feedback.services.scoring import past_incidents

TIER_FACTOR = {"standard": Decimal("1"), "silver": Decimal("1.25"), "gold": Decimal("1.5"), "platinum": Decimal("2")}
OFFER_KINDS = {
    Intervention.APOLOGY: ["apology"],
    Intervention.CALLBACK: ["callback"],
    Intervention.EXPLANATION: [],
    Intervention.DISCOUNT: ["percent_off", "amount_off", "free_item"],
    Intervention.GIFT_CARD: ["gift_card"],
    Intervention.REFUND_CREDIT: ["amount_off"],
}


@dataclass(frozen=True)
class Evidence:
    n: int
    solved: int
    ci_low: float
    ci_high: float
    csat: float | None
    redeemed: int
    codes: int

    @property
    def solved_rate(self) -> float:
        return self.solved / self.n if self.n else 0.0

    @property
    def redemption_rate(self) -> float | None:
        return self.redeemed / self.codes if self.codes else None

    @property
    def solved_percent(self) -> int:
        return round(self.solved_rate * 100)

    @property
    def ci_low_percent(self) -> int:
        return round(self.ci_low * 100)

    @property
    def ci_high_percent(self) -> int:
        return round(self.ci_high * 100)

    @property
    def redemption_percent(self) -> int | None:
        rate = self.redemption_rate
        return None if rate is None else round(rate * 100)

    @property
    def enough(self) -> bool:
        return self.n >= settings.RECOMMENDATION_MIN_SAMPLE

    def __str__(self) -> str:
        return f"{self.solved_percent}% solved, n={self.n}"


@dataclass(frozen=True)
class Recommendation:
    intervention: str
    reason: str
    offer: Offer | None
    suggested_value: Decimal | None
    currency: str
    evidence: Evidence | None
    rule_id: int | None
    ranked_by: str  # "learned" or "rule"

    @property
    def label(self) -> str:
        return Intervention(self.intervention).label

    @property
    def soft(self) -> bool:
        return self.intervention in Intervention.soft()


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion (sound for small n and 0% / 100%)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = p + z * z / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    denominator = 1 + z * z / n
    return max(0.0, (centre - margin) / denominator), min(1.0, (centre + margin) / denominator)


def intervention_outcomes(incident_type: str) -> dict[str, Evidence]:
    """Per intervention, what happened after cases of this incident type: two queries.

    Each answer counts for the intervention its follow-up asked about (what the case got
    in that round), not the case's latest one: a reopened case's "not solved" belongs to
    what failed. A code counts for the intervention of the first follow-up after it was
    given (the round it was part of); codes of a round not resolved yet do not count.
    """
    answers = (
        FollowUp.objects.filter(status=FollowUp.Status.ANSWERED, case__incident_type=incident_type, intervention__gt="")
        .values("intervention")
        .annotate(n=Count("pk"), solved=Count("pk", filter=Q(solved=True)), csat=Avg("csat"))
        .order_by()
    )
    round_of = (
        FollowUp.objects.filter(case=OuterRef("case"), created_at__gte=OuterRef("created_at"))
        .order_by("created_at")
        .values("intervention")[:1]
    )
    codes = (
        Issuance.objects.filter(case__incident_type=incident_type, code__isnull=False)
        .annotate(intervention=Subquery(round_of))
        .filter(intervention__gt="")
        .values("intervention")
        .annotate(codes=Count("pk"), redeemed=Count("pk", filter=Q(code__status="redeemed")))
        .order_by()
    )
    redemption = {row["intervention"]: (row["redeemed"], row["codes"]) for row in codes}
    outcomes = {}
    for row in answers:
        intervention = row["intervention"]
        low, high = wilson(row["solved"], row["n"])
        redeemed, given = redemption.get(intervention, (0, 0))
        outcomes[intervention] = Evidence(
            n=row["n"],
            solved=row["solved"],
            ci_low=low,
            ci_high=high,
            csat=float(row["csat"]) if row["csat"] is not None else None,
            redeemed=redeemed,
            codes=given,
        )
    return outcomes


def _order_total(case: Case) -> Decimal:
    if not case.order_reference:
        return Decimal("0")
    order = CustomerOrder.objects.filter(reference=case.order_reference).only("total_amount").first()
    return order.total_amount if order else Decimal("0")


def suggested_value(rule: RecommendationRule, case: Case) -> Decimal | None:
    if rule.intervention in Intervention.soft():
        return None
    value = rule.base_amount + _order_total(case) * rule.percent_of_order / Decimal("100")
    tier = case.customer.tier if case.customer else "standard"
    value *= TIER_FACTOR.get(tier, Decimal("1"))
    if rule.max_amount is not None:
        value = min(value, rule.max_amount)
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _offer_for(intervention: str, value: Decimal | None, currency: str, user) -> Offer | None:
    """The offer of this intervention's kind the rep may give whose value is closest to
    the suggestion without going over it (the smallest one when all are over)."""
    kinds = OFFER_KINDS.get(intervention, [])
    if not kinds:
        return None
    offers = offers_available_to(user) if user is not None else Offer.objects.filter(is_active=True)
    candidates = list(offers.filter(kind__in=kinds).filter(Offer.usable_in(currency)))
    if not candidates:
        return None
    if value is None:
        return candidates[0]
    under = [offer for offer in candidates if offer.value_amount <= value]
    if under:
        return max(under, key=lambda offer: offer.value_amount)
    return min(candidates, key=lambda offer: offer.value_amount)


def _rule_offer(rule: RecommendationRule, value: Decimal | None, customer, user) -> Offer | None:
    """The rule's own offer, or the closest in its currency; never one the customer
    cannot use (another currency: its code would be refused at their checkout)."""
    offer = rule.offer if rule.offer_id else _offer_for(rule.intervention, value, rule.currency, user)
    if offer is not None and customer is not None and not offer.usable_by(customer):
        return None
    return offer


def recommend(case: Case, *, user=None) -> list[Recommendation]:
    """The interventions for this case, best first."""
    customer = case.customer
    repeats = past_incidents(customer, exclude_case_id=case.pk) if customer else 0
    rules = RecommendationRule.objects.filter(
        Q(incident_type=case.incident_type) | Q(incident_type=""),
        Q(tier=customer.tier if customer else "standard") | Q(tier=""),
        is_active=True,
        min_past_incidents__lte=repeats,
    ).select_related("offer")
    outcomes = intervention_outcomes(case.incident_type)
    currency = customer.currency if customer else settings.DEFAULT_CURRENCY
    chosen: dict[str, Recommendation] = {}
    for rule in sorted(rules, key=lambda rule: (rule.rank, -rule.min_past_incidents, rule.pk)):
        if rule.intervention in chosen:
            continue
        value = suggested_value(rule, case)
        evidence = outcomes.get(rule.intervention)
        chosen[rule.intervention] = Recommendation(
            intervention=rule.intervention,
            reason=rule.reason,
            offer=_rule_offer(rule, value, customer, user),
            suggested_value=value,
            currency=rule.currency,
            evidence=evidence,
            rule_id=rule.pk,
            ranked_by="learned" if evidence and evidence.enough else "rule",
        )
    for intervention, evidence in outcomes.items():
        if intervention not in chosen and evidence.enough:
            chosen[intervention] = Recommendation(
                intervention=intervention,
                reason=_("Learned from outcomes: %(rate)d%% solved, n=%(n)d.")
                % {"rate": evidence.solved_percent, "n": evidence.n},
                offer=_offer_for(intervention, None, currency, user),
                suggested_value=None,
                currency=currency,
                evidence=evidence,
                rule_id=None,
                ranked_by="learned",
            )
    rule_order = {key: index for index, key in enumerate(chosen)}

    def rank(item: Recommendation):
        if item.evidence and item.evidence.enough:
            return (0, -item.evidence.ci_low, rule_order[item.intervention])
        return (1, 0.0, rule_order[item.intervention])

    return sorted(chosen.values(), key=rank)


def recommend_for(*, customer, incident_type: str, order_reference: str = "", user=None) -> list[Recommendation]:
    """The same ranking for a complaint that has no case here yet (a helpdesk's ticket):
    `recommend` on the case it would be, never saved."""
    return recommend(Case(customer=customer, incident_type=incident_type, order_reference=order_reference), user=user)
