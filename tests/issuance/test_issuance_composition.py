"""Issue 16, bug 1: an issuance composes with what its caller does in one transaction.

`issuance_record` writes the issuance, its code, delivery row and audit row inside the
caller's transaction; issue to a new customer (the API), issue from a case and the
automatic rules each call it inside their own, so a refusal or a failure half-way
leaves nothing of it behind: no customer, no code, no spend, no timeline line.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import DatabaseError, connection
from rest_framework.test import APIClient

from appease.core.context import Actor
from appease.core.models import AuditEvent, StaffAPIKey
from appease.delivery.models import Delivery
from appease.issuance.models import BudgetCounter, Customer, Issuance
from coupons.models import Code, Merchant
from feedback.models import AutoRule, Case, CaseEvent, MerchantEvent
from feedback.services.automation import auto_rule_issue
from feedback.services.cases import case_claim, case_issue
from tests.factories import customer_create, offer_create, policy_create, reason_create, staff_user
from tests.feedback.conftest import open_case
from tests.issuance.test_concurrency import run_together

pytestmark = pytest.mark.django_db

ISSUANCES = "/api/v1/issuances"
NEW_CUSTOMER = {"name": "Ana Ruiz", "email": "ana@example.com"}


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def new_customer_body(offer, **overrides) -> dict:
    return {"customer": NEW_CUSTOMER, "offer_id": offer.pk, "reason_code": "late-parcel", "note": "late", **overrides}


def nothing_given() -> bool:
    return not (
        Issuance.objects.exists()
        or Code.objects.filter(status=Code.Status.ISSUED).exists()
        or Delivery.objects.exists()
        or AuditEvent.objects.filter(action="issuance.create").exists()
    )


# --- Issue to a new customer (the API) -------------------------------------------------------


def test_an_issuance_to_a_new_customer_with_no_code_left_leaves_no_customer_and_a_retry_adds_none():
    # given: an offer whose inventory is empty (a 409 comes after the customer is written)
    csr = staff_user(policy=policy_create(day_cost_amount=Decimal("100")))
    offer = offer_create(generate_on_demand=False)
    reason_create("late-parcel")
    customers = Customer.objects.count()

    # when: refused, then retried as it was, without and with an idempotency key
    answers = [
        client_for(csr).post(ISSUANCES, new_customer_body(offer), format="json").json().get("error"),
        client_for(csr).post(ISSUANCES, new_customer_body(offer), format="json").json().get("error"),
        client_for(csr)
        .post(ISSUANCES, new_customer_body(offer), format="json", HTTP_IDEMPOTENCY_KEY="k-9")
        .json()
        .get("error"),
        client_for(csr)
        .post(ISSUANCES, new_customer_body(offer), format="json", HTTP_IDEMPOTENCY_KEY="k-9")
        .json()
        .get("error"),
    ]

    # then: the same refusal each time, and nothing of any of them stayed
    assert answers == ["inventory_empty"] * 4
    assert Customer.objects.count() == customers
    assert not AuditEvent.objects.filter(action="customer.create").exists()
    assert nothing_given()
    assert not BudgetCounter.objects.filter(user=csr, spent_cost_amount__gt=0).exists()


def test_a_new_customer_given_an_appeasement_twice_under_one_key_is_created_once():
    csr = staff_user(policy=policy_create(day_cost_amount=Decimal("100")))
    offer = offer_create()
    reason_create("late-parcel")

    first = client_for(csr).post(ISSUANCES, new_customer_body(offer), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = client_for(csr).post(ISSUANCES, new_customer_body(offer), format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    customer = Customer.objects.get(email="ana@example.com")
    assert Issuance.objects.get().customer == customer
    assert AuditEvent.objects.filter(action="customer.create").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("over_limit", "cost", "status"), [("refuse", "30.00", 403), ("refuse", "3.00", 201)])
def test_one_request_for_a_new_customer_sent_eight_times_at_once_makes_at_most_one_customer(over_limit, cost, status):
    # given: a rep's token and one request (one key) fired eight times at once
    csr = staff_user(policy=policy_create(over_limit=over_limit, day_cost_amount=Decimal("10.00")))
    _key, token = StaffAPIKey.objects.create_key(name="crm", user=csr)
    offer = offer_create(cost_amount=Decimal(cost))
    reason_create("late-parcel")

    def post(_i):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        return client.post(
            ISSUANCES, new_customer_body(offer), format="json", HTTP_IDEMPOTENCY_KEY="crm-ticket-8"
        ).status_code

    # when
    answers = run_together(8, post)

    # then: every copy answered alike; one customer when given, none when refused
    assert answers == [status] * 8, answers
    assert Customer.objects.filter(email="ana@example.com").count() == (1 if status == 201 else 0)
    assert Issuance.objects.count() == (1 if status == 201 else 0)


# --- Issue from a case: the appeasement and the case's line on its timeline --------------------


def refuse_case_timeline_writes() -> None:
    """A real database refusal of the next CaseEvent insert: a trigger, created inside the
    test's transaction (so it goes when the test's transaction rolls back), that aborts
    every insert into the case timeline's table. No Python of ours is replaced."""
    table = connection.ops.quote_name(CaseEvent._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION test_case_event_refused() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'case timeline refused' USING ERRCODE = 'check_violation'; END $$"
            )
            cursor.execute(
                f"CREATE TRIGGER test_case_event_refused BEFORE INSERT ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION test_case_event_refused()"
            )
        else:
            cursor.execute(
                f"CREATE TRIGGER test_case_event_refused BEFORE INSERT ON {table} "
                "BEGIN SELECT RAISE(ABORT, 'case timeline refused'); END"
            )


