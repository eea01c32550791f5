"""Closing the loop: the follow-up after resolution, its signed single-use expiring
survey link, reopening on "not solved", expiry, and the quiet period."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from appease.core.context import Actor
from appease.core.exceptions import ApplicationError
from appease.delivery.models import Delivery
from feedback.models import Case, CaseEvent, FollowUp
from feedback.services.cases import case_claim, case_resolve
from feedback.services.surveys import (
    follow_ups_expire,
    follow_ups_send,
    survey_answer,
    survey_token,
    survey_url,
)
from tests.factories import customer_create
from tests.feedback.conftest import open_case

pytestmark = pytest.mark.django_db


def resolved_case(csr, customer=None) -> Case:
    case = open_case(customer=customer or customer_create(language="es"))
    case_claim(actor=Actor(user=csr), case_id=case.pk)
    return case_resolve(actor=Actor(user=csr), case_id=case.pk, note="Refunded the delivery fee")


def sent_follow_up(csr, customer=None) -> FollowUp:
    case = resolved_case(csr, customer)
    follow_up = case.follow_ups.get()
    follow_ups_send(now=follow_up.due_at)
    follow_up.refresh_from_db()
    return follow_up


def test_the_follow_up_is_due_after_the_delay_and_sent_through_the_outbox(
    csr, settings, eager, django_capture_on_commit_callbacks
):
    settings.FOLLOW_UP_DELAY = timedelta(minutes=30)
    case = resolved_case(csr)
    follow_up = case.follow_ups.get()
    assert follow_up.due_at == case.resolved_at + timedelta(minutes=30)

    # not before it is due
    assert follow_ups_send(now=follow_up.due_at - timedelta(seconds=1)) == 0
    # when it is, once, however many beat runs
    with django_capture_on_commit_callbacks(execute=True):
        assert follow_ups_send(now=follow_up.due_at) == 1
        assert follow_ups_send(now=follow_up.due_at) == 0

    follow_up.refresh_from_db()
    delivery = follow_up.delivery
    assert (follow_up.status, delivery.kind, delivery.issuance) == ("sent", Delivery.Kind.FOLLOW_UP, None)
    assert delivery.status == "sent" and delivery.language == "es"
    message = mail.outbox[-1]
    assert message.to == [case.customer.email]
    assert "¿" in message.subject  # in the customer's language
    assert survey_url(follow_up) in message.body
    assert case.events.filter(kind=CaseEvent.Kind.FOLLOW_UP_SENT).exists()


def test_solved_closes_the_case_confirmed_and_the_link_works_once(csr, client):
    follow_up = sent_follow_up(csr)
    url = survey_url(follow_up).removeprefix("http://127.0.0.1:8000")

    page = client.get(url)
    answer = client.post(url, {"solved": "yes", "csat": "5", "comment": "Thanks!"})
    again = client.post(url, {"solved": "no"})

    assert page.status_code == 200 and "csat" in page.content.decode()
    assert answer.status_code == 200 and answer.context["state"] == "thanks"
    assert again.status_code == 409
    follow_up.refresh_from_db()
    assert (follow_up.solved, follow_up.csat, follow_up.comment) == (True, 5, "Thanks!")
    assert Case.objects.get(pk=follow_up.case_id).status == Case.Status.CONFIRMED


def test_not_solved_reopens_the_case_with_high_priority(csr):
    follow_up = sent_follow_up(csr)
    case = follow_up.case
    score_before = case.priority_score

    survey_answer(token=survey_token(follow_up), solved=False, csat=1)

    case.refresh_from_db()
    assert case.status == Case.Status.OPEN and case.assigned_to is None
    assert case.priority in ("high", "critical") and case.priority_score > score_before
    assert case.reopened_count == 1 and case.resolved_at is None
    assert case.first_response_due_at > timezone.now() - timedelta(seconds=5)
    assert case.events.filter(kind=CaseEvent.Kind.REOPENED).exists()


def test_a_forged_or_altered_token_is_refused(csr, client):
    follow_up = sent_follow_up(csr)
    token = survey_token(follow_up)

    with pytest.raises(ApplicationError):
        survey_answer(token=token[:-2] + "xx", solved=True)
    assert client.get(f"/s/{token[:-2]}xx/").status_code == 404
    follow_up.refresh_from_db()
    assert follow_up.answered_at is None


def test_an_expired_link_is_refused_and_the_case_closes_unconfirmed(csr, client):
    follow_up = sent_follow_up(csr)
    FollowUp.objects.filter(pk=follow_up.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    response = client.post(f"/s/{survey_token(follow_up)}/", {"solved": "yes"})
    closed = follow_ups_expire()

    assert response.status_code == 410
    assert closed == 1
    follow_up.refresh_from_db()
    assert follow_up.status == FollowUp.Status.EXPIRED and follow_up.solved is None
    assert Case.objects.get(pk=follow_up.case_id).status == Case.Status.UNCONFIRMED


def test_an_answer_must_say_solved_or_not(csr, client):
    follow_up = sent_follow_up(csr)

    response = client.post(f"/s/{survey_token(follow_up)}/", {"csat": "9"})

    assert response.status_code == 400
    assert set(response.context["errors"]) == {"solved", "csat"}
    follow_up.refresh_from_db()
    assert follow_up.answered_at is None


def test_a_customer_is_not_surveyed_twice_within_the_quiet_period(csr, settings):
    settings.SURVEY_QUIET_PERIOD = timedelta(days=14)
    customer = customer_create()
    first = sent_follow_up(csr, customer)
    assert first.status == FollowUp.Status.SENT

    second_case = resolved_case(csr, customer)

    assert not second_case.follow_ups.exists()
    second_case.refresh_from_db()
    assert second_case.status == Case.Status.UNCONFIRMED
    skipped = second_case.events.get(kind=CaseEvent.Kind.FOLLOW_UP_SKIPPED)
    assert skipped.data == {"reason": "quiet_period"}


def test_after_the_quiet_period_the_customer_is_surveyed_again(csr, settings):
    settings.SURVEY_QUIET_PERIOD = timedelta(days=14)
    customer = customer_create()
    first = sent_follow_up(csr, customer)
    FollowUp.objects.filter(pk=first.pk).update(sent_at=timezone.now() - timedelta(days=15))

    second_case = resolved_case(csr, customer)

    assert second_case.follow_ups.get().status == FollowUp.Status.SCHEDULED


def test_no_consented_channel_skips_the_follow_up(csr):
    customer = customer_create(consent_email=False)
    case = resolved_case(csr, customer)
    follow_up = case.follow_ups.get()

    follow_ups_send(now=follow_up.due_at)

    follow_up.refresh_from_db()
    assert (follow_up.status, follow_up.skip_reason) == ("skipped", "no_channel")
    assert follow_up.delivery is None
    assert Case.objects.get(pk=case.pk).status == Case.Status.UNCONFIRMED


def test_a_customer_we_cannot_reach_gets_no_survey_and_the_case_says_why(csr):
    # given: a customer the shop named only by its id (no email, phone or handle)
    customer = customer_create(email="", external_id="SHOP-7", preferred_channel="")
    case = resolved_case(csr, customer)
    follow_up = case.follow_ups.get()

    # when
    sent = follow_ups_send(now=follow_up.due_at)

    # then: skipped with the reason on the row and on the timeline, the case closed unconfirmed
    assert sent == 0
    follow_up.refresh_from_db()
    assert (follow_up.status, follow_up.skip_reason, follow_up.delivery) == ("skipped", "no_channel", None)
    assert case.events.get(kind=CaseEvent.Kind.FOLLOW_UP_SKIPPED).data == {"reason": "no_channel"}
    assert Case.objects.get(pk=case.pk).status == Case.Status.UNCONFIRMED


def test_a_reopened_case_is_surveyed_again_within_the_quiet_period(csr, settings, django_capture_on_commit_callbacks):
    settings.SURVEY_QUIET_PERIOD = timedelta(days=14)
    # given: a case whose customer said "not solved" (surveyed minutes ago), worked again
    follow_up = sent_follow_up(csr)
    survey_answer(token=survey_token(follow_up), solved=False)
    case_claim(actor=Actor(user=csr), case_id=follow_up.case_id)

    # when: it is resolved again
    case = case_resolve(actor=Actor(user=csr), case_id=follow_up.case_id, note="Sent a replacement")

    # then: the same case closes its loop: a new follow-up, sent when due, not skipped
    second = case.follow_ups.exclude(pk=follow_up.pk).get()
    assert second.status == FollowUp.Status.SCHEDULED
    with django_capture_on_commit_callbacks(execute=True):
        assert follow_ups_send(now=second.due_at) == 1
    second.refresh_from_db()
    assert second.status == FollowUp.Status.SENT
    assert not case.events.filter(kind=CaseEvent.Kind.FOLLOW_UP_SKIPPED).exists()


def test_the_quiet_period_still_holds_for_another_case_of_the_same_customer(csr, settings):
    settings.SURVEY_QUIET_PERIOD = timedelta(days=14)
    customer = customer_create()
    first = sent_follow_up(csr, customer)
    survey_answer(token=survey_token(first), solved=False)  # reopened, and surveyed just now

    # when: a different case of theirs is resolved
    other = open_case(customer=customer, incident_type="overcharge", text="Charged twice")
    assert other.pk != first.case_id
    case_claim(actor=Actor(user=csr), case_id=other.pk)
    case_resolve(actor=Actor(user=csr), case_id=other.pk, note="Refunded")

    # then: not surveyed about it (the loop closes unconfirmed, the timeline says why)
    assert not other.follow_ups.exists()
    assert other.events.get(kind=CaseEvent.Kind.FOLLOW_UP_SKIPPED).data == {"reason": "quiet_period"}


@pytest.mark.parametrize("csat", ["great", "³", "4.5"])
def test_a_satisfaction_that_is_not_a_number_is_a_field_error_not_dropped(csr, client, csat):
    follow_up = sent_follow_up(csr)

    response = client.post(f"/s/{survey_token(follow_up)}/", {"solved": "yes", "csat": csat})

    assert response.status_code == 400
    assert set(response.context["errors"]) == {"csat"}
    follow_up.refresh_from_db()
    assert follow_up.answered_at is None


def test_no_satisfaction_at_all_is_fine(csr, client):
    follow_up = sent_follow_up(csr)

    response = client.post(f"/s/{survey_token(follow_up)}/", {"solved": "yes", "csat": ""})

    assert response.status_code == 200
    follow_up.refresh_from_db()
    assert (follow_up.solved, follow_up.csat) == (True, None)


def _survey_path(follow_up) -> str:
    return survey_url(follow_up).removeprefix("http://127.0.0.1:8000")


def test_the_survey_page_follows_the_browser_when_the_customer_has_only_the_default(csr, client):
    # given a customer whose language is only the shop's default, on a Portuguese browser
    follow_up = sent_follow_up(csr, customer_create(language="en"))

    # when the survey page opens
    page = client.get(_survey_path(follow_up), HTTP_ACCEPT_LANGUAGE="pt-BR,pt;q=0.9").content.decode()

    # then it is in Portuguese
    assert '<html lang="pt-br">' in page
    assert "Seu problema foi resolvido?" in page


def test_the_customers_own_language_wins_over_the_browser(csr, client):
    # given a Spanish-speaking customer on a Portuguese browser
    follow_up = sent_follow_up(csr, customer_create(language="es"))

    # when the survey page opens
    page = client.get(_survey_path(follow_up), HTTP_ACCEPT_LANGUAGE="pt-BR").content.decode()

    # then it is in the customer's Spanish, with a way to switch
    assert "¿Se resolvió tu problema?" in page
    assert 'href="?lang=pt-br"' in page


def test_a_language_chosen_on_the_survey_page_wins_and_holds_for_the_answer(csr, client):
    # given a Spanish customer who switches the page to Portuguese
    follow_up = sent_follow_up(csr, customer_create(language="es"))
    url = _survey_path(follow_up) + "?lang=pt-br"

    # when the page opens and an incomplete answer is sent from it
    page = client.get(url).content.decode()
    answer = client.post(url, {"csat": "4"})

    # then both are in Portuguese
    assert "Seu problema foi resolvido?" in page
    assert answer.status_code == 400 and "Seu problema foi resolvido?" in answer.content.decode()
