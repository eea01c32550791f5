"""Limits hold under real concurrency: PostgreSQL, threads released by a barrier."""

import threading
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection

from appease.core.context import Actor
from appease.core.exceptions import ApplicationError
from appease.core.models import AuditEvent
from appease.issuance.models import BudgetCounter, Issuance
from appease.issuance.services.issuance import issuance_create
from coupons.models import Code
from tests.factories import customer_create, offer_create, policy_create, reason_create, staff_user

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_together(n: int, fn) -> list:
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = fn(i)
        except Exception as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.parametrize("over_limit", ["approval", "refuse"])
def test_twenty_concurrent_issuances_never_overshoot_the_budget(over_limit):
    # given: a daily cost budget of 20.00 and offers costing 3.00: six fit
    csr = staff_user(policy=policy_create(over_limit=over_limit, day_cost_amount=Decimal("20.00")))
    offer = offer_create(value_amount=Decimal("5.00"), cost_amount=Decimal("3.00"), generate_on_demand=True)
    reason = reason_create()
    customers = [customer_create() for _ in range(20)]

    # when
    def issue(i):
        return issuance_create(actor=Actor(user=csr), customer=customers[i], offer=offer, reason_code=reason)

    results = run_together(20, issue)

    # then
    unexpected = [r for r in results if isinstance(r, Exception) and not isinstance(r, ApplicationError)]
    assert not unexpected, unexpected
    issued = Issuance.objects.filter(status=Issuance.Status.ISSUED)
    assert issued.count() == 6
    day = BudgetCounter.objects.get(user=csr, period="day")
    assert day.spent_cost_amount == Decimal("18.00")
    assert day.issuances_count == 6
    assert Code.objects.filter(status=Code.Status.ISSUED).count() == 6
    assert len(set(issued.values_list("code_id", flat=True))) == 6
    if over_limit == "approval":
        assert Issuance.objects.filter(status=Issuance.Status.PENDING_APPROVAL).count() == 14
    else:
        assert sum(isinstance(r, ApplicationError) and r.status == 403 for r in results) == 14
        assert Issuance.objects.count() == 6


def test_concurrent_reps_cannot_beat_the_repeat_claim_guard():
    # given: one customer, at most two appeasements, ten reps at once
    policy = policy_create(over_limit="refuse", max_per_customer=2)
    reps = [staff_user(policy=policy) for _ in range(10)]
    customer = customer_create()
    offer = offer_create(generate_on_demand=True)
    reason = reason_create()

    results = run_together(
        10, lambda i: issuance_create(actor=Actor(user=reps[i]), customer=customer, offer=offer, reason_code=reason)
    )

    assert sum(isinstance(r, Issuance) for r in results) == 2
    assert Issuance.objects.filter(customer=customer).count() == 2


def test_concurrent_issuances_from_one_inventory_never_share_a_code():
    from coupons.services.inventory import code_batch_import

    policy = policy_create()
    reps = [staff_user(policy=policy) for _ in range(15)]
    offer = offer_create(generate_on_demand=False)
    code_batch_import(offer=offer, text="\n".join(f"STOCK{i:04d}" for i in range(12)))
    reason = reason_create()

    results = run_together(
        15,
        lambda i: issuance_create(
            actor=Actor(user=reps[i]), customer=customer_create(), offer=offer, reason_code=reason
        ),
    )

    issued = [r for r in results if isinstance(r, Issuance)]
    empties = [r for r in results if isinstance(r, ApplicationError) and r.code == "inventory_empty"]
    assert len(issued) == 12
    assert len(empties) == 3
    assert len({i.code_id for i in issued}) == 12


def test_the_audit_log_refuses_update_and_delete():
    csr = staff_user(policy=policy_create())
    issuance_create(
        actor=Actor(user=csr), customer=customer_create(), offer=offer_create(), reason_code=reason_create()
    )
    event = AuditEvent.objects.get(action="issuance.create")
    with pytest.raises(DatabaseError):
        AuditEvent.objects.filter(pk=event.pk).update(action="tampered")
    with pytest.raises(DatabaseError):
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "issuance.create"


def test_concurrent_requests_sharing_an_idempotency_key_issue_once_and_answer_alike():
    # given: a rep's API token, and eight retries of one request fired at once
    from rest_framework.test import APIClient

    from appease.core.models import StaffAPIKey

    csr = staff_user(policy=policy_create())
    _key, token = StaffAPIKey.objects.create_key(name="crm", user=csr)
    customer = customer_create()
    offer = offer_create(generate_on_demand=True)
    reason_create("late-parcel")
    body = {"customer_id": customer.pk, "offer_id": offer.pk, "reason_code": "late-parcel", "note": "late"}

    def post(_i):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        response = client.post("/api/v1/issuances", body, format="json", HTTP_IDEMPOTENCY_KEY="crm-ticket-77")
        return response.status_code, response.json().get("id"), response.headers.get("Idempotent-Replayed")

    # when
    answers = run_together(8, post)

    # then: one issuance; every answer a 201 with its id (seven of them replays, none a 409)
    assert not [a for a in answers if isinstance(a, Exception)], answers
    issuance = Issuance.objects.get()
    assert {(status, issuance_id) for status, issuance_id, _replayed in answers} == {(201, str(issuance.pk))}
    assert sorted(replayed or "" for _s, _i, replayed in answers) == [""] + ["true"] * 7
    assert Code.objects.filter(status=Code.Status.ISSUED).count() == 1
    assert BudgetCounter.objects.get(user=csr, period="day").issuances_count == 1


def test_a_csr_form_sent_four_times_at_once_gives_once():
    # given: the rep's customer page rendered one form (one key); four copies of it race
    # (a double click with the button not yet disabled, a retry, a resubmitted page)
    import re

    from django.test import Client

    csr = staff_user(policy=policy_create())
    customer = customer_create()
    offer = offer_create(generate_on_demand=True)
    reason = reason_create()
    first = Client()
    first.force_login(csr)
    page = first.get(f"/csr/customers/{customer.pk}/").content.decode()
    key = re.search(r'name="idempotency_key" value="([0-9a-f]+)"', page).group(1)
    data = {"offer": offer.pk, "reason_code": reason.pk, "channel": "email", "idempotency_key": key}

    def post(_i):
        client = Client()
        client.force_login(csr)
        response = client.post(f"/csr/customers/{customer.pk}/issue/", data, HTTP_HX_REQUEST="true")
        return response.status_code

    # when
    answers = run_together(4, post)

    # then: one appeasement, and every copy was answered with it
    assert answers == [200] * 4, answers
    issuance = Issuance.objects.get()
    assert issuance.deliveries.count() == 1
    assert Code.objects.filter(status=Code.Status.ISSUED).count() == 1