def test_an_issuance_from_a_case_rolls_back_when_its_timeline_line_cannot_be_written():
    # given: a claimed case, a rep within limits, and a database that refuses the case's next line
    csr = staff_user(policy=policy_create(day_cost_amount=Decimal("100")))
    case = open_case(customer=customer_create())
    case_claim(actor=Actor(user=csr), case_id=case.pk)
    lines = CaseEvent.objects.filter(case=case).count()
    refuse_case_timeline_writes()

    # when
    with pytest.raises(DatabaseError):
        case_issue(actor=Actor(user=csr), case_id=case.pk, offer=offer_create(), reason_code=reason_create())

    # then: the issuance, its code, delivery, audit row and spend went with the line
    assert nothing_given()
    assert not BudgetCounter.objects.filter(user=csr, spent_cost_amount__gt=0).exists()
    case.refresh_from_db()
    assert case.first_response_at is None
    assert CaseEvent.objects.filter(case=case).count() == lines


def test_an_issuance_from_a_case_and_its_timeline_line_are_written_together():
    csr = staff_user(policy=policy_create(day_cost_amount=Decimal("100")))
    case = open_case(customer=customer_create())
    case_claim(actor=Actor(user=csr), case_id=case.pk)

    issuance = case_issue(actor=Actor(user=csr), case_id=case.pk, offer=offer_create(), reason_code=reason_create())

    line = CaseEvent.objects.get(case=case, kind=CaseEvent.Kind.ISSUED)
    assert line.actor == csr
    assert line.data == {
        "issuance_id": str(issuance.pk),
        "offer": issuance.offer.name,
        "offer_id": issuance.offer.pk,
        "status": Issuance.Status.ISSUED,
    }
    assert Case.objects.get(pk=case.pk).first_response_at == issuance.issued_at


# --- The automatic rules -----------------------------------------------------------------------


def a_rule(*, budget="9.00", **offer_fields) -> AutoRule:
    return AutoRule.objects.create(
        name="Three hours late: 5 off",
        event_type="delivery_delayed",
        offer=offer_create(value_amount=Decimal("5.00"), cost_amount=Decimal("3.00"), **offer_fields),
        reason_code=reason_create(),
        budget_amount=Decimal(budget),
        per_customer_cap=1,
    )


