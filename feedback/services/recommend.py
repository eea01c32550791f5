"""What to give this customer for this incident, best first, by expected value.

The *arms* are what the rep may give this customer: each offer their policy allows in
the customer's currency (`offer:<id>`), and the apology (soft, cost 0; an apology offer
is the apology arm). An offer in another currency is never an arm: its cost cannot be
set against this customer's value, and its code would be refused at their checkout.

The *evidence* is the answered appeasements (`AppeasementOutcome`) of this incident
type, per arm, and the same in the customer's segment (tier, value band, repeat band,
earlier appeasements), in one aggregate query; appeasements rejected or voided do not
count. The two-level estimator (`feedback.services.estimator`, ADR 0012) turns them
into each arm's solved share with its 95% interval, the segment's figure shrunk toward
the incident type's.

*Ranking*: an arm with RECOMMENDATION_MIN_SAMPLE answers for the incident type ranks by
expected net value, `P(solved) × recovery value − cost`, where the recovery value is
what keeping this customer is worth (`recovery_value`: the larger of their tier's floor
and a share of their lifetime value). So when two arms solve as often the cheaper one
wins, and a customer worth more earns a costlier arm only when it solves more. Arms with
thinner evidence follow, in the order of the supervisors' rules (`RecommendationRule`:
incident type × "this tier or higher" × past incidents), which also give the "why" text;
then the apology; then the rest, cheapest first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from babel.numbers import format_decimal, format_percent
from django.conf import settings
from django.db.models import Avg, Count, OuterRef, Q, Subquery
from django.utils import translation
from django.utils.translation import gettext as _

from appease.core.money import format_money, quantize
from appease.issuance.models import Customer, CustomerOrder, Issuance
from appease.issuance.selectors import offers_available_to
from coupons.models import Offer
from feedback.models import (
    APOLOGY_ARM,
    AppeasementOutcome,
    Case,
    FollowUp,
    Intervention,
    RecommendationRule,
    Segment,
    arm_key,
)
from feedback.services.estimator import Estimate, Tally, estimates, incident_estimates, rank
from feedback.services.outcomes import CustomerSegment, customer_segment, intervention_of
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
# An apology and an explanation are words, not an offer: both are the apology arm.
WORDS = {Intervention.APOLOGY, Intervention.EXPLANATION}
# What an appeasement that was taken back says about its arm: nothing.
NOT_GIVEN = [Issuance.Status.REJECTED, Issuance.Status.VOIDED]


@dataclass(frozen=True)
class Arm:
    key: str
    offer: Offer | None
    cost: Decimal


@dataclass(frozen=True)
class Recommendation:
    """One arm for this customer and incident type, with what it rests on."""

    arm: str
    offer: Offer | None  # None: the apology, and no apology offer the rep may give
    intervention: str
    reason: str
    rule_id: int | None
    estimate: Estimate
    cost: Decimal
    currency: str
    recovery_value: Decimal
    basis: str  # "segment", "incident" or "prior" (thin evidence: the rules rank)
    suggested_value: Decimal | None = None
    segment: CustomerSegment | None = field(default=None, compare=False)
    # The arm's figure for the incident type as a whole: what the evidence line shows
    # while the customer's segment has too few answers of its own (a segment never seen
    # is honestly uncertain, but "79% (58–93%), n=2,000" would read as a contradiction).
    overall: Estimate | None = field(default=None, compare=False)

    @property
    def label(self) -> str:
        return Intervention(self.intervention).label

    @property
    def soft(self) -> bool:
        return self.arm == APOLOGY_ARM or (self.offer is not None and self.offer.is_soft)

    @property
    def ranked_by(self) -> str:
        return "rule" if self.basis == "prior" else "learned"

    @property
    def solved_share(self) -> float:
        return self.estimate.mean

    @property
    def interval(self) -> tuple[float, float]:
        return self.estimate.interval

    @property
    def n_segment(self) -> int:
        return self.estimate.n_segment

    @property
    def n_incident(self) -> int:
        return self.estimate.n_incident

    @property
    def net_value(self) -> Decimal:
        """Expected value of giving it: P(solved) × the recovery value − the cost."""
        share = Decimal(str(round(self.estimate.mean, 6)))
        return quantize(share * self.recovery_value - self.cost, self.currency)

    @property
    def cost_per_recovered(self) -> Decimal | None:
        """The cost over the solved share; None for an arm that costs nothing."""
        if self.cost <= 0 or self.estimate.mean <= 0:
            return None
        return quantize(self.cost / Decimal(str(round(self.estimate.mean, 6))), self.currency)

    @property
    def arm_label(self) -> str:
        if self.arm == APOLOGY_ARM:
            return _("Apology")
        return self.offer.name if self.offer is not None else self.arm

    @property
    def evidence_line(self) -> str:
        """“Apology: 78% solved (71–84%), n=212, cost 0”, in the reader's language and
        number format (worded when read, never stored)."""
        locale = translation.to_locale(translation.get_language() or settings.LANGUAGE_CODE)
        cost = format_money(self.cost, self.currency) if self.cost > 0 else format_decimal(0, locale=locale)
        if self.n_incident == 0:
            return _("%(arm)s: no answers yet, cost %(cost)s") % {"arm": self.arm_label, "cost": cost}
        # The figure it rests on: the segment's own once it has enough answers, else the
        # incident type's (basis_line says which).
        if self.basis == "segment" or self.overall is None:
            shown, n = self.estimate, self.n_segment if self.basis == "segment" else self.n_incident
        else:
            shown, n = self.overall, self.n_incident
        low, high = shown.interval
        words = {
            "arm": self.arm_label,
            "share": _percent(shown.mean, locale),
            "low": format_decimal(round(low * 100), locale=locale),
            "high": _percent(high, locale),
            "n": format_decimal(n, locale=locale),
            "cost": cost,
        }
        per_recovered = self.cost_per_recovered
        if per_recovered is None:
            return _("%(arm)s: %(share)s solved (%(low)s–%(high)s), n=%(n)s, cost %(cost)s") % words
        return _(
            "%(arm)s: %(share)s solved (%(low)s–%(high)s), n=%(n)s, cost %(cost)s "
            "→ %(per_recovered)s per recovered customer"
        ) % {**words, "per_recovered": format_money(per_recovered, self.currency)}

    @property
    def basis_line(self) -> str:
        """What the figure rests on, in words."""
        if self.basis == "segment":
            return _("From customers like this one (%(n)s answers).") % {"n": self.n_segment}
        if self.basis == "incident":
            return _("From this incident type (%(n)s answers; %(segment)s like this customer).") % {
                "n": self.n_incident,
                "segment": self.n_segment,
            }
        return _("Too few answers yet: ranked by the rules.")


def _percent(share: float, locale: str) -> str:
    return format_percent(round(share, 2), locale=locale)


def recovery_value(customer: Customer | None) -> Decimal:
    """What keeping this customer is worth, in their currency: the larger of their tier's
    floor (RECOVERY_VALUE_FLOORS, which rise with the tier) and RECOVERY_VALUE_SHARE of
    their lifetime value."""
    floors = settings.RECOVERY_VALUE_FLOORS
    if customer is None:
        return quantize(floors[Customer.Tier.STANDARD], settings.DEFAULT_CURRENCY)
    floor = floors.get(customer.tier, floors[Customer.Tier.STANDARD])
    share = customer.lifetime_value_amount * settings.RECOVERY_VALUE_SHARE
    return quantize(max(floor, share), customer.currency)


def tiers_up_to(tier: str) -> list[str]:
    """This tier and the ones below it: a rule for gold applies to gold and platinum."""
    order = Segment.TIERS
    return order[: order.index(tier) + 1] if tier in order else order[:1]


def arms_for(offers, currency: str) -> dict[str, Arm]:
    """The arms among `offers` (what the rep may give this customer): the apology (its
    offer, if one is listed), and each offer in `currency`. A soft offer in another
    currency (a callback) is an arm only when it costs nothing."""
    arms = {APOLOGY_ARM: Arm(APOLOGY_ARM, None, Decimal("0"))}
    for offer in offers:
        key = arm_key(offer)
        if key == APOLOGY_ARM:
            if arms[APOLOGY_ARM].offer is None:
                arms[APOLOGY_ARM] = Arm(APOLOGY_ARM, offer, Decimal("0"))
            continue
        if offer.currency == currency:
            arms[key] = Arm(key, offer, offer.cost_amount)
        elif offer.is_soft and offer.cost_amount == 0:
            arms[key] = Arm(key, offer, Decimal("0"))
    return arms


def arm_tallies(*, incident_type: str, segment: CustomerSegment) -> tuple[dict[str, Tally], dict[str, Tally]]:
    """Answered appeasements of this incident type per arm: (any segment, this segment).
    One query; taken-back appeasements (rejected, voided) do not count."""
    in_segment = Q(**segment.as_fields())
    rows = (
        AppeasementOutcome.objects.filter(incident_type=incident_type, answered_at__isnull=False, solved__isnull=False)
        .filter(Q(issuance__isnull=True) | ~Q(issuance__status__in=NOT_GIVEN))
        .values("arm")
        .annotate(
            answers=Count("pk"),
            answers_solved=Count("pk", filter=Q(solved=True)),
            in_segment=Count("pk", filter=in_segment),
            in_segment_solved=Count("pk", filter=in_segment & Q(solved=True)),
        )
        .order_by()
    )
    incident, in_this_segment = {}, {}
    for row in rows:
        incident[row["arm"]] = Tally(row["answers"], row["answers_solved"])
        in_this_segment[row["arm"]] = Tally(row["in_segment"], row["in_segment_solved"])
    return incident, in_this_segment


def suggested_value(rule: RecommendationRule, case: Case, order_total: Decimal | None = None) -> Decimal | None:
    """The rule's size for this case: `(base + order total × percent) × tier factor`,
    capped; in the rule's currency. None for a soft intervention."""
    if rule.intervention in Intervention.soft():
        return None
    if order_total is None:
        order_total = _order_total(case)
    value = rule.base_amount + order_total * rule.percent_of_order / Decimal("100")
    tier = case.customer.tier if case.customer else "standard"
    value *= TIER_FACTOR.get(tier, Decimal("1"))
    if rule.max_amount is not None:
        value = min(value, rule.max_amount)
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _order_total(case: Case) -> Decimal:
    if not case.order_reference:
        return Decimal("0")
    order = CustomerOrder.objects.filter(reference=case.order_reference).only("total_amount").first()
    return order.total_amount if order else Decimal("0")


