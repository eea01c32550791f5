"""The customer's journey: the message at the SMTP server, in their language and the
offer's currency; the follow-up after their case is resolved, and its one-question
survey, where "yes" closes the case and "no" reopens it."""

from __future__ import annotations

import pytest
from django.utils import translation

from tests.journeys.conftest import in_language
from tests.journeys.journeys import MARKS, REPS, gift_for
from tests.journeys.pages import CSR, Customer

pytestmark = MARKS

# What each customer saw after answering the survey (language -> (solved, page text)),
# for the wording check below.
THANKS: dict[str, tuple[bool, str]] = {}

SURVEYED = [
    # name, email, language, complaint, solved, satisfaction
    ("Marta Gil Ortega", "marta.gil@example.es", "es", "El pedido llegó tarde y nadie me avisó.", True, 5),
    ("Luana Ferreira", "luana.ferreira@example.com.br", "pt-br", "Meu pedido chegou quebrado de novo.", False, 2),
]


@pytest.mark.parametrize("language", [rep.language for rep in REPS])
def test_the_gift_reaches_the_customer_in_their_language_and_currency(people, product, language):
    gift = gift_for(people, product, language)
    mail, customer = gift.mail, gift.customer
    first_name = customer.name.split()[0]

    assert mail.to == (customer.email,)
    assert mail.text.startswith(in_language(customer.language, "Hello %(first_name)s,") % {"first_name": first_name})
    assert f"{in_language(customer.language, 'Your code:')} {gift.code}" in mail.text
    # The amount in the offer's currency, which is the customer's, written their way.
    assert gift.offer.currency == customer.currency
    assert f"{in_language(customer.language, 'Value:')} {gift.offer.face}" in mail.text


def test_the_survey_yes_closes_the_case_and_no_reopens_it(people, product):
    # given: two customers complain through the shop's widget; a rep resolves both cases
    customers = {email: Customer(product, email, language) for _n, email, language, *_ in SURVEYED}
    cases = {email: customers[email].complain(name=name, text=text) for name, email, _language, text, *_ in SURVEYED}
    csr = CSR.log_in(people.new_page("en"), "carla", "en")
    for email, case_id in cases.items():
        case = csr.open_case(case_id)
        case.take()
        case.resolve(note=f"journey: resolved for {email}")

    # when: the follow-up reaches each of them (beat sends it; the delay is 0 here) and
    # they answer, each in a browser that asks for English
    for _name, email, language, _text, solved, csat in SURVEYED:
        customer = customers[email]
        mail = customer.wait_for_mail(containing="/s/", timeout=180)
        assert in_language(language, "Was your problem solved? One click tells us:") in mail.text
        page = people.new_page("en")
        text = customer.answer_survey(page, Customer.survey_link(mail), solved=solved, csat=csat)

        # then: a thank-you page in the customer's language
        assert in_language(language, "Thank you!") in text
        THANKS[language] = (solved, text)

    # then: the rep sees the "yes" case closed as confirmed, the "no" one open again
    confirmed, reopened = (cases[email] for _n, email, *_ in SURVEYED)
    case = csr.open_case(confirmed)
    assert case.status == csr.t("Closed: solved, confirmed by the customer")
    case = csr.open_case(reopened)
    assert case.status == csr.t("Open")
    with translation.override(csr.language):
        reopened_once = translation.ngettext("reopened once", "reopened %(count)s times", 1)
    assert reopened_once in csr.page.locator("main").inner_text()


def test_the_thank_you_page_words_the_answer_just_given():
    if not THANKS:
        pytest.skip("needs test_the_survey_yes_closes_the_case_and_no_reopens_it to have run first")
    for language, (solved, text) in THANKS.items():
        sorry = "We're sorry it isn't solved yet. Someone will contact you shortly."
        expected = "We're glad it's sorted." if solved else sorry
        assert in_language(language, expected) in text, (language, text)
