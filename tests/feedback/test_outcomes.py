"""Every appeasement is recorded as an intervention with its customer's segment, whatever
path gave it; the estimator behind the recommendations is exact on known figures."""

from __future__ import annotations

from decimal import Decimal

import pytest

from appease.core.context import Actor
from appease.issuance.services.issuance import issuance_create
from feedback.models import AppeasementOutcome
from feedback.services.estimator import Tally, beta_quantile, estimates, rank
from tests.factories import customer_create, offer_create, policy_create, reason_create, staff_user


@pytest.mark.django_db
def test_an_appeasement_from_the_panel_is_recorded_with_its_segment_and_cost():
    rep = staff_user(policy=policy_create(day_cost_amount=Decimal("500")))
    customer = customer_create(tier="gold", lifetime_value_amount=Decimal("450"))
    offer = offer_create(kind="amount_off", value_amount=Decimal("5"), cost_amount=Decimal("3.50"))
    reason = reason_create(incident_type="overcharge")

    first = issuance_create(
        actor=Actor(user=rep), customer=customer, offer=offer, reason_code=reason, context={"path": "panel"}
    )
    outcome = AppeasementOutcome.objects.get(issuance=first)
    assert (outcome.path, outcome.arm, outcome.intervention) == ("panel", f"offer:{offer.pk}", "discount")
    assert (outcome.incident_type, outcome.cost_amount, outcome.currency) == ("overcharge", Decimal("3.50"), "USD")
    assert (outcome.tier, outcome.value_band, outcome.prior) == ("gold", "mid", "none")

    # The first one was never answered: the second one's segment says so.
    second = issuance_create(actor=Actor(user=rep), customer=customer, offer=offer, reason_code=reason)
    assert AppeasementOutcome.objects.get(issuance=second).prior == "unknown"
    assert AppeasementOutcome.objects.get(issuance=second).path == "api"


def test_the_credible_interval_is_the_beta_distributions():
    # Beta(81, 21): mean 0.794; its 2.5% and 97.5% quantiles are 0.7109 and 0.8664.
    assert round(beta_quantile(0.025, 81, 21), 4) == 0.7109
    assert round(beta_quantile(0.975, 81, 21), 4) == 0.8664


def test_equal_solve_rates_rank_the_cheaper_arm_first_and_a_costly_small_gain_loses():
    found = estimates(
        arms=["apology", "offer:1", "offer:2"],
        incident={"apology": Tally(100, 80), "offer:1": Tally(100, 80), "offer:2": Tally(100, 84)},
        segment={},
    )
    costs = {"apology": Decimal("0"), "offer:1": Decimal("3.50"), "offer:2": Decimal("15")}
    assert [e.arm for e in rank(found, costs=costs, recovery_value=Decimal("50"))] == ["apology", "offer:1", "offer:2"]
    # Worth enough, four more points of solving pay for the gift card.
    assert rank(found, costs=costs, recovery_value=Decimal("1000"))[0].arm == "offer:2"


def test_a_segment_with_few_answers_stays_near_its_incident_type():
    found = estimates(
        arms=["apology"], incident={"apology": Tally(400, 320)}, segment={"apology": Tally(3, 0)}, baseline=0.5
    )
    assert 0.65 < found["apology"].mean < 0.8  # nearer the incident type's 80% than the segment's 0%
    assert found["apology"].basis == "incident"
