"""GET /recommendations: the case page's ranking for a helpdesk's ticket, which is not a
case here: the same rules, offers and reasons, for a customer and an incident type."""

from __future__ import annotations

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from appease.issuance.models import CustomerOrder
from feedback.apis import RecommendationListApi
from feedback.models import Case, Intervention, RecommendationRule
from feedback.services.recommend import recommend
from tests.factories import customer_create, offer_create, policy_create, staff_user
from tests.feedback.conftest import open_case

pytestmark = pytest.mark.django_db

RECOMMENDATIONS = "/api/v1/recommendations"


def callback_offer():
    return offer_create(kind="callback", value_amount=Decimal("0"), cost_amount=Decimal("0"))


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def test_the_ranking_is_the_case_pages_with_the_offer_and_the_reason(csr):
    # given offers of 5, 10 and 20 off and an overcharged customer whose order was 80
    offer_create(kind="amount_off", value_amount=Decimal("5"))
    right = offer_create(kind="amount_off", value_amount=Decimal("10"), cost_amount=Decimal("6"))
    offer_create(kind="amount_off", value_amount=Decimal("20"))
    customer = customer_create()
    CustomerOrder.objects.create(customer=customer, reference="O-3", total_amount=Decimal("80"))

    # when the helpdesk asks, before any case exists
    response = client_for(csr).get(
        RECOMMENDATIONS, {"customer_id": customer.pk, "incident_type": "overcharge", "order_reference": "O-3"}
    )

    # then the top one is the refund credit rule's, with its offer (closest under 5 + 10% of 80)
    assert response.status_code == 200, response.json()
    body = response.json()
    top = body["results"][0]
    rule = RecommendationRule.objects.get(name="Overcharge: refund credit")
    assert top["rank"] == 1 and top["arm"] == f"offer:{right.pk}"
    assert top["intervention"] == Intervention.REFUND_CREDIT and top["ranked_by"] == "rule"
    assert top["rule_id"] == rule.pk and top["reason"] == rule.reason
    assert top["suggested_value"] == "13.00" and top["currency"] == "USD"
    assert top["offer"] == {
        "id": right.pk,
        "name": right.name,
        "kind": "amount_off",
        "face_value": "10.00",
        "cost": "6.00",
        "currency": "USD",
    }
    # with no answers yet: the rule ranks it, the estimate is the prior's, and it says so
    assert top["basis"] == "prior" and top["estimate"]["basis"] == "prior"
    assert (top["estimate"]["n_segment"], top["estimate"]["n_incident"]) == (0, 0)
    assert top["estimate"]["interval_low"] < top["estimate"]["solved_share"] < top["estimate"]["interval_high"]
    assert (top["cost"], top["recovery_value"]) == ("6.00", "25.00")
    assert top["net_value"] == "6.50" and top["cost_per_recovered"] == "12.00"  # 0.5 × 25 − 6; 6 / 0.5
    assert top["evidence_line"] == f"{right.name}: no answers yet, cost $6.00"
    # the apology is always among them, at no cost
    apology = next(item for item in body["results"] if item["arm"] == "apology")
    assert apology["cost"] == "0.00" and apology["cost_per_recovered"] is None and apology["offer"] is None
    # and it is what the case page shows for the same complaint once it is a case
    case = open_case(customer=customer, incident_type="overcharge", order_reference="O-3")
    page = recommend(case, user=csr)
    assert [item["intervention"] for item in body["results"]] == [item.intervention for item in page]
    assert [item["rank"] for item in body["results"]] == list(range(1, len(page) + 1))


def test_a_repeat_customer_gets_the_repeat_rule_as_the_case_page_would(csr):
    # given a customer with a past staff-attitude case, and a callback the rep may give
    callback_offer()
    customer = customer_create()
    open_case(customer=customer, incident_type="staff_attitude")
    Case.objects.update(status=Case.Status.CONFIRMED)
    first_timer = customer_create()
    client = client_for(csr)

    again = client.get(RECOMMENDATIONS, {"customer_id": customer.pk, "incident_type": "staff_attitude"}).json()
    first = client.get(RECOMMENDATIONS, {"customer_id": first_timer.pk, "incident_type": "staff_attitude"}).json()

    assert again["results"][0]["intervention"] == Intervention.CALLBACK
    assert first["results"][0]["intervention"] == Intervention.APOLOGY
    assert first["results"][0]["intervention_label"] == str(Intervention.APOLOGY.label)


def test_the_offer_is_never_one_the_caller_may_not_give(db):
    # given a rep whose policy allows only the 5 off
    small = offer_create(kind="amount_off", value_amount=Decimal("5"))
    offer_create(kind="amount_off", value_amount=Decimal("10"))
    policy = policy_create(day_cost_amount=Decimal("100"))
    policy.allowed_offers.set([small])
    rep = staff_user(policy=policy)
    customer = customer_create()
    CustomerOrder.objects.create(customer=customer, reference="O-9", total_amount=Decimal("80"))

    body = (
        client_for(rep)
        .get(RECOMMENDATIONS, {"customer_id": customer.pk, "incident_type": "overcharge", "order_reference": "O-9"})
        .json()
    )

    assert body["results"][0]["offer"]["id"] == small.pk


def test_recommendations_page_like_every_list(csr):
    # given a repeat customer: the callback and the apology both apply
    callback_offer()
    customer = customer_create()
    open_case(customer=customer, incident_type="staff_attitude")
    client = client_for(csr)

    whole = client.get(RECOMMENDATIONS, {"customer_id": customer.pk, "incident_type": "staff_attitude"}).json()
    second = client.get(
        RECOMMENDATIONS, {"customer_id": customer.pk, "incident_type": "staff_attitude", "page_size": 1, "page": 2}
    ).json()

    # (and beside the page, the experiment's assignment: none runs here)
    assert set(whole) == {"count", "next", "previous", "results", "assignment"} and whole["count"] == 2
    assert whole["assignment"] is None
    assert second["count"] == whole["count"]
    assert second["results"] == [whole["results"][1]]  # its rank is its place in the whole list


def test_without_a_customer_the_standard_tiers_ranking(csr):
    response = client_for(csr).get(RECOMMENDATIONS, {"incident_type": "staff_attitude"})

    assert response.status_code == 200
    assert response.json()["results"][0]["intervention"] == Intervention.APOLOGY


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "incident_type"),
        ({"incident_type": "alien_abduction"}, "incident_type"),
        ({"incident_type": "late_delivery\x00"}, "incident_type"),
        ({"incident_type": "late_delivery", "customer_id": "abc"}, "customer_id"),
        ({"incident_type": "late_delivery", "customer_id": "99999999999999999999999"}, "customer_id"),
        ({"incident_type": "late_delivery", "customer_id": "123456789"}, "customer_id"),
        ({"incident_type": "late_delivery", "order_reference": "\x00"}, "order_reference"),
        ({"incident_type": "late_delivery", "order_reference": "x" * 101}, "order_reference"),
    ],
)
def test_hostile_or_wrong_queries_are_a_400_naming_the_field(csr, params, field):
    response = client_for(csr).get(RECOMMENDATIONS, params, HTTP_ACCEPT_LANGUAGE="es")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid"
    assert field in response.json()["fields"]
    assert response.json()["detail"] == "La solicitud tiene campos no válidos."


def test_recommendations_need_staff_and_declare_the_read_scope(db):
    assert APIClient().get(RECOMMENDATIONS, {"incident_type": "other"}).status_code == 401
    assert RecommendationListApi.required_scope == "read"
