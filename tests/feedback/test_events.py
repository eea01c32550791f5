"""Merchant events and automatic appeasement rules: within budget, capped per
customer, once per event, audited, delivered through each customer's channel."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from appease.core.models import AuditEvent
from appease.delivery.models import Delivery
from appease.issuance.models import Customer, Issuance
from feedback.models import AutoRule, Case, MerchantEvent
from feedback.services.automation import event_process, events_sweep
from tests.factories import customer_create, offer_create, reason_create

pytestmark = pytest.mark.django_db

URL = "/api/v1/events"


@pytest.fixture
def rule(db):
    return AutoRule.objects.create(
        name="Three hours late: 5 off",
        event_type="delivery_delayed",
        condition_field="delay_minutes",
        condition_operator=">=",
        condition_value="180",
        offer=offer_create(value_amount=Decimal("5.00"), cost_amount=Decimal("3.00"), generate_on_demand=True),
        reason_code=reason_create(),
        budget_amount=Decimal("9.00"),  # three issuances at cost
        per_customer_cap=1,
    )


def send(api, event_id="E-1", event_type="delivery_delayed", **data):
    return api.post(URL, {"event_id": event_id, "event_type": event_type, "data": data}, format="json")


def test_a_qualifying_event_appeases_the_customer_as_the_system(api, rule, eager, django_capture_on_commit_callbacks):
    # when: the task runs on commit (eagerly here; a real worker in bench/feedback)
    with django_capture_on_commit_callbacks(execute=True):
        response = send(api, delay_minutes=200, customer={"email": "kim@example.com", "name": "Kim Lee"})

    # then
    assert response.status_code == 202, response.json()
    issuance = Issuance.objects.get()
    assert issuance.csr is None and issuance.auto_rule == rule
    assert issuance.event.event_id == "E-1"
    assert issuance.customer.email == "kim@example.com"
    assert issuance.code is not None
    # delivered through the customer's channel, by the outbox
    assert issuance.status == Issuance.Status.DELIVERED
    delivery = Delivery.objects.get(issuance=issuance)
    assert (delivery.channel, delivery.status) == ("email", "sent")
    assert mail.outbox[0].to == ["kim@example.com"]
    audit = AuditEvent.objects.get(action="issuance.create", object_id=str(issuance.pk))
    assert audit.actor is None and audit.actor_label == "system"
    rule.refresh_from_db()
    assert (rule.spent_amount, rule.issued_count) == (Decimal("3.00"), 1)
    assert MerchantEvent.objects.get().processed_at is not None


def test_the_same_event_id_twice_has_no_second_effect(api, rule, eager, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = send(api, delay_minutes=200, customer={"email": "kim@example.com"})
        again = send(api, delay_minutes=200, customer={"email": "kim@example.com"})

    assert first.status_code == 202 and again.status_code == 200
    assert again.json()["duplicate"] is True and again.json()["id"] == first.json()["id"]
    assert MerchantEvent.objects.count() == 1 and Issuance.objects.count() == 1


def test_processing_an_event_again_gives_nothing_twice(api, rule, eager, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        send(api, delay_minutes=200, customers=[{"email": "a@example.com"}, {"email": "b@example.com"}])
    event = MerchantEvent.objects.get()

    # when: the task is redelivered (a worker died after doing the work)
    result = event_process(event_id=event.pk)

    assert Issuance.objects.count() == 2
    assert len(result["issued"]) == 2 and result["skipped"] == []
    rule.refresh_from_db()
    assert rule.spent_amount == Decimal("6.00")


def test_an_event_id_reused_for_another_type_is_a_conflict(api, rule):
    send(api, delay_minutes=10, customer={"email": "kim@example.com"})

    response = send(api, event_type="order_cancelled", customer={"email": "kim@example.com"})

    assert response.status_code == 409
    assert response.json()["error"] == "event_id_reused"


def test_a_cohort_event_appeases_every_listed_customer_within_the_budget(
    api, rule, eager, django_capture_on_commit_callbacks
):
    # given: a budget for three, a flight of five passengers
    passengers = [{"email": f"p{i}@example.com", "name": f"Passenger {i}"} for i in range(5)]

    with django_capture_on_commit_callbacks(execute=True):
        send(api, "FL-1", delay_minutes=240, customers=passengers)

    event = MerchantEvent.objects.get()
    assert Issuance.objects.filter(event=event).count() == 3
    assert [s["reason"] for s in event.result["skipped"]] == ["budget", "budget"]
    rule.refresh_from_db()
    assert rule.spent_amount == rule.budget_amount == Decimal("9.00")
    assert Customer.objects.count() == 5  # everyone is known now, appeased or not


def test_the_per_customer_cap_holds_across_events(api, rule, eager, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        send(api, "E-1", delay_minutes=200, customer={"email": "kim@example.com"})
        send(api, "E-2", delay_minutes=300, customer={"email": "kim@example.com"})

    assert Issuance.objects.count() == 1
    assert MerchantEvent.objects.get(event_id="E-2").result["skipped"][0]["reason"] == "cap"


@pytest.mark.parametrize(
    ("change", "delay"),
    [
        ({}, 179),  # the condition does not hold
        ({"is_paused": True}, 200),
        ({"active_until": timezone.now() - timedelta(days=1)}, 200),
        ({"active_from": timezone.now() + timedelta(days=1)}, 200),
    ],
)
def test_no_issuance_when_the_rule_does_not_apply(api, rule, change, delay, eager, django_capture_on_commit_callbacks):
    AutoRule.objects.filter(pk=rule.pk).update(**change)

    with django_capture_on_commit_callbacks(execute=True):
        send(api, delay_minutes=delay, customer={"email": "kim@example.com"})

    assert not Issuance.objects.exists()


def test_an_incident_event_without_a_rule_opens_a_case(api, eager, django_capture_on_commit_callbacks):
    customer = customer_create(email="lee@example.com")

    with django_capture_on_commit_callbacks(execute=True):
        send(api, "DC-1", event_type="double_charged", amount="19.90", customer={"email": "lee@example.com"})

    case = Case.objects.get()
    assert case.customer == customer
    assert case.source == Case.Source.EVENT and case.incident_type == "overcharge"
    # processing again finds the same case
    assert event_process(event_id=MerchantEvent.objects.get().pk)["case_id"] == case.pk
    assert Case.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"event_type": "delivery_delayed", "data": {}}, "event_id"),
        ({"event_id": "x", "event_type": "Delivery Delayed!", "data": {}}, "event_type"),
        ({"event_id": "x", "event_type": "delivery_delayed", "data": "late"}, "data"),
        (
            {"event_id": "x", "event_type": "delivery_delayed", "data": {"customers": [{"name": "No contact"}]}},
            "data.customers[0]",
        ),
        ({"event_id": "x", "event_type": "delivery_delayed", "data": {"customers": "everyone"}}, "data.customers"),
        (
            {"event_id": "x", "event_type": "delivery_delayed", "data": {"customers": ["a@example.com"]}},
            "data.customers[0]",
        ),
        (
            {"event_id": "x", "event_type": "delivery_delayed", "data": {"customer": {"email": "not-an-email"}}},
            "data.customer.email",
        ),
        (
            {"event_id": "x", "event_type": "delivery_delayed", "data": {"customer": {"phone": "12"}}},
            "data.customer.phone",
        ),
        (
            {"event_id": "x", "event_type": "delivery_delayed", "data": {"customer": {"external_id": "x" * 101}}},
            "data.customer.external_id",
        ),
        (
            {"event_id": "x", "event_type": "delivery_delayed", "data": {"customer": {"email": ["a@example.com"]}}},
            "data.customer.email",
        ),
        ({"event_id": "x" * 101, "event_type": "delivery_delayed", "data": {}}, "event_id"),
    ],
)
def test_bad_events_get_field_errors_and_change_nothing(api, body, field):
    response = api.post(URL, body, format="json")

    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert not MerchantEvent.objects.exists()


def test_events_need_a_merchant_key(public_api):
    response = public_api.post(URL, {"event_id": "x", "event_type": "delivery_delayed", "data": {}}, format="json")

    assert response.status_code in (401, 403)
    assert not MerchantEvent.objects.exists()


def test_the_sweeper_processes_events_whose_task_was_lost(api, rule, eager, django_capture_on_commit_callbacks):
    # given: an event recorded while the broker was down (the on-commit enqueue is lost)
    with django_capture_on_commit_callbacks(execute=False):
        send(api, delay_minutes=200, customer={"email": "kim@example.com"})
    assert not Issuance.objects.exists()

    # when: the sweeper runs after the grace period
    swept = events_sweep(now=timezone.now() + timedelta(minutes=1))

    assert swept == 1
    assert Issuance.objects.count() == 1


def test_an_event_for_a_customer_known_only_by_id_is_skipped_for_no_channel_and_opens_a_case(
    api, rule, eager, django_capture_on_commit_callbacks
):
    # when: a delay for a customer the shop names only by its own id
    with django_capture_on_commit_callbacks(execute=True):
        response = send(api, delay_minutes=200, customer={"external_id": "SHOP-9", "name": "Kim"})

    # then: accepted and processed; nothing given (nowhere to send it), the reason recorded,
    # the budget untouched, and a case for a rep instead
    assert response.status_code == 202, response.json()
    event = MerchantEvent.objects.get()
    assert event.processed_at is not None
    customer = Customer.objects.get(external_id="SHOP-9")
    assert event.result["skipped"] == [{"customer_id": customer.pk, "rule_id": rule.pk, "reason": "no_channel"}]
    assert not Issuance.objects.exists()
    rule.refresh_from_db()
    assert rule.spent_amount == Decimal("0")
    assert Case.objects.get(pk=event.result["case_id"]).customer == customer


def test_every_customer_of_a_cohort_is_checked_and_errors_name_each_one(api, rule):
    # given: a flight where the second and fourth passengers are wrong
    passengers = [
        {"email": "p0@example.com"},
        {"email": "not-an-email"},
        {"phone": "+34612345678"},
        {"phone": "12345", "email": "p3@example.com"},
    ]

    # when
    response = send(api, "FL-2", delay_minutes=240, customers=passengers)

    # then: 400 naming each bad field by its index, and nothing recorded or given
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"data.customers[1].email", "data.customers[3].phone"}
    assert not MerchantEvent.objects.exists() and not Customer.objects.exists() and not Issuance.objects.exists()


def test_a_customer_that_fails_is_skipped_with_its_reason_and_the_rest_are_appeased(
    api, rule, merchant_key, django_capture_on_commit_callbacks
):
    # given: an event recorded before the intake checked every customer (the second one
    # would be refused now), so processing meets a customer it cannot create
    event = MerchantEvent.objects.create(
        merchant=merchant_key[0],
        event_id="FL-OLD",
        event_type="delivery_delayed",
        data={
            "delay_minutes": 240,
            "customers": [{"email": "p0@example.com"}, {"email": "not-an-email"}, {"email": "p2@example.com"}],
        },
    )

    # when
    result = event_process(event_id=event.pk)

    # then: the first and the third appeased, the second skipped with why, the event done
    assert set(Issuance.objects.values_list("customer__email", flat=True)) == {"p0@example.com", "p2@example.com"}
    assert len(result["issued"]) == 2
    assert result["skipped"] == [
        {"customer_index": 1, "customer_id": None, "rule_id": None, "reason": "invalid_customer"}
    ]
    event.refresh_from_db()
    assert event.processed_at is not None and event.result == result
    # and the sweeper leaves it alone
    assert events_sweep(now=timezone.now() + timedelta(minutes=5)) == 0


def test_a_rule_whose_field_holds_nan_does_not_match_and_does_not_break_processing(api, rule, merchant_key):
    # given: a merchant sends a value that Decimal reads as NaN
    event = MerchantEvent.objects.create(
        merchant=merchant_key[0],
        event_id="NAN-1",
        event_type="delivery_delayed",
        data={"delay_minutes": "NaN", "customer": {"email": "kim@example.com"}},
    )

    # when
    result = event_process(event_id=event.pk)

    # then
    assert result["rules"] == [] and not Issuance.objects.exists()
    event.refresh_from_db()
    assert event.processed_at is not None


def rule_form(**fields) -> dict:
    """The admin's add form for an automatic rule, valid unless `fields` say otherwise."""
    return {
        "name": "Late: 5 off",
        "event_type": "delivery_delayed",
        "condition_field": "delay_minutes",
        "condition_operator": ">=",
        "condition_value": "180",
        "offer": offer_create().pk,
        "reason_code": reason_create().pk,
        "budget_amount": "100",
        "per_customer_cap": "1",
        "active_from_0": "",
        "active_from_1": "",
        "active_until_0": "",
        "active_until_1": "",
        **fields,
    }


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"condition_field": ""}, "condition_field"),  # an operator with nothing to compare
        ({"condition_operator": ""}, "condition_operator"),  # a field and no operator
        ({"condition_value": "three hours"}, "condition_value"),  # ≥ a word
        ({"condition_value": "NaN"}, "condition_value"),
        ({"condition_operator": "==", "condition_value": ""}, "condition_value"),
        (
            {
                "active_from_0": "2026-12-10",
                "active_from_1": "00:00:00",
                "active_until_0": "2026-12-01",
                "active_until_1": "00:00:00",
            },
            "active_until",
        ),
    ],
)
def test_the_admin_refuses_a_rule_that_cannot_work_with_the_error_on_its_field(admin_client, fields, field):
    # when
    response = admin_client.post("/admin/feedback/autorule/add/", rule_form(**fields))

    # then: the form again, the message next to the field, nothing saved
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not AutoRule.objects.exists()


