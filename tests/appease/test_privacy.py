"""GDPR/LGPD: export everything about a customer; erase them without breaking the
financial or audit trail; pseudonymise old personal data on a schedule."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from appease.context import Actor
from appease.models import AuditEvent, Customer, Delivery, Issuance
from appease.services.privacy import ERASED, EXPIRED, customer_erase, customer_export, personal_data_expire
from feedback.models import CaseEvent, Feedback
from feedback.services.cases import case_claim, case_resolve
from tests.factories import customer_create, offer_create, reason_create, staff_user
from tests.feedback.conftest import open_case, policy_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def customer_with_history():
    from appease.services.customers import customer_create as service_create
    from appease.services.issuance import issuance_create

    csr = staff_user(policy=policy_create(day_cost_amount=1000))
    customer = service_create(
        actor=Actor(user=csr), name="Lucía Pérez", email="lucia@example.com", phone="+34612345678", external_id="L-1"
    )
    issuance = issuance_create(
        actor=Actor(user=csr),
        customer=customer,
        offer=offer_create(generate_on_demand=True),
        reason_code=reason_create(),
        note="Lucía called about parcel 881",
    )
    case = open_case(customer=customer, text="Lucía here: my parcel never came, call me on +34612345678")
    case_claim(actor=Actor(user=csr), case_id=case.pk)
    case_resolve(actor=Actor(user=csr), case_id=case.pk, note="Called Lucía back")
    return customer, issuance, case


def test_the_export_holds_everything_about_the_customer(customer_with_history):
    customer, issuance, _case = customer_with_history

    data = json.loads(json.dumps(customer_export(customer), default=str))

    assert data["customer"]["email"] == "lucia@example.com"
    assert data["issuances"][0]["id"] == str(issuance.pk)
    assert data["issuances"][0]["code_last4"] == issuance.code.last4
    assert "code" not in data["issuances"][0]  # never the whole code
    assert data["deliveries"][0]["address"] == "lucia@example.com"
    assert data["feedback"][0]["text"].startswith("Lucía here")
    assert [event["kind"] for event in data["cases"][0]["timeline"]][:2] == ["opened", "feedback"]


def test_the_export_command_writes_json(customer_with_history, tmp_path):
    customer, _issuance, _case = customer_with_history
    out = tmp_path / "lucia.json"

    call_command("customer_export", str(customer.pk), "--output", str(out))

    assert json.loads(out.read_text())["customer"]["name"] == "Lucía Pérez"
    assert AuditEvent.objects.filter(action="customer.export", object_id=str(customer.pk)).exists()


def test_erasure_removes_personal_data_and_keeps_the_trail(customer_with_history):
    customer, issuance, case = customer_with_history
    code_hash, last4 = bytes(issuance.code.lookup_hash), issuance.code.last4
    audit_count = AuditEvent.objects.count()

    erased = customer_erase(actor=Actor(user=staff_user("Supervisor")), customer=customer)

    # personal data gone
    assert (erased.name, erased.email, str(erased.phone), erased.external_id) == (
        f"Erased customer {customer.pk}", "", "", None,
    )  # fmt: skip
    assert erased.erased_at is not None and not erased.consents_to("email")
    issuance.refresh_from_db()
    assert issuance.note == ERASED
    assert set(Delivery.objects.filter(customer=customer).values_list("address", flat=True)) == {ERASED}
    assert set(Feedback.objects.filter(customer=customer).values_list("text", flat=True)) == {ERASED}
    case.refresh_from_db()
    assert case.subject == ERASED and case.resolution_note == ERASED
    assert not CaseEvent.objects.filter(case=case, text__icontains="lucía").exists()
    created = AuditEvent.objects.get(action="customer.create", object_id=str(customer.pk))
    assert created.after["email"] == ERASED and created.after["name"] == ERASED
    dump = json.dumps(customer_export(erased), default=str).lower()
    assert "lucía" not in dump and "lucia@" not in dump and "612345678" not in dump
    # the money and the trail stay
    assert (issuance.face_value_amount, issuance.csr_id, issuance.status) == (
        issuance.offer.value_amount, issuance.csr_id, Issuance.Status.ISSUED,
    )  # fmt: skip
    assert (bytes(issuance.code.lookup_hash), issuance.code.last4) == (code_hash, last4)
    assert AuditEvent.objects.count() == audit_count + 1
    assert AuditEvent.objects.filter(action="customer.erase", object_id=str(customer.pk)).exists()
    assert created.actor_label and created.created_at


@pytest.mark.postgres
def test_outside_an_erasure_the_trail_stays_append_only(customer_with_history):
    _customer, _issuance, case = customer_with_history
    event = CaseEvent.objects.filter(case=case).first()
    audit = AuditEvent.objects.first()

    for statement in (
        lambda: CaseEvent.objects.filter(pk=event.pk).update(text="rewritten"),
        lambda: AuditEvent.objects.filter(pk=audit.pk).update(after={}),
        lambda: CaseEvent.objects.filter(pk=event.pk).delete(),
    ):
        with pytest.raises(DatabaseError), transaction.atomic():
            statement()


@pytest.mark.postgres
def test_even_an_erasure_cannot_change_who_did_what(customer_with_history):
    _customer, _issuance, case = customer_with_history
    event = CaseEvent.objects.filter(case=case).first()

    with pytest.raises(DatabaseError), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL appease.erasure = 'on'")
        CaseEvent.objects.filter(pk=event.pk).update(kind="closed")


def test_old_personal_data_is_pseudonymised_by_the_retention_task(customer_with_history, settings):
    settings.RETENTION_MONTHS = 12
    customer, _issuance, case = customer_with_history
    fresh = open_case(customer=customer_create(), text="Fresh complaint about a late parcel")
    long_ago = timezone.now() - timedelta(days=400)
    Feedback.objects.exclude(case=fresh).update(created_at=long_ago)
    Delivery.objects.update(created_at=long_ago)
    case.refresh_from_db()
    type(case).objects.filter(pk=case.pk).update(status="confirmed", closed_at=long_ago)
    Customer.objects.filter(pk=customer.pk).update(created_at=long_ago)
    Issuance.objects.filter(customer=customer).update(created_at=long_ago)
    type(case).objects.filter(customer=customer).update(created_at=long_ago)

    done = personal_data_expire()

    assert done["feedback"] == 1 and done["cases"] == 1 and done["customers"] == 1
    assert Feedback.objects.get(case=case).text in (EXPIRED, ERASED)  # expired, then its idle customer erased
    assert Feedback.objects.get(case=fresh).text.startswith("Fresh complaint")
    assert Customer.objects.get(pk=customer.pk).email == ""
    assert Customer.objects.get(pk=fresh.customer_id).erased_at is None
    # idempotent
    assert personal_data_expire()["feedback"] == 0


def test_retention_can_be_turned_off(customer_with_history, settings):
    settings.RETENTION_MONTHS = 0
    assert personal_data_expire() == {}
