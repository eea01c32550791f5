"""The case queue and case page in the CSR web UI, and who may see them."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.utils import translation

from appease.core.context import Actor
from feedback.models import ApologyTemplate, Case
from feedback.services.cases import case_claim
from tests.factories import customer_create, offer_create
from tests.feedback.conftest import open_case

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/csr/cases/", "/csr/cases/1/"])
def test_anonymous_people_are_sent_to_log_in(client, path):
    response = client.get(path)

    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("path", ["/csr/cases/", "/csr/cases/1/"])
def test_a_user_without_a_role_is_refused(client, path):
    open_case()
    client.force_login(User.objects.create_user("shopper"))

    assert client.get(path).status_code == 403
    assert client.post("/csr/cases/next/").status_code == 403


def test_the_queue_lists_open_cases_by_priority_with_their_timers(client, csr):
    low = open_case(email="a@example.com", incident_type="other", rating=3, text="Meh")
    high = open_case(email="b@example.com", incident_type="overcharge", rating=1, text="Charged twice!")
    client.force_login(csr)

    page = client.get("/csr/cases/").content.decode()

    assert page.index("Charged twice!") < page.index("Meh")
    assert f'data-due="{high.first_response_due_at.isoformat()}"' in page
    assert low.subject in page


def test_next_case_claims_the_top_case_and_opens_it(client, csr):
    case = open_case()
    client.force_login(csr)

    response = client.post("/csr/cases/next/")

    assert response.status_code == 302 and response["Location"] == f"/csr/cases/{case.pk}/"
    assert Case.objects.get(pk=case.pk).assigned_to == csr
    # an empty queue says so
    empty = client.post("/csr/cases/next/", follow=True)
    assert "The queue is empty" in empty.content.decode()


def test_the_case_page_shows_why_what_to_do_and_the_customers_history(client, csr, django_assert_max_num_queries):
    customer = customer_create(tier="gold")
    case = open_case(customer=customer, incident_type="staff_attitude", text="The agent was rude")
    case_claim(actor=Actor(user=csr), case_id=case.pk)
    ApologyTemplate.objects.create(name="Sorry", language="en", text="{first_name}, we are sorry.")
    offer_create(kind="apology", value_amount=Decimal("0"), cost_amount=Decimal("0"), description="Apology")
    client.force_login(csr)

    with django_assert_max_num_queries(40):
        response = client.get(f"/csr/cases/{case.pk}/")

    page = response.content.decode()
    assert response.status_code == 200
    assert "impact weight of Staff attitude" in page  # why the score, with the type's label
    recommendations = response.context["recommendations"]
    assert recommendations[0].intervention == "apology"
    assert "respect and a sincere apology" in page
    first_name = customer.name.split(" ")[0]
    assert f"{first_name}, we are sorry." in page  # the template, filled in
    assert [e.kind for e in response.context["events"]] == ["opened", "feedback", "claimed"]


def test_resolving_from_the_page_needs_a_note_and_then_schedules_the_follow_up(client, csr):
    case = open_case(customer=customer_create())
    case_claim(actor=Actor(user=csr), case_id=case.pk)
    client.force_login(csr)

    refused = client.post(f"/csr/cases/{case.pk}/resolve/", {"note": ""}, follow=True)
    assert "Say how the case was resolved." in refused.content.decode()
    assert Case.objects.get(pk=case.pk).status == "claimed"

    client.post(f"/csr/cases/{case.pk}/resolve/", {"note": "Explained the delay", "intervention": "explanation"})

    case.refresh_from_db()
    assert (case.status, case.intervention) == ("resolved", "explanation")
    assert case.follow_ups.count() == 1


def test_the_survey_page_is_for_the_customer_and_needs_no_login(client, csr):
    from feedback.services.cases import case_resolve
    from feedback.services.surveys import follow_ups_send, survey_token

    case = open_case(customer=customer_create(language="pt-br"))
    case_claim(actor=Actor(user=csr), case_id=case.pk)
    case_resolve(actor=Actor(user=csr), case_id=case.pk, note="ok")
    follow_ups_send(now=case.follow_ups.get().due_at)

    page = client.get(f"/s/{survey_token(case.follow_ups.get())}/")

    assert page.status_code == 200
    assert "Seu problema foi resolvido?" in page.content.decode()  # the customer's language
    assert '<html lang="pt-br">' in page.content.decode()


def test_the_score_reasons_are_worded_in_the_reps_language(client, csr):
    # given: a case scored for a gold customer with one star and an earlier case
    customer = customer_create(tier="gold", lifetime_value_amount=Decimal("500"))
    open_case(customer=customer, incident_type="staff_attitude", text="Rude")
    Case.objects.update(status=Case.Status.CONFIRMED)
    case = open_case(customer=customer, incident_type="late_delivery", text="Late", rating=1)
    client.force_login(csr)

    # when: the rep reads it in Spanish
    page = client.get(f"/csr/cases/{case.pk}/", HTTP_ACCEPT_LANGUAGE="es").content.decode()

    # then: every reason in Spanish, the incident type by its label, never a slug
    reasons = page[page.index('data-testid="score-reasons"') :].split("</ul>")[0]
    assert "peso del impacto (Entrega tardía)" in reasons
    assert "nivel Oro, valor de vida del cliente" in reasons
    assert "1 caso en los últimos 90 días" in reasons
    assert "valoración 1/5" in reasons
    assert "late_delivery" not in reasons


def test_reasons_stored_in_words_are_read_back_as_data():
    import importlib

    from django.apps import apps

    migration = importlib.import_module("feedback.migrations.0006_score_reasons_as_data")
    # given: a case scored before reasons were data
    case = open_case(email="old@example.com")
    old = [
        {"factor": "incident", "points": 20, "detail": "impact weight of late_delivery"},
        {"factor": "customer_value", "points": 12, "detail": "gold tier, lifetime value 500.00 USD"},
        {"factor": "repeat", "points": 10, "detail": "2 case(s) in the last 90 days"},
        {"factor": "feeling", "points": 14, "detail": "anger 0.90"},
        {"factor": "reopened", "points": 5, "detail": "the customer said it was not solved"},
        {"factor": "mystery", "points": 1, "detail": "something else"},
    ]
    Case.objects.filter(pk=case.pk).update(score_reasons=old)

    # when
    migration.forward(apps, None)

    # then
    case.refresh_from_db()
    assert [reason.get("params") for reason in case.score_reasons] == [
        {"incident_type": "late_delivery"},
        {"tier": "gold", "lifetime_value": "500.00", "currency": "USD"},
        {"count": 2},
        {"kind": "anger", "value": 0.9},
        {},
        None,
    ]
    with translation.override("en"):
        texts = [reason["text"] for reason in case.reasons]
    assert texts == [
        "impact weight of Late delivery",
        "Gold tier, lifetime value $500.00",
        "2 cases in the last 90 days",
        "anger 0.90",
        "the customer said it was not solved",
        "something else",
    ]


def test_the_timeline_says_who_a_case_went_to_and_why_it_closed(client, csr):
    from feedback.services.cases import case_reassign, case_resolve
    from feedback.services.surveys import follow_ups_send
    from tests.factories import staff_user

    # given: a case handed to a colleague, resolved, and closed because the customer
    # cannot be reached for the survey
    customer = customer_create(email="", external_id="SHOP-5", preferred_channel="")
    case = open_case(customer=customer)
    case_claim(actor=Actor(user=csr), case_id=case.pk)
    colleague = staff_user(username="maria")
    case_reassign(actor=Actor(user=csr), case_id=case.pk, to_user_id=colleague.pk)
    case_resolve(actor=Actor(user=colleague), case_id=case.pk, note="Refunded", intervention="refund_credit")
    follow_ups_send(now=case.follow_ups.get().due_at)
    client.force_login(csr)

    # when
    english = client.get(f"/csr/cases/{case.pk}/").content.decode()
    spanish = client.get(f"/csr/cases/{case.pk}/", HTTP_ACCEPT_LANGUAGE="es").content.decode()

    # then
    timeline = english[english.index('data-testid="timeline"') :]
    assert "to maria" in timeline
    assert "intervention: Refund credit" in timeline
    assert "no channel the customer can be reached on" in timeline
    assert "Closed: no answer from the customer: no channel the customer can be reached on" in timeline
    assert "para maria" in spanish[spanish.index('data-testid="timeline"') :]
