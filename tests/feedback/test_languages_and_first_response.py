"""Reps work in languages: the queue shows and filters by them and "Next case" prefers
a case in the rep's (with SKIP LOCKED on PostgreSQL). The first response is the first
thing the customer receives (a message, an appeasement, a logged call), not the claim."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection

from appease.core.context import Actor
from appease.issuance.models import StaffProfile
from appease.issuance.services.issuance import issuance_approve
from feedback.models import Case, CaseEvent
from feedback.services.cases import (
    case_apologise,
    case_call_log,
    case_claim,
    case_claim_next,
    case_issue,
    case_note,
    case_resolve,
)
from tests.factories import customer_create, offer_create, policy_create, reason_create, staff_user
from tests.feedback.conftest import open_case
from tests.issuance.test_concurrency import run_together

pytestmark = pytest.mark.django_db


def speaking(user, *languages: str):
    StaffProfile.objects.filter(user=user).update(languages=list(languages))
    user.refresh_from_db()
    return user


def test_next_case_prefers_the_reps_languages_then_the_others(csr):
    # given: a critical case in Spanish, a low one in English
    spanish = open_case(email="a@example.com", incident_type="service_outage", rating=1, language="es")
    english = open_case(email="b@example.com", incident_type="other", rating=3, language="en")
    assert spanish.priority_score > english.priority_score
    speaking(csr, "en")

    # when the English-only rep asks for the next case, twice
    first = case_claim_next(actor=Actor(user=csr))
    second = case_claim_next(actor=Actor(user=csr))

    # then the English case first, the Spanish one after (nobody sits idle)
    assert (first.pk, second.pk) == (english.pk, spanish.pk)


def test_a_rep_without_languages_takes_the_queue_by_priority(csr):
    low = open_case(email="a@example.com", incident_type="other", rating=3, language="en")
    top = open_case(email="b@example.com", incident_type="service_outage", rating=1, language="pt-br")
    assert top.priority_score > low.priority_score

    assert case_claim_next(actor=Actor(user=csr)).pk == top.pk


def test_the_queue_shows_and_filters_by_language(csr, client):
    spanish = open_case(email="a@example.com", language="es", text="Mi pedido llega tarde")
    english = open_case(email="b@example.com", language="en")
    speaking(csr, "es")
    client.force_login(csr)

    everything = client.get("/csr/cases/?view=open").content.decode()
    mine = client.get("/csr/cases/?view=open&language=mine").content.decode()
    english_only = client.get("/csr/cases/?view=open&language=en").content.decode()

    assert f'data-case="{spanish.pk}"' in everything and f'data-case="{english.pk}"' in everything
    assert 'data-testid="case-language">Spanish<' in everything
    assert f'data-case="{spanish.pk}"' in mine and f'data-case="{english.pk}"' not in mine
    assert f'data-case="{english.pk}"' in english_only and f'data-case="{spanish.pk}"' not in english_only


def test_the_admin_edits_a_reps_languages(client):
    supervisor = staff_user("Supervisor")
    supervisor.is_superuser = True
    supervisor.save()
    rep = staff_user()
    profile = StaffProfile.objects.get(user=rep)
    client.force_login(supervisor)

    response = client.post(
        f"/admin/appease/staffprofile/{profile.pk}/change/",
        {"user": rep.pk, "languages": ["es", "pt-br"], "language": "", "time_zone": ""},
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    profile.refresh_from_db()
    assert profile.languages == ["es", "pt-br"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_reps_claiming_at_once_each_get_a_different_case_in_their_language_first():
    # given: six Spanish and six English cases; three Spanish and three English reps
    spanish = {open_case(email=f"es{i}@example.com", language="es").pk for i in range(6)}
    english = {open_case(email=f"en{i}@example.com", language="en").pk for i in range(6)}
    reps = [speaking(staff_user(), "es" if i < 3 else "en") for i in range(6)]

    # when: each claims twice, all at once
    results = run_together(6, lambda i: [case_claim_next(actor=Actor(user=reps[i])).pk for _ in range(2)])

    # then: no case twice, and every rep got cases in their own language
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    claimed = [pk for result in results for pk in result]
    assert len(claimed) == len(set(claimed)) == 12
    for i, result in enumerate(results):
        assert set(result) <= (spanish if i < 3 else english)
    assert connection.vendor == "postgresql"


def test_claiming_is_not_a_response_and_a_note_is_not_either(csr):
    case = open_case(email="a@example.com")

    case_claim(actor=Actor(user=csr), case_id=case.pk)
    case_note(actor=Actor(user=csr), case_id=case.pk, text="Looking at the tracking")

    case.refresh_from_db()
    assert case.first_response_at is None


def test_a_logged_call_is_the_first_response(csr):
    case = open_case(email="a@example.com")
    case_claim(actor=Actor(user=csr), case_id=case.pk)

    event = case_call_log(actor=Actor(user=csr), case_id=case.pk, text="Called: the parcel leaves today")

    case.refresh_from_db()
    assert event.kind == CaseEvent.Kind.CALL
    assert case.first_response_at == event.created_at or case.first_response_at is not None
    first = case.first_response_at
    # a second contact does not move it
    case_call_log(actor=Actor(user=csr), case_id=case.pk, text="Called again")
    case.refresh_from_db()
    assert case.first_response_at == first


def test_the_case_page_logs_a_call(csr, client):
    case = open_case(email="a@example.com")
    case_claim(actor=Actor(user=csr), case_id=case.pk)
    client.force_login(csr)

    client.post(f"/csr/cases/{case.pk}/note/", {"text": "Spoke to them", "kind": "call"})

    case.refresh_from_db()
    assert case.first_response_at is not None
    assert case.events.filter(kind=CaseEvent.Kind.CALL, text="Spoke to them").exists()


def test_an_apology_sent_is_the_first_response(csr):
    offer_create(kind="apology", value_amount=Decimal("0"), name="Apology")
    case = open_case(email="a@example.com")
    case_claim(actor=Actor(user=csr), case_id=case.pk)

    case_apologise(actor=Actor(user=csr), case_id=case.pk, template=None, text="So sorry", reason_code=reason_create())

    case.refresh_from_db()
    assert case.first_response_at is not None


def test_an_appeasement_waiting_for_approval_is_not_a_response_until_approved():
    # given: a rep whose budget is too small, a case claimed
    rep = staff_user(policy=policy_create(day_cost_amount=Decimal("1.00")))
    supervisor = staff_user("Supervisor", policy=policy_create(day_cost_amount=Decimal("100")))
    case = open_case(customer=customer_create())
    case_claim(actor=Actor(user=rep), case_id=case.pk)

    # when the rep gives over the limit: it waits for a supervisor
    issuance = case_issue(
        actor=Actor(user=rep),
        case_id=case.pk,
        offer=offer_create(cost_amount=Decimal("3")),
        reason_code=reason_create(),
    )
    case.refresh_from_db()
    assert (issuance.status, case.first_response_at) == ("pending_approval", None)

    # then the approval, which sends it, is the first response
    approved = issuance_approve(actor=Actor(user=supervisor), issuance_id=issuance.pk)
    case.refresh_from_db()
    assert case.first_response_at == approved.issued_at


def test_resolving_without_contact_is_not_a_response(csr):
    case = open_case(email="a@example.com")
    case_claim(actor=Actor(user=csr), case_id=case.pk)

    case_resolve(actor=Actor(user=csr), case_id=case.pk, note="Duplicate of another case")

    assert Case.objects.get(pk=case.pk).first_response_at is None


def test_the_case_api_filters_by_language_and_says_each_cases(csr):
    from rest_framework.test import APIClient

    spanish = open_case(email="a@example.com", language="es")
    open_case(email="b@example.com", language="en")
    speaking(csr, "es")
    api = APIClient()
    api.force_login(csr)

    mine = api.get("/api/v1/cases", {"language": "mine"}).json()["results"]
    wrong = api.get("/api/v1/cases", {"language": "fr"})

    assert [(case["id"], case["language"]) for case in mine] == [(spanish.pk, "es")]
    assert wrong.status_code == 400 and "language" in wrong.json()["fields"]
