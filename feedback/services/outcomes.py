"""Every appeasement is an intervention with an outcome.

`outcome_record` is registered with the issuance service (`issuance_listener_register`)
and runs in every issuance's transaction, whatever the path: it writes the
`AppeasementOutcome` row with what was given, what it cost and the customer's segment
at that moment. `apology_outcome_record` does the same for an apology sent from a case
without an offer. The row's outcome fields (solved, CSAT, redeemed, ordered again) are
filled in later by the follow-up's answer, the code's redemption and the customer's
next order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Subquery
from django.utils import timezone

from appease.issuance.models import Customer, Issuance
from coupons.models import Redemption
from feedback.models import APOLOGY_ARM, AppeasementOutcome, Case, Intervention, Segment, arm_key
from feedback.services.scoring import past_incidents

# What an offer's kind is as an intervention (the recommendation's vocabulary).
KIND_INTERVENTION = {
    "apology": Intervention.APOLOGY,
    "callback": Intervention.CALLBACK,
    "percent_off": Intervention.DISCOUNT,
    "amount_off": Intervention.DISCOUNT,
    "free_item": Intervention.DISCOUNT,
    "gift_card": Intervention.GIFT_CARD,
}


@dataclass(frozen=True)
class CustomerSegment:
    tier: str
    value_band: str
    repeat_band: str
    prior: str

    @property
    def key(self) -> str:
        return "|".join((self.tier, self.value_band, self.repeat_band, self.prior))

    def as_fields(self) -> dict[str, str]:
        return {"tier": self.tier, "value_band": self.value_band, "repeat_band": self.repeat_band, "prior": self.prior}


def value_band(customer: Customer | None) -> str:
    if customer is None:
        return Segment.Value.LOW
    mid_from, high_from = settings.RECOVERY_VALUE_BANDS
    value = customer.lifetime_value_amount
    if value >= high_from:
        return Segment.Value.HIGH
    if value >= mid_from:
        return Segment.Value.MID
    return Segment.Value.LOW


def customer_segment(customer: Customer | None, *, exclude_case_id=None, now=None) -> CustomerSegment:
    """The customer's segment now: tier, lifetime value band, how many incidents they had
    (this one included) and how their last answered appeasement ended."""
    if customer is None or customer.pk is None:
        return CustomerSegment(Customer.Tier.STANDARD, Segment.Value.LOW, Segment.Repeat.FIRST, Segment.Prior.NONE)
    now = now or timezone.now()
    since = now - timedelta(days=settings.RECOVERY_HISTORY_DAYS)
    incidents = past_incidents(customer, exclude_case_id=exclude_case_id, now=now) + 1
    repeat = (
        Segment.Repeat.FIRST if incidents <= 1 else Segment.Repeat.SECOND if incidents == 2 else Segment.Repeat.MANY
    )
    last = (
        AppeasementOutcome.objects.filter(customer=customer, given_at__gte=since, given_at__lt=now)
        .order_by("-given_at")
        .values_list("solved", "answered_at")
        .first()
    )
    if last is None:
        prior = Segment.Prior.NONE
    elif last[1] is None:
        prior = Segment.Prior.UNKNOWN
    else:
        prior = Segment.Prior.SOLVED if last[0] else Segment.Prior.NOT_SOLVED
    return CustomerSegment(customer.tier, value_band(customer), repeat, prior)


def intervention_of(offer) -> str:
    if offer is None:
        return Intervention.APOLOGY
    return KIND_INTERVENTION.get(offer.kind, Intervention.DISCOUNT)


def _path(issuance: Issuance, context: dict) -> str:
    if issuance.auto_rule_id is not None:
        return AppeasementOutcome.Path.RULE
    if issuance.case_id is not None:
        return AppeasementOutcome.Path.CASE
    path = context.get("path", AppeasementOutcome.Path.API)
    return path if path in AppeasementOutcome.Path.values else AppeasementOutcome.Path.API


def outcome_record(issuance: Issuance, context: dict) -> AppeasementOutcome:
    """The issuance's intervention row, in the issuance's transaction (the issuance
    service's listener). `context` may carry `experiment_id`, `assigned_arm` and
    `override_reason` (the experiment service checks them before the issuance)."""
    if not transaction.get_connection().in_atomic_block:
        raise transaction.TransactionManagementError("outcome_record runs inside the issuance's transaction")
    case: Case | None = issuance.case
    incident_type = case.incident_type if case is not None else issuance.reason_code.incident_type
    segment = customer_segment(issuance.customer, exclude_case_id=issuance.case_id)
    return AppeasementOutcome.objects.create(
        issuance=issuance,
        case=case,
        customer=issuance.customer,
        incident_type=incident_type,
        intervention=intervention_of(issuance.offer),
        offer=issuance.offer,
        arm=arm_key(issuance.offer),
        path=_path(issuance, context),
        currency=issuance.currency,
        cost_amount=issuance.cost_amount,
        experiment_id=context.get("experiment_id"),
        assigned_arm=context.get("assigned_arm", ""),
        override_reason=context.get("override_reason", ""),
        given_at=issuance.issued_at or issuance.created_at or timezone.now(),
        **segment.as_fields(),
    )


def apology_outcome_record(*, case: Case, context: dict | None = None) -> AppeasementOutcome:
    """An apology sent from a case without an offer: an intervention that cost nothing."""
    context = context or {}
    segment = customer_segment(case.customer, exclude_case_id=case.pk)
    return AppeasementOutcome.objects.create(
        case=case,
        customer=case.customer,
        incident_type=case.incident_type,
        intervention=Intervention.APOLOGY,
        arm=APOLOGY_ARM,
        path=AppeasementOutcome.Path.CASE,
        currency=case.customer.currency,
        experiment_id=context.get("experiment_id"),
        assigned_arm=context.get("assigned_arm", ""),
        override_reason=context.get("override_reason", ""),
        given_at=timezone.now(),
        **segment.as_fields(),
    )


def outcomes_answer_record(*, follow_up_id, solved: bool | None, csat: int | None, answered_at) -> int:
    """The follow-up's answer on every outcome row it asks about (a case's round may
    have given several things), once: a conditional update on `answered_at`, in the
    survey's transaction, after the survey's own single-use update won."""
    return AppeasementOutcome.objects.filter(follow_up_id=follow_up_id, answered_at__isnull=True).update(
        solved=solved, csat=csat, answered_at=answered_at
    )


def outcome_redemption_record(redemption: Redemption) -> None:
    """A code was redeemed, or a redemption reversed (the coupons app's listener, in
    the checkout's transaction): the outcome of the appeasement that gave the code says
    when it was first used. One UPDATE, no read first: this is the checkout's hot path.

    Redeemed: stamped at the first redemption (a gift card's first spend counts) and
    kept. Reversed: the earliest redemption of the code still active, or none."""
    given = Issuance.objects.filter(code_id=redemption.code_id).values("pk")
    outcomes = AppeasementOutcome.objects.filter(issuance_id__in=given)
    if redemption.status == Redemption.Status.ACTIVE:
        outcomes.filter(redeemed_at__isnull=True).update(redeemed_at=redemption.redeemed_at)
        return
    earliest = (
        Redemption.objects.filter(code_id=redemption.code_id, status=Redemption.Status.ACTIVE)
        .order_by("redeemed_at")
        .values("redeemed_at")[:1]
    )
    outcomes.update(redeemed_at=Subquery(earliest))