def _rule_arm(rule: RecommendationRule, arms: dict[str, Arm], value: Decimal | None, currency: str) -> Arm | None:
    """The arm a rule recommends: its own offer if the rep may give it to this customer,
    else the offer of its kind closest under its suggested value (the smallest when all
    are over, or when the rule is in another currency than the customer's); an apology
    or an explanation is the apology arm."""
    if rule.intervention in WORDS:
        return arms[APOLOGY_ARM]
    if rule.offer_id is not None and arm_key(rule.offer) in arms:
        return arms[arm_key(rule.offer)]
    kinds = OFFER_KINDS.get(rule.intervention, [])
    candidates = [arm for arm in arms.values() if arm.offer is not None and arm.offer.kind in kinds]
    if not candidates:
        return None
    if value is None or rule.currency != currency:
        return min(candidates, key=lambda arm: (arm.offer.value_amount, arm.cost, arm.key))
    under = [arm for arm in candidates if arm.offer.value_amount <= value]
    if under:
        return max(under, key=lambda arm: (arm.offer.value_amount, -arm.cost, arm.key))
    return min(candidates, key=lambda arm: (arm.offer.value_amount, arm.cost, arm.key))


def _has_past(rule: RecommendationRule, segment: CustomerSegment, customer: Customer | None, case: Case) -> bool:
    """Whether the customer had the rule's past incidents: told by the segment's repeat
    band, counted again only past its top band ("three or more") for a rule that asks
    for more."""
    known = {Segment.Repeat.FIRST: 0, Segment.Repeat.SECOND: 1}.get(segment.repeat_band, 2)
    if rule.min_past_incidents <= known:
        return True
    if segment.repeat_band != Segment.Repeat.MANY or customer is None:
        return False
    if not hasattr(case, "_past_incidents"):
        case._past_incidents = past_incidents(customer, exclude_case_id=case.pk)
    return rule.min_past_incidents <= case._past_incidents


