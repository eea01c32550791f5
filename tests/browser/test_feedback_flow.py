"""Closed-loop feedback in a real browser: a customer complains through the widget on
the demo shop, a rep works the case from the queue to resolution."""

from decimal import Decimal

import pytest

from appease.issuance.models import Customer, Issuance
from feedback.models import Case, CaseEvent, Feedback, FeedbackSite, FollowUp
from tests.factories import offer_create, policy_create, reason_create, staff_user

pytestmark = pytest.mark.django_db(transaction=True)

COMPLAINT = "The agent was rude and hung up on me"
EMAIL = "ana.gomez@example.com"


def log_in(page, username: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("pw")
    page.get_by_role("button", name="Log in").click()


def open_widget(page, live_server) -> None:
    page.goto(live_server.url + "/demo/shop/")
    page.locator("#appease-fb-button").click()
    page.locator("#appease-fb-dialog").wait_for()


def test_a_complaint_from_the_widget_is_worked_and_resolved_by_a_rep(browser, page, live_server):
    # given
    FeedbackSite.objects.create(name="Casa Verde")
    rep = staff_user(username="rep", policy=policy_create(day_cost_amount=Decimal("50.00")))
    offer = offer_create(description="Five off your next order", cost_amount=Decimal("3.00"))
    reason = reason_create("staff-attitude", incident_type="staff_attitude")

    # when: an anonymous customer complains through the widget on the shop's page
    open_widget(page, live_server)
    page.get_by_label("1 star: very bad").check()
    page.locator("#appease-fb-incident").select_option("staff_attitude")
    page.locator("#appease-fb-text").fill(COMPLAINT)
    page.locator("#appease-fb-email").fill(EMAIL)
    with page.expect_response("**/api/v1/feedback") as answer:
        page.locator("#appease-fb-send").click()

    # then: thanked, and a feedback row and an open case exist for that customer
    assert answer.value.status == 201, answer.value.text()
    status = page.locator("#appease-fb-status.appease-fb-ok")
    status.wait_for()
    assert status.inner_text() == "Thank you — we're on it."
    customer = Customer.objects.get(email=EMAIL)
    feedback = Feedback.objects.get(customer=customer)
    assert feedback.rating == 1
    assert feedback.text == COMPLAINT
    assert feedback.incident_type == "staff_attitude"
    assert feedback.source == Case.Source.WIDGET
    assert feedback.disposition in (Feedback.Disposition.QUEUED, Feedback.Disposition.CRITICAL)
    case = Case.objects.get(customer=customer)
    assert feedback.case == case
    assert case.status == Case.Status.OPEN
    assert case.incident_type == "staff_attitude"
    assert not case.incident_inferred
    assert case.subject == COMPLAINT

    # when: the rep, in a browser of their own, takes the next case from the queue
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="en-US", base_url=live_server.url)
    try:
        csr = context.new_page()
        csr.set_default_timeout(15_000)
        log_in(csr, "rep")
        csr.goto("/csr/cases/")
        queue = csr.locator("[data-testid=case-queue]")
        assert COMPLAINT in queue.inner_text()
        csr.locator("#next-case").click()

        # then: they land on that case, now theirs
        csr.wait_for_url(f"**/csr/cases/{case.pk}/")
        assert csr.locator("[data-testid=case-status]").inner_text() == "Being worked"
        assert csr.locator("[data-testid=recommendations]").count() == 1

        # when: they give the offer from the case page, then resolve it
        csr.locator("#case-issue select[name=offer]").select_option(str(offer.pk))
        csr.locator("#case-issue select[name=reason_code]").select_option(str(reason.pk))
        csr.locator("#case-issue-button").click()
        csr.locator("[data-testid=timeline]", has_text="Appeasement given").wait_for()
        csr.locator("#resolve-note").fill("Apologised for the agent and gave five off the next order.")
        csr.locator("#resolve-button").click()
        csr.wait_for_url("**/csr/cases/")
        csr.get_by_text("Case resolved.").wait_for()
    finally:
        context.close()

    # then: resolved, with its timeline, its follow-up, and the issuance linked to it
    case.refresh_from_db()
    assert case.status == Case.Status.RESOLVED
    assert case.assigned_to == rep
    assert case.resolved_by == rep
    assert case.intervention == "refund_credit"  # an amount-off offer
    kinds = list(case.events.values_list("kind", flat=True))
    for kind in (CaseEvent.Kind.OPENED, CaseEvent.Kind.CLAIMED, CaseEvent.Kind.ISSUED, CaseEvent.Kind.RESOLVED):
        assert kind in kinds, kinds
    assert (
        kinds.index(CaseEvent.Kind.OPENED) < kinds.index(CaseEvent.Kind.CLAIMED) < kinds.index(CaseEvent.Kind.RESOLVED)
    )
    follow_up = FollowUp.objects.get(case=case)
    assert follow_up.status == FollowUp.Status.SCHEDULED
    assert follow_up.customer == customer
    issuance = Issuance.objects.get(customer=customer)
    assert issuance.case == case
    assert issuance.offer == offer
    assert issuance.csr == rep
    assert issuance.status == Issuance.Status.ISSUED


def test_the_widget_shows_the_apis_error_next_to_the_email_and_nothing_is_saved(page, live_server):
    # given
    FeedbackSite.objects.create(name="Casa Verde")
    posts = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
    open_widget(page, live_server)
    page.get_by_label("2 stars: bad").check()
    page.locator("#appease-fb-text").fill(COMPLAINT)

    # when: an address that is plainly not one
    page.locator("#appease-fb-email").fill("not-an-email")
    page.locator("#appease-fb-send").click()

    # then: the widget itself refuses it; nothing is posted
    error = page.locator("#appease-fb-email-error")
    assert error.inner_text() == "Enter a valid email address."
    assert posts == []

    # when: an address the widget lets through but the server refuses (one-letter TLD)
    page.locator("#appease-fb-email").fill("ana@example.c")
    with page.expect_response("**/api/v1/feedback") as answer:
        page.locator("#appease-fb-send").click()

    # then: the API's own message sits next to the field, and nothing is saved
    assert answer.value.status == 400
    body = answer.value.json()
    assert list(body["fields"]) == ["email"]
    page.locator("#appease-fb-email[aria-invalid=true]").wait_for()
    assert error.inner_text() == body["fields"]["email"][0]
    assert "Please check the marked fields." in page.locator("#appease-fb-status").inner_text()
    assert page.locator("#appease-fb-form").is_visible()
    assert not Feedback.objects.exists()
    assert not Case.objects.exists()
    assert not Customer.objects.exists()