def an_event(event_id="E-1") -> MerchantEvent:
    merchant = Merchant.objects.first() or Merchant.objects.create(name="Shop")
    return MerchantEvent.objects.create(
        merchant=merchant, event_id=event_id, event_type="delivery_delayed", data={"delay_minutes": 200}
    )


def test_a_rule_gives_through_issuance_record_as_the_system_and_spends_its_budget():
    rule, event, customer = a_rule(), an_event(), customer_create()

    issuance, outcome = auto_rule_issue(rule=rule, event=event, customer=customer)

    assert outcome == "issued"
    assert (issuance.csr, issuance.auto_rule, issuance.event) == (None, rule, event)
    assert (issuance.status, issuance.channel) == (Issuance.Status.ISSUED, "email")
    assert issuance.complaint_start_source == Issuance.StartSource.EVENT
    assert issuance.note == "delivery_delayed E-1"
    assert issuance.code.status == Code.Status.ISSUED
    assert Delivery.objects.get(issuance=issuance).requested_by is None
    audit = AuditEvent.objects.get(action="issuance.create", object_id=str(issuance.pk))
    assert (audit.actor, audit.actor_label, audit.after["csr"]) == (None, "system", None)
    rule.refresh_from_db()
    assert (rule.spent_amount, rule.issued_count) == (Decimal("3.00"), 1)
    # and again for the same event: once
    assert auto_rule_issue(rule=rule, event=event, customer=customer) == (None, "already")


def test_a_rule_out_of_codes_gives_nothing_and_spends_nothing():
    rule, event, customer = a_rule(generate_on_demand=False), an_event(), customer_create()

    assert auto_rule_issue(rule=rule, event=event, customer=customer) == (None, "no_code")

    assert nothing_given()
    rule.refresh_from_db()
    assert (rule.spent_amount, rule.issued_count) == (Decimal("0"), 0)


def test_a_rule_paused_after_it_was_chosen_gives_nothing():
    rule, event, customer = a_rule(), an_event(), customer_create()
    AutoRule.objects.filter(pk=rule.pk).update(is_paused=True)  # a supervisor, meanwhile

    assert auto_rule_issue(rule=rule, event=event, customer=customer) == (None, "paused")
    assert nothing_given()


def test_a_rule_skips_a_customer_it_cannot_reach_and_one_over_its_cap():
    rule = a_rule()
    unreachable = customer_create(email="", preferred_channel="", external_id="crm-1")
    reached = customer_create()

    assert auto_rule_issue(rule=rule, event=an_event("E-1"), customer=unreachable) == (None, "no_channel")
    assert auto_rule_issue(rule=rule, event=an_event("E-1b"), customer=reached)[1] == "issued"
    assert auto_rule_issue(rule=rule, event=an_event("E-2"), customer=reached) == (None, "cap")
    rule.refresh_from_db()
    assert (rule.spent_amount, rule.issued_count) == (Decimal("3.00"), 1)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_ten_customers_at_once_never_overshoot_a_rules_budget():
    # given: a budget for three issuances at cost, ten customers of one event at once
    rule, event = a_rule(budget="9.00"), an_event()
    customers = [customer_create() for _ in range(10)]

    outcomes = run_together(10, lambda i: auto_rule_issue(rule=rule, event=event, customer=customers[i])[1])

    assert sorted(outcomes) == ["budget"] * 7 + ["issued"] * 3, outcomes
    rule.refresh_from_db()
    assert (rule.spent_amount, rule.issued_count) == (Decimal("9.00"), 3)
    assert Issuance.objects.filter(auto_rule=rule).count() == 3
    assert len(set(Issuance.objects.values_list("code_id", flat=True))) == 3
