"""The customer's survey page: the thank-you page says what the customer just answered,
in their language ("no" reopens the case)."""

from __future__ import annotations

import pytest

from appease.core.context import Actor
from feedback.models import Case, FollowUp
from feedback.services.cases import case_claim, case_resolve
from feedback.services.surveys import follow_ups_send, survey_token
from tests.factories import customer_create
from tests.feedback.conftest import open_case

pytestmark = pytest.mark.django_db

GLAD = {"es": "Nos alegra que esté resuelto.", "pt-br": "Que bom que foi resolvido."}
SORRY = {"es": "Sentimos que aún no esté resuelto.", "pt-br": "Sentimos que ainda não esteja resolvido."}


def survey_link(csr, language: str) -> tuple[str, Case]:
    case = open_case(customer=customer_create(language=language))
    case_claim(actor=Actor(user=csr), case_id=case.pk)
    case_resolve(actor=Actor(user=csr), case_id=case.pk, note="Refunded the delivery fee")
    follow_ups_send(now=case.follow_ups.get().due_at)
    return f"/s/{survey_token(case.follow_ups.get())}/", case


@pytest.mark.parametrize("language", ["es", "pt-br"])
def test_yes_solved_five_stars_thanks_the_customer_for_a_solved_problem(client, csr, language):
    # given a follow-up sent to a customer who speaks `language`
    link, case = survey_link(csr, language)

    # when they answer "yes, solved, 5 stars"
    page = client.post(link, {"solved": "yes", "csat": "5"})

    # then the page is glad, in their language, and the case is confirmed
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-testid="survey-thanks"' in html
    assert GLAD[language] in html
    assert SORRY[language] not in html
    assert f'<html lang="{language}">' in html
    follow_up = case.follow_ups.get()
    assert (follow_up.status, follow_up.solved, follow_up.csat) == (FollowUp.Status.ANSWERED, True, 5)
    case.refresh_from_db()
    assert case.status == Case.Status.CONFIRMED


@pytest.mark.parametrize("language", ["es", "pt-br"])
def test_not_solved_says_sorry_and_reopens_the_case(client, csr, language):
    # given a follow-up sent to a customer who speaks `language`
    link, case = survey_link(csr, language)

    # when they answer "no, not solved"
    page = client.post(link, {"solved": "no", "csat": "2"})

    # then the page is sorry, in their language, and the case is back in the queue
    html = page.content.decode()
    assert page.status_code == 200
    assert SORRY[language] in html
    assert GLAD[language] not in html
    case.refresh_from_db()
    assert (case.status, case.reopened_count) == (Case.Status.OPEN, 1)
    assert case.follow_ups.get().solved is False
