"""Recommended interventions: the supervisors' rules first, then, once enough customers
answered, what actually solved their problem."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import override_settings

from appease.issuance.models import CustomerOrder
from feedback.models import Case, FollowUp, Intervention, RecommendationRule
from feedback.services.recommend import intervention_outcomes, recommend, suggested_value, wilson
from tests.factories import customer_create, offer_create, reason_create
from tests.feedback.conftest import open_case

pytestmark = pytest.mark.django_db


def test_staff_attitude_gets_an_apology_first_and_overcharge_compensation():
    rude = open_case(customer=customer_create(), incident_type="staff_attitude")
    overcharged = open_case(customer=customer_create(), incident_type="overcharge")

    assert recommend(rude)[0].intervention == Intervention.APOLOGY
    assert recommend(rude)[0].soft is True
    top = recommend(overcharged)[0]
    assert top.intervention == Intervention.REFUND_CREDIT and top.soft is False


def test_a_repeat_staff_attitude_incident_asks_for_a_callback():
    customer = customer_create()
    open_case(customer=customer, incident_type="staff_attitude")
    Case.objects.update(status=Case.Status.CONFIRMED)
    again = open_case(customer=customer, incident_type="staff_attitude")

    assert recommend(again)[0].intervention == Intervention.CALLBACK


def test_the_suggested_value_scales_with_the_order_the_tier_and_stops_at_the_cap():
    rule = RecommendationRule.objects.get(name="Overcharge: refund credit")  # 5 + 10% of the order, max 50
    standard = open_case(customer=customer_create(tier="standard"), incident_type="overcharge", order_reference="O-1")
    platinum = open_case(customer=customer_create(tier="platinum"), incident_type="overcharge", order_reference="O-2")
    CustomerOrder.objects.create(customer=standard.customer, reference="O-1", total_amount=Decimal("80"))
    CustomerOrder.objects.create(customer=platinum.customer, reference="O-2", total_amount=Decimal("400"))

    assert suggested_value(rule, standard) == Decimal("13.00")  # 5 + 8
    assert suggested_value(rule, platinum) == Decimal("50.00")  # (5 + 40) × 2 = 90, capped


def test_the_offer_suggested_is_the_closest_under_the_value_that_the_rep_may_give(csr):
    small = offer_create(kind="amount_off", value_amount=Decimal("5"))
    right = offer_create(kind="amount_off", value_amount=Decimal("10"))
    offer_create(kind="amount_off", value_amount=Decimal("20"))
    case = open_case(customer=customer_create(), incident_type="overcharge", order_reference="O-3")
    CustomerOrder.objects.create(customer=case.customer, reference="O-3", total_amount=Decimal("80"))

    top = recommend(case, user=csr)[0]

    assert top.suggested_value == Decimal("13.00") and top.offer == right
    # without the 10, the closest under the value is the 5, not the 20 over it
    right.is_active = False
    right.save()
    assert recommend(case, user=csr)[0].offer == small


def answered(incident_type: str, intervention: str, *, solved: int, unsolved: int, csat: int = 4) -> None:
    """Closed cases of this kind whose customers answered the survey."""
    for i in range(solved + unsolved):
        case = Case.objects.create(
            source="api",
            subject="past",
            incident_type=incident_type,
            intervention=intervention,
            status=Case.Status.CONFIRMED,
            customer=None,
        )
        FollowUp.objects.create(
            case=case,
            customer=customer_create(),
            intervention=intervention,
            status=FollowUp.Status.ANSWERED,
            due_at=case.created_at,
            expires_at=case.created_at,
            solved=i < solved,
            csat=csat,
        )


@override_settings(RECOMMENDATION_MIN_SAMPLE=30)
def test_outcomes_take_over_the_ranking_once_there_are_enough():
    case = open_case(customer=customer_create(), incident_type="late_delivery")
    # the rules put a discount first for a late delivery
    assert recommend(case)[0].intervention == Intervention.DISCOUNT

    # given: apologies solved 27 of 30, discounts 12 of 30
    answered("late_delivery", Intervention.APOLOGY, solved=27, unsolved=3)
    answered("late_delivery", Intervention.DISCOUNT, solved=12, unsolved=18)
    ranked = recommend(case)

    assert [r.intervention for r in ranked[:2]] == [Intervention.APOLOGY, Intervention.DISCOUNT]
    evidence = ranked[0].evidence
    assert (evidence.n, evidence.solved_percent, ranked[0].ranked_by) == (30, 90, "learned")
    assert str(evidence) == "90% solved, n=30"
    assert 0.73 < evidence.ci_low < 0.9 < evidence.ci_high < 0.97


@override_settings(RECOMMENDATION_MIN_SAMPLE=30)
def test_too_few_outcomes_do_not_change_the_ranking():
    case = open_case(customer=customer_create(), incident_type="late_delivery")
    answered("late_delivery", Intervention.APOLOGY, solved=5, unsolved=0)

    ranked = recommend(case)

    assert ranked[0].intervention == Intervention.DISCOUNT and ranked[0].ranked_by == "rule"
    assert all(r.intervention != Intervention.APOLOGY or r.ranked_by == "rule" for r in ranked)


def test_wilson_interval():
    assert wilson(0, 0) == (0.0, 1.0)
    low, high = wilson(71, 100)
    assert round(low, 3) == 0.615 and round(high, 3) == 0.79
    assert wilson(10, 10)[1] == 1.0


def test_resolving_records_the_intervention_on_the_follow_up(csr):
    from appease.core.context import Actor
    from feedback.services.cases import case_claim, case_resolve

    case = open_case(customer=customer_create(), incident_type="late_delivery")
    case_claim(actor=Actor(user=csr), case_id=case.pk)

    case_resolve(actor=Actor(user=csr), case_id=case.pk, note="Gave a discount", intervention=Intervention.DISCOUNT)

    assert case.follow_ups.get().intervention == Intervention.DISCOUNT


def test_a_reopened_cases_answers_are_credited_to_what_each_round_tried(csr):
    from appease.core.context import Actor
    from feedback.services.cases import case_claim, case_issue

    # given: a case that got a gift card (a code) and a "not solved", then, reopened, a
    # callback and a "solved"; the case's intervention is now the callback
    case = open_case(customer=customer_create(), incident_type="late_delivery")
    case_claim(actor=Actor(user=csr), case_id=case.pk)
    case_issue(
        actor=Actor(user=csr),
        case_id=case.pk,
        offer=offer_create(kind="gift_card", generate_on_demand=True),
        reason_code=reason_create(),
    )
    for intervention, solved in ((Intervention.GIFT_CARD, False), (Intervention.CALLBACK, True)):
        FollowUp.objects.create(
            case=case,
            customer=case.customer,
            intervention=intervention,
            status=FollowUp.Status.ANSWERED,
            due_at=case.created_at,
            expires_at=case.created_at,
            solved=solved,
        )
    Case.objects.filter(pk=case.pk).update(intervention=Intervention.CALLBACK)

    # when
    outcomes = intervention_outcomes("late_delivery")

    # then: the gift card failed once and its code counts for it; the callback worked once
    gift_card, callback = outcomes[Intervention.GIFT_CARD], outcomes[Intervention.CALLBACK]
    assert (gift_card.n, gift_card.solved, gift_card.codes) == (1, 0, 1)
    assert (callback.n, callback.solved, callback.codes) == (1, 1, 0)


def test_existing_follow_ups_get_the_intervention_of_the_round_that_scheduled_them():
    import importlib

    from django.apps import apps

    from feedback.models import CaseEvent

    migration = importlib.import_module("feedback.migrations.0005_followup_intervention")
    # given: follow-ups from before the field: a case resolved with a discount, reopened
    # and resolved with an apology (one follow-up each round), and one without timeline
    case = open_case(customer=customer_create(), incident_type="late_delivery")
    Case.objects.filter(pk=case.pk).update(intervention=Intervention.APOLOGY)

    def follow_up(for_case):
        return FollowUp.objects.create(
            case=for_case, customer=customer_create(), due_at=for_case.created_at, expires_at=for_case.created_at
        )

    CaseEvent.objects.create(case=case, kind=CaseEvent.Kind.RESOLVED, data={"intervention": "discount"})
    first = follow_up(case)
    CaseEvent.objects.create(case=case, kind=CaseEvent.Kind.RESOLVED, data={"intervention": "apology"})
    second = follow_up(case)
    bare = open_case(customer=customer_create(), incident_type="overcharge")
    Case.objects.filter(pk=bare.pk).update(intervention=Intervention.REFUND_CREDIT)
    third = follow_up(bare)
    FollowUp.objects.update(intervention="")

    # when
    migration.fill(apps, None)

    # then
    got = dict(FollowUp.objects.values_list("pk", "intervention"))
    assert (got[first.pk], got[second.pk], got[third.pk]) == ("discount", "apology", "refund_credit")