def test_the_admin_saves_a_sound_rule(admin_client):
    response = admin_client.post("/admin/feedback/autorule/add/", rule_form())

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert AutoRule.objects.get().condition_value == "180"


def test_a_recommendation_rule_needs_a_known_currency(admin_client):
    from feedback.models import RecommendationRule

    body = {
        "name": "Overcharge: refund",
        "incident_type": "overcharge",
        "tier": "",
        "min_past_incidents": "0",
        "intervention": "refund_credit",
        "offer": "",
        "base_amount": "5",
        "percent_of_order": "10",
        "max_amount": "",
        "currency": "XYZ",
        "reason": "Compensate it",
        "rank": "10",
        "is_active": "on",
    }
    before = RecommendationRule.objects.count()

    refused = admin_client.post("/admin/feedback/recommendationrule/add/", body)
    saved = admin_client.post("/admin/feedback/recommendationrule/add/", {**body, "currency": "EUR"})

    assert refused.status_code == 200 and "currency" in refused.context["adminform"].form.errors
    assert saved.status_code == 302
    assert RecommendationRule.objects.count() == before + 1


def test_the_rules_list_shows_budget_and_spend_with_their_currency(admin_client, rule):
    AutoRule.objects.filter(pk=rule.pk).update(spent_amount=Decimal("3.00"))

    page = admin_client.get("/admin/feedback/autorule/").content.decode()

    assert "$9.00" in page and "$3.00" in page  # the offer's currency, USD


