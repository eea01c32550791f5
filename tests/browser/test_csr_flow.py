"""The CSR and supervisor flows in a real browser."""

from decimal import Decimal

import pytest

from appease.issuance.models import Issuance
from tests.factories import customer_create, offer_create, policy_create, reason_create, staff_user

pytestmark = pytest.mark.django_db(transaction=True)


def log_in(page, username: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("pw")
    page.get_by_role("button", name="Log in").click()


def test_csr_issues_in_one_click_and_supervisor_approves_the_over_limit_one(page):
    # given
    staff_user(username="rep", policy=policy_create(day_cost_amount=Decimal("5.00")))
    staff_user("Supervisor", username="boss", policy=policy_create(day_cost_amount=Decimal("100")))
    customer_create(name="Lucía Pérez", email="lucia@example.com")
    offer_create(description="Five off your next order", cost_amount=Decimal("3.00"))
    big = offer_create(
        description="A big gift card", kind="gift_card", value_amount=Decimal("40"), cost_amount=Decimal("30")
    )
    reason_create("late-parcel")

    # when: the rep finds the customer and gives the first offer with one click
    log_in(page, "rep")
    page.get_by_label("Name, email, phone or order reference").fill("lucía")
    page.get_by_role("link", name="Lucía Pérez").click()
    page.get_by_label("Five off your next order").check()
    page.get_by_label("Reason").select_option(index=1)
    page.get_by_role("button", name="Give it now").click()

    # then: the result shows at once, with the masked code, and the budget moved
    result = page.locator("[data-testid=issuance-result]")
    result.wait_for()
    assert result.get_attribute("data-status") == "issued"
    issuance = Issuance.objects.get()
    assert f"••••-{issuance.code.last4}" in result.inner_text()
    page.locator("[data-testid=left-day]", has_text="2.00").wait_for()
    assert page.locator(".timer").get_attribute("class").split().count("done") == 1

    # when: the big gift card is over the rep's limit (the form started again, blank)
    page.get_by_label("A big gift card").check()
    page.get_by_label("Reason").select_option(index=1)
    page.get_by_role("button", name="Give it now").click()
    page.locator("[data-testid=issuance-result][data-status=pending_approval]").wait_for()
    assert "Daily cost budget" in page.locator("#issue-results").inner_text()
    page.get_by_role("button", name="Log out").click()

    # then: the supervisor approves it in one click
    log_in(page, "boss")
    page.get_by_role("link", name="Approvals").click()
    row = page.locator("[data-testid=approval-row]")
    assert big.name in row.inner_text()
    row.get_by_role("button", name="Approve").click()
    page.locator("[data-testid=decision]", has_text="Issued").wait_for()
    approved = Issuance.objects.get(offer__kind="gift_card")
    assert approved.status == Issuance.Status.ISSUED
    assert approved.decided_by.username == "boss"


def test_the_issue_form_works_with_the_keyboard_alone(page):
    staff_user(username="rep", policy=policy_create())
    customer = customer_create(name="João Silva")
    offer_create(description="Free dessert")
    reason_create()
    log_in(page, "rep")
    page.goto(f"/csr/customers/{customer.pk}/")
    page.get_by_label("Free dessert").focus()
    page.keyboard.press("Space")
    page.get_by_label("Reason").focus()
    page.keyboard.press("ArrowDown")
    page.get_by_role("button", name="Give it now").focus()
    page.keyboard.press("Enter")
    page.locator("[data-testid=issuance-result][data-status=issued]").wait_for()
