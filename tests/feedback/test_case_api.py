"""The case endpoints a helpdesk calls (/api/v1/cases…): the same services as the case
page, the same rules on who may do what, one error shape, Idempotency-Key on the POSTs
that create something, and a reply that really reaches the customer."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from appease.core.context import Actor
from appease.core.models import IdempotencyKey, StaffAPIKey
from appease.delivery.models import Delivery
from appease.issuance.models import Issuance
from feedback.models import ApologyTemplate, Case, CaseEvent, RecommendationRule
from feedback.services.cases import case_claim, case_resolve
from tests.factories import customer_create, offer_create, policy_create, reason_create, staff_user
from tests.feedback.conftest import open_case
from tests.issuance.test_concurrency import run_together

pytestmark = pytest.mark.django_db


def as_user(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def apology_offer():
    return offer_create(kind="apology", value_amount=Decimal("0"), cost_amount=Decimal("0"), generate_on_demand=False)


# --- GET /cases: filtered, paged -------------------------------------------------------------


def test_the_list_filters_by_status_priority_incident_assignee_customer_and_opening_time(csr):
    # given: three cases; one the rep works; one opened two days ago
    pat = customer_create()
    late = open_case(customer=pat, incident_type="late_delivery")
    rude = open_case(email="b@example.com", incident_type="staff_attitude")
    old = open_case(email="c@example.com", incident_type="overcharge")
    Case.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    case_claim(actor=Actor(user=csr), case_id=rude.pk)
    client = as_user(csr)

    def ids(**query) -> list[int]:
        response = client.get("/api/v1/cases", query)
        assert response.status_code == 200, response.json()
        return sorted(case["id"] for case in response.json()["results"])

    # then: open (unclaimed) by default, as the queue opens
    assert ids() == sorted([late.pk, old.pk])
    assert ids(status="all") == sorted([late.pk, rude.pk, old.pk])
    assert ids(status="claimed") == [rude.pk]
    assert ids(status="all", assignee=csr.username) == [rude.pk]
    assert ids(status="mine") == [rude.pk]
    assert ids(status="all", incident_type="overcharge") == [old.pk]
    assert ids(status="all", customer=pat.pk) == [late.pk]
    assert ids(status="all", priority=late.priority, incident_type="late_delivery") == [late.pk]
    since = (timezone.now() - timedelta(days=1)).isoformat()
    assert ids(status="all", created_after=since) == sorted([late.pk, rude.pk])
    assert ids(status="all", created_before=since) == [old.pk]


def test_the_list_is_paged_and_refuses_bad_filters_naming_each(csr):
    for n in range(3):
        open_case(email=f"c{n}@example.com")
    client = as_user(csr)

    page = client.get("/api/v1/cases", {"page_size": 2}).json()
    refused = client.get(
        "/api/v1/cases", {"customer": "abc", "created_after": "yesterday", "status": "x", "page_size": "many"}
    )

    assert (page["count"], len(page["results"])) == (3, 2) and page["next"]
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid"
    assert {"customer", "created_after", "status"} <= set(refused.json()["fields"])


# --- GET /cases/{id} ---------------------------------------------------------------------------


def test_the_detail_has_the_timeline_what_was_given_and_the_recommendations(csr):
    # given: a case the rep claimed and gave from, and a rule recommending an apology
    case = open_case(customer=customer_create(), incident_type="late_delivery")
    client = as_user(csr)
    client.post(f"/api/v1/cases/{case.pk}/claim")
    offer = offer_create()
    given = client.post(
        f"/api/v1/cases/{case.pk}/issue", {"offer_id": offer.pk, "reason_code": reason_create().code}, format="json"
    )
    RecommendationRule.objects.create(
        name="Late", incident_type="late_delivery", intervention="discount", offer=offer, reason="Late: a discount"
    )

    # when
    body = client.get(f"/api/v1/cases/{case.pk}", HTTP_ACCEPT_LANGUAGE="es").json()

    # then
    assert body["id"] == case.pk and body["assigned_to"] == csr.username
    assert [line["kind"] for line in body["timeline"]] == ["opened", "feedback", "claimed", "issued"]
    assert body["timeline"][2]["actor"] == csr.username
    assert body["timeline"][2]["label"] == "Tomado"  # in the caller's language
    assert [issuance["id"] for issuance in body["issuances"]] == [given.json()["id"]]
    top = body["recommendations"][0]
    assert top["intervention"] == "discount"
    assert top["offer_id"] == offer.pk and top["arm"] == f"offer:{offer.pk}"
    # its estimate, what it rests on, and the figures in the caller's language: the
    # issuance just given is not answered yet, so it is no evidence
    assert (top["basis"], top["ranked_by"], top["sample_size"], top["solved_percent"]) == ("prior", "rule", 0, None)
    assert top["estimate"]["n_incident"] == 0 and top["estimate"]["n_segment"] == 0
    assert (top["cost"], top["currency"], top["recovery_value"]) == ("3.00", "USD", "25.00")
    assert top["evidence_line"] == f"{offer.name}: sin respuestas todavía, coste 3,00\xa0US$"


def test_an_unknown_case_is_404_in_the_one_shape(csr):
    client = as_user(csr)
    for method, path in [
        ("get", "/api/v1/cases/999999"),
        ("post", "/api/v1/cases/999999/claim"),
        ("post", "/api/v1/cases/999999/escalate"),
    ]:
        response = getattr(client, method)(path, {"text": "Help"}, format="json")
        assert response.status_code == 404, path
        assert response.json()["error"] == "not_found", path


# --- POST /cases ------------------------------------------------------------------------------


def test_a_rep_logs_a_case_for_a_customer_triaged_and_theirs_and_a_retry_replays_it(csr):
    customer = customer_create(language="es")
    client = as_user(csr)
    body = {"customer_id": customer.pk, "text": "El paquete llega tarde, tres días ya", "channel": "chat"}

    first = client.post("/api/v1/cases", body, format="json", HTTP_IDEMPOTENCY_KEY="ticket-5521")
    again = client.post("/api/v1/cases", body, format="json", HTTP_IDEMPOTENCY_KEY="ticket-5521")

    assert first.status_code == 201, first.json()
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    case = Case.objects.get()
    assert (case.status, case.assigned_to, case.source, case.language) == ("claimed", csr, "csr", "es")
    assert case.incident_type == "late_delivery" and case.incident_inferred  # the triage read the text
    assert list(case.events.values_list("kind", flat=True)) == ["opened", "feedback", "claimed"]


def test_an_unknown_customer_is_a_field_error_and_frees_the_key_for_the_corrected_retry(csr):
    client = as_user(csr)

    refused = client.post(
        "/api/v1/cases", {"customer_id": 999999, "text": "Late"}, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    corrected = client.post(
        "/api/v1/cases",
        {"customer_id": customer_create().pk, "text": "Late"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k1",
    )

    assert refused.status_code == 400 and list(refused.json()["fields"]) == ["customer_id"]
    assert corrected.status_code == 201
    assert Case.objects.count() == 1


def test_someone_without_a_staff_role_cannot_use_the_case_api():
    from django.contrib.auth.models import User

    shopper = User.objects.create_user("shopper", password="pw")
    case = open_case(email="a@example.com")

    for method, path, body in [
        ("get", "/api/v1/cases", None),
        ("get", f"/api/v1/cases/{case.pk}", None),
        ("post", "/api/v1/cases", {"customer_id": case.customer_id, "text": "x"}),
        ("post", f"/api/v1/cases/{case.pk}/claim", None),
    ]:
        assert getattr(as_user(shopper), method)(path, body, format="json").status_code == 403, path
        assert getattr(APIClient(), method)(path, body, format="json").status_code == 401, path
    assert Case.objects.count() == 1 and Case.objects.get().status == "open"


# --- claim and next ----------------------------------------------------------------------------


def test_claim_takes_an_open_case_once_with_a_staff_token(csr):
    case = open_case(email="a@example.com")
    _key, token = StaffAPIKey.objects.create_key(name="helpdesk", user=csr)
    client = APIClient(HTTP_AUTHORIZATION=f"Token {token}")

    first = client.post(f"/api/v1/cases/{case.pk}/claim")
    other = as_user(staff_user()).post(f"/api/v1/cases/{case.pk}/claim")

    assert first.status_code == 200 and first.json()["assigned_to"] == csr.username
    assert other.status_code == 409 and other.json()["error"] == "not_open"
    assert case.events.filter(kind=CaseEvent.Kind.CLAIMED).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_reps_claiming_the_same_case_at_once_one_wins():
    # given: one open case, two reps
    case = open_case(email="a@example.com")
    reps = [staff_user() for _ in range(2)]

    # when: both claim it at the same moment
    def claim(i: int):
        response = as_user(reps[i]).post(f"/api/v1/cases/{case.pk}/claim")
        return response.status_code

    results = run_together(2, claim)

    # then: one got it, the other was told someone has it
    assert sorted(results) == [200, 409]
    case.refresh_from_db()
    assert case.assigned_to == reps[results.index(200)]
    assert case.events.filter(kind=CaseEvent.Kind.CLAIMED).count() == 1


def test_next_claims_the_top_case_then_answers_204(csr):
    case = open_case(email="a@example.com")
    client = as_user(csr)

    first = client.post("/api/v1/cases/next")
    empty = client.post("/api/v1/cases/next")

    assert first.status_code == 200 and first.json()["id"] == case.pk
    assert empty.status_code == 204


# --- reply: an apology through the outbox ------------------------------------------------------


def test_a_reply_reaches_the_customer_by_email_in_their_language_through_the_outbox(
    csr,
    eager,
    smtp_server,
    django_capture_on_commit_callbacks,
):
    # given: a Spanish-speaking customer's case, claimed by the rep; the shop's apology offer
    customer = customer_create(name="Pat Doe", language="es")
    case = open_case(customer=customer)
    case_claim(actor=Actor(user=csr), case_id=case.pk)
    apology_offer()
    reason_create()
    client = as_user(csr)

    # when: the helpdesk replies (twice, with the same key: a retry)
    body = {"text": "Lo sentimos mucho, Pat: su pedido sale hoy."}
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(f"/api/v1/cases/{case.pk}/reply", body, format="json", HTTP_IDEMPOTENCY_KEY="r-1")
    again = client.post(f"/api/v1/cases/{case.pk}/reply", body, format="json", HTTP_IDEMPOTENCY_KEY="r-1")

    # then: one apology, its delivery sent by the worker through the SMTP server
    assert first.status_code == 201, first.json()
    assert again.status_code == 201 and again.json()["id"] == first.json()["id"]
    issuance = Issuance.objects.get()
    assert (issuance.case, issuance.offer.kind, issuance.apology_text) == (case, "apology", body["text"])
    delivery = Delivery.objects.get()
    assert (delivery.issuance, delivery.channel, delivery.language, delivery.status) == (
        issuance,
        "email",
        "es",
        "sent",
    )
    assert len(smtp_server.handler.messages) == 1
    message = smtp_server.handler.messages[0]
    assert message["To"] == customer.email
    text = "".join(
        part.get_payload(decode=True).decode() for part in message.walk() if part.get_content_type() == "text/plain"
    )
    assert "Lo sentimos mucho, Pat" in text
    # on the case's timeline, and the case's first response
    line = case.events.get(kind=CaseEvent.Kind.APOLOGY)
    assert (line.actor, line.text, line.data["issuance_id"]) == (csr, body["text"], str(issuance.pk))
    case.refresh_from_db()
    assert case.first_response_at is not None


def test_a_reply_from_a_template_is_filled_in_for_the_customer(csr):
    case = open_case(customer=customer_create(name="Pat Doe"))
    case_claim(actor=Actor(user=csr), case_id=case.pk)
    apology_offer()
    reason_create()
    template = ApologyTemplate.objects.create(name="Sorry", language="en", text="{first_name}, we are so sorry.")

    response = as_user(csr).post(f"/api/v1/cases/{case.pk}/reply", {"template_id": template.pk}, format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["apology_text"] == "Pat, we are so sorry."


def test_a_reply_is_refused_when_not_yours_without_words_or_without_an_apology_offer(csr):
    case = open_case(customer=customer_create())
    case_claim(actor=Actor(user=csr), case_id=case.pk)
    reason_create()
    client = as_user(csr)

    no_offer = client.post(f"/api/v1/cases/{case.pk}/reply", {"text": "Sorry"}, format="json")
    apology_offer()
    no_words = client.post(f"/api/v1/cases/{case.pk}/reply", {}, format="json", HTTP_ACCEPT_LANGUAGE="es")
    not_yours = as_user(staff_user()).post(f"/api/v1/cases/{case.pk}/reply", {"text": "Sorry"}, format="json")
    bad_template = client.post(f"/api/v1/cases/{case.pk}/reply", {"template_id": 999999}, format="json")

    assert (no_offer.status_code, no_offer.json()["error"]) == (409, "no_apology_offer")
    assert no_words.status_code == 400 and no_words.json()["fields"]["text"] == ["Escribe la disculpa."]
    assert (not_yours.status_code, not_yours.json()["error"]) == (403, "not_yours")
    assert bad_template.status_code == 400 and list(bad_template.json()["fields"]) == ["template_id"]
    assert not Issuance.objects.exists() and not Delivery.objects.exists()


# --- issue from the case ----------------------------------------------------------------------


def test_issue_gives_within_the_limits_linked_to_the_case_once_per_key(csr):
    case = open_case(customer=customer_create())
    client = as_user(csr)
    client.post(f"/api/v1/cases/{case.pk}/claim")
    body = {"offer_id": offer_create().pk, "reason_code": reason_create().code}

    first = client.post(f"/api/v1/cases/{case.pk}/issue", body, format="json", HTTP_IDEMPOTENCY_KEY="give-1")
    again = client.post(f"/api/v1/cases/{case.pk}/issue", body, format="json", HTTP_IDEMPOTENCY_KEY="give-1")

    assert first.status_code == 201, first.json()
    assert (first.json()["status"], first.json()["case_id"]) == ("issued", case.pk)
    assert again["Idempotent-Replayed"] == "true" and again.json()["id"] == first.json()["id"]
    issuance = Issuance.objects.get()
    assert (issuance.case, issuance.csr, issuance.complaint_start_source) == (case, csr, "case")
    assert case.events.filter(kind=CaseEvent.Kind.ISSUED).count() == 1


def test_issue_over_the_limit_waits_for_approval_or_is_refused_per_the_reps_policy():
    # given: two reps with 1.00 a day: one whose policy asks a supervisor, one refused
    asks = staff_user(policy=policy_create(over_limit="approval", day_cost_amount=Decimal("1.00")))
    refused = staff_user(policy=policy_create(over_limit="refuse", day_cost_amount=Decimal("1.00")))
    offer, reason = offer_create(), reason_create()  # costs 3.00
    results = {}
    for rep in (asks, refused):
        case = open_case(customer=customer_create())
        client = as_user(rep)
        client.post(f"/api/v1/cases/{case.pk}/claim")
        body = {"offer_id": offer.pk, "reason_code": reason.code}
        results[rep] = [
            client.post(f"/api/v1/cases/{case.pk}/issue", body, format="json", HTTP_IDEMPOTENCY_KEY="over")
            for _ in range(2)
        ]

    # then
    waiting = results[asks][0]
    assert (waiting.status_code, waiting.json()["status"]) == (201, "pending_approval")
    assert waiting.json()["breached_limits"][0]["message"]
    refusal, replayed = results[refused]
    assert refusal.status_code == 403 and refusal.json()["error"] == "limit_exceeded"
    assert replayed.status_code == 403 and replayed["Idempotent-Replayed"] == "true"  # the refusal is the answer
    assert Issuance.objects.count() == 1


def test_issue_refuses_someone_elses_case_an_unknown_offer_and_a_closed_case(csr):
    case = open_case(customer=customer_create())
    client = as_user(csr)
    client.post(f"/api/v1/cases/{case.pk}/claim")
    body = {"offer_id": offer_create().pk, "reason_code": reason_create().code}

    not_yours = as_user(staff_user()).post(f"/api/v1/cases/{case.pk}/issue", body, format="json")
    unknown = client.post(f"/api/v1/cases/{case.pk}/issue", {**body, "offer_id": 999999}, format="json")
    case_resolve(actor=Actor(user=csr), case_id=case.pk, note="Sorted by phone")
    closed = client.post(f"/api/v1/cases/{case.pk}/issue", body, format="json")

    assert (not_yours.status_code, not_yours.json()["error"]) == (403, "not_yours")
    assert unknown.status_code == 400 and list(unknown.json()["fields"]) == ["offer_id"]
    assert (closed.status_code, closed.json()["error"]) == (409, "closed")
    assert not Issuance.objects.exists()
    assert not IdempotencyKey.objects.exists()


# --- resolve, reassign, escalate ----------------------------------------------------------------


def test_the_owner_reassigns_to_a_rep_others_may_not_and_a_stranger_is_a_field_error(csr, supervisor):
    case = open_case(customer=customer_create())
    case_claim(actor=Actor(user=csr), case_id=case.pk)
    colleague = staff_user()

    by_other = as_user(staff_user()).post(
        f"/api/v1/cases/{case.pk}/reassign", {"assigned_to": colleague.username}, format="json"
    )
    to_nobody = as_user(csr).post(f"/api/v1/cases/{case.pk}/reassign", {"assigned_to": "nobody"}, format="json")
    moved = as_user(csr).post(f"/api/v1/cases/{case.pk}/reassign", {"assigned_to": colleague.username}, format="json")
    back = as_user(supervisor).post(f"/api/v1/cases/{case.pk}/reassign", {"assigned_to": csr.username}, format="json")

    assert (by_other.status_code, by_other.json()["error"]) == (403, "not_yours")
    assert to_nobody.status_code == 400 and list(to_nobody.json()["fields"]) == ["assigned_to"]
    assert moved.status_code == 200 and moved.json()["assigned_to"] == colleague.username
    assert back.status_code == 200 and back.json()["assigned_to"] == csr.username
    assert case.events.filter(kind=CaseEvent.Kind.REASSIGNED).count() == 2


def test_escalating_tells_the_supervisors_and_only_while_open(csr, supervisor, django_capture_on_commit_callbacks):
    case = open_case(customer=customer_create())
    case_claim(actor=Actor(user=csr), case_id=case.pk)
    client = as_user(csr)

    blank = client.post(f"/api/v1/cases/{case.pk}/escalate", {"text": "   "}, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        escalated = client.post(f"/api/v1/cases/{case.pk}/escalate", {"text": "Wants a refund"}, format="json")
    resolved = client.post(f"/api/v1/cases/{case.pk}/resolve", {"note": "Refunded"}, format="json")
    closed = client.post(f"/api/v1/cases/{case.pk}/escalate", {"text": "Again"}, format="json")

    assert blank.status_code == 400 and list(blank.json()["fields"]) == ["text"]
    assert escalated.status_code == 200
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"
    assert (closed.status_code, closed.json()["error"]) == (409, "closed")
    assert [m.to for m in mail.outbox] == [[supervisor.email]]
    assert "Wants a refund" in mail.outbox[0].body
    assert case.events.filter(kind=CaseEvent.Kind.ESCALATED).count() == 1