def recommend(case: Case, *, user=None) -> list[Recommendation]:
    """The arms for this case's customer and incident type, best first: the apology, the
    ones a rule names, and the ones with answers for this incident type."""
    customer = case.customer
    currency = customer.currency if customer else settings.DEFAULT_CURRENCY
    segment = customer_segment(customer, exclude_case_id=case.pk)
    offers = offers_available_to(user, customer=customer) if user is not None else Offer.objects.filter(is_active=True)
    if customer is None:
        offers = offers.filter(Offer.usable_in(currency))
    arms = arms_for(offers, currency)
    rules = RecommendationRule.objects.filter(
        Q(incident_type=case.incident_type) | Q(incident_type=""),
        Q(tier__in=tiers_up_to(customer.tier if customer else Customer.Tier.STANDARD)) | Q(tier=""),
        is_active=True,
    ).select_related("offer")
    rules = [rule for rule in rules if _has_past(rule, segment, customer, case)]
    order_total = None
    chosen: dict[str, tuple[RecommendationRule, Decimal | None]] = {}
    for rule in sorted(rules, key=lambda rule: (rule.rank, -rule.min_past_incidents, rule.pk)):
        value = None
        if rule.intervention not in Intervention.soft():
            if order_total is None:
                order_total = _order_total(case)
            value = suggested_value(rule, case, order_total)
        arm = _rule_arm(rule, arms, value, currency)
        if arm is not None and arm.key not in chosen:
            # The rule's size is in the rule's currency: shown only in the customer's.
            chosen[arm.key] = (rule, value if rule.currency == currency else None)

    incident, in_segment = arm_tallies(incident_type=case.incident_type, segment=segment)
    listed = [key for key in arms if key == APOLOGY_ARM or key in chosen or incident.get(key, Tally()).n > 0]
    found = estimates(arms=listed, incident=incident, segment=in_segment)
    overall = incident_estimates(arms=listed, incident=incident)
    worth = recovery_value(customer)

    def made(key: str) -> Recommendation:
        arm = arms[key]
        estimate = found[key]
        rule, value = chosen.get(key, (None, None))
        enough = estimate.n_incident >= settings.RECOMMENDATION_MIN_SAMPLE
        basis = ("segment" if estimate.basis == "segment" else "incident") if enough else "prior"
        if rule is not None:
            intervention, reason = rule.intervention, rule.reason
        else:
            intervention = intervention_of(arm.offer)
            reason = (
                _("Ranked by what solved this incident type for customers like this one.")
                if enough
                else _("Among what you may give; too few answers to rank it yet.")
            )
        return Recommendation(
            arm=key,
            offer=arm.offer,
            intervention=intervention,
            reason=reason,
            rule_id=rule.pk if rule is not None else None,
            estimate=estimate,
            cost=quantize(arm.cost, currency),
            currency=currency,
            recovery_value=worth,
            basis=basis,
            suggested_value=value,
            segment=segment,
            overall=overall[key],
        )

    evidenced = {key: found[key] for key in listed if found[key].n_incident >= settings.RECOMMENDATION_MIN_SAMPLE}
    costs = {key: arms[key].cost for key in evidenced}
    first = [estimate.arm for estimate in rank(evidenced, costs=costs, recovery_value=worth)]
    rule_order = [key for key in chosen if key not in evidenced]
    rest = sorted(
        (key for key in listed if key not in evidenced and key not in chosen),
        key=lambda key: (key != APOLOGY_ARM, arms[key].cost, -found[key].n_incident, key),
    )
    return [made(key) for key in first + rule_order + rest]


def recommend_for(*, customer, incident_type: str, order_reference: str = "", user=None) -> list[Recommendation]:
    """The same ranking for a complaint that has no case here yet (a helpdesk's ticket,
    the customer panel): `recommend` on the case it would be, never saved."""
    return recommend(Case(customer=customer, incident_type=incident_type, order_reference=order_reference), user=user)


# --- Per intervention, from the cases' follow-ups ------------------------------------
# What the case follow-ups said per intervention (Wilson intervals, CSAT, redemption):
# the figures the demo history's check reads. The ranking above reads the appeasement
# outcomes instead, per arm.


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