@pytest.mark.parametrize(
    ("raw_data", "path"),
    [
        ('{"note": "a\\u0000b"}', "data.note"),  # a NUL: jsonb cannot hold one
        ('{"customers": [{"name": "\\ud800", "email": "a@example.com"}]}', "data.customers[0].name"),  # lone surrogate
        ('{"delay_minutes": 1e400}', "data.delay_minutes"),  # overflows to infinity
        ('{"x": [-1e400]}', "data.x[0]"),
    ],
)
def test_an_event_whose_data_jsonb_cannot_store_is_refused_naming_the_value(api, raw_data, path):
    """NUL (found by the fuzzer), a lone surrogate and 1e400 were each a 500 on
    PostgreSQL (jsonb refused the insert); SQLite stored them."""
    body = f'{{"event_id": "E-bad", "event_type": "delivery_delayed", "data": {raw_data}}}'
    response = api.generic("POST", URL, body, content_type="application/json")
    assert (response.status_code, list(response.json()["fields"])) == (400, [path])
    assert not MerchantEvent.objects.exists()


def test_the_event_service_refuses_what_jsonb_cannot_store_too(merchant_key):
    """The same check in the service, for a caller that is not the API's parser."""
    from django.core.exceptions import ValidationError

    from feedback.services.automation import event_receive

    for data, path in (({"a": ["x\x00"]}, "data.a[0]"), ({"b": float("inf")}, "data.b"), ({"c": "\udfff"}, "data.c")):
        with pytest.raises(ValidationError) as refused:
            event_receive(merchant=merchant_key[0], event_id="E-svc", event_type="delivery_delayed", data=data)
        assert list(refused.value.message_dict) == [path]
    big = {"text": "x" * (512 * 1024)}
    with pytest.raises(ValidationError) as refused:
        event_receive(merchant=merchant_key[0], event_id="E-big", event_type="delivery_delayed", data=big)
    assert list(refused.value.message_dict) == ["data"]
    assert not MerchantEvent.objects.exists()
