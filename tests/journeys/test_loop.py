"""Every appeasement closes the loop: a rep gives from the customer panel (no case), the
customer gets the appeasement, then the follow-up asking whether it put things right;
"not solved" opens a case the rep finds in the queue."""

from __future__ import annotations

from tests.journeys.conftest import in_language
from tests.journeys.journeys import MARKS, REPS
from tests.journeys.pages import CSR, Customer

pytestmark = MARKS

# A customer of this journey's own: nobody surveyed her, so no quiet period holds her follow-up.
NAME, EMAIL, LANGUAGE = "Inés Lazo Ferrán", "ines.lazo@example.es", "es"

OFFER_NAME = """SELECT COALESCE(NULLIF(o.name_es, ''), NULLIF(o.name_en, ''), o.name) FROM appease_issuance i
  JOIN coupons_offer o ON o.id = i.offer_id JOIN appease_customer c ON c.id = i.customer_id
  WHERE c.email = %s"""
SURVEY_CASE = """SELECT k.id, k.priority, k.incident_type FROM feedback_case k
  JOIN appease_customer c ON c.id = k.customer_id WHERE c.email = %s AND k.source = 'survey'"""
OUTCOME = """SELECT o.path, o.solved, o.csat FROM feedback_appeasementoutcome o
  JOIN appease_customer c ON c.id = o.customer_id WHERE c.email = %s"""


def test_a_panel_gift_is_followed_up_and_not_solved_opens_a_case_in_the_queue(people, product):
    # given: a rep who works in Spanish gives from a new customer's panel, no case anywhere
    rep = next(rep for rep in REPS if rep.language == LANGUAGE)
    csr = CSR.log_in(people.new_page(LANGUAGE), rep.username, LANGUAGE)
    csr.create_customer(name=NAME, email=EMAIL, language=LANGUAGE, currency=rep.offer.currency)
    result = csr.give(offer=rep.offer.description, reason=rep.reason).wait_status("delivered")

    # then: the appeasement's message reaches her, then the follow-up (beat, the delay is 0 here)
    customer = Customer(product, EMAIL, LANGUAGE)
    customer.wait_for_code(result.last4)
    follow_up = customer.wait_for_mail(containing="/s/", timeout=180)
    first_name = NAME.split()[0]
    assert follow_up.subject == in_language(LANGUAGE, "%(first_name)s, did we put things right?") % {
        "first_name": first_name
    }
    offer_name = product.query(OFFER_NAME, EMAIL)[0][0]
    question = in_language(LANGUAGE, "Did our apology and %(offer_name)s put things right? One click tells us:")
    assert question % {"offer_name": offer_name} in follow_up.text

    # when: she opens the survey, and answers that it is not solved, 2 of 5
    page = people.new_page("en")
    text = customer.answer_survey(
        page, Customer.survey_link(follow_up), solved=False, csat=2, comment="Sigo sin el pedido."
    )

    # then: thanked in her language; the appeasement's outcome is her answer
    assert in_language(LANGUAGE, "Thank you!") in text
    assert product.query(OUTCOME, EMAIL) == [("panel", False, 2)]

    # and: a case for her, high priority or above, is in the rep's queue
    ((case_id, priority, incident_type),) = product.query(SURVEY_CASE, EMAIL)
    assert priority in ("high", "critical") and incident_type
    csr.page.goto("/csr/cases/")
    row = csr.page.locator(f"[data-testid=case-queue] tr[data-case='{case_id}']")
    row.wait_for()
    assert NAME in row.inner_text()
    assert f"priority-{priority}" in (row.get_attribute("class") or "")
    # and: the case's timeline links the appeasement, with her words
    case = csr.open_case(case_id)
    timeline = case.page.locator("[data-testid=timeline]")
    assert "Sigo sin el pedido." in timeline.inner_text()
    assert timeline.locator("[data-testid=event-appeasement]").count() == 1
