"""The customer panel's recommendation in a real browser: picking the reason shows what
works for this customer with its evidence line, and one click chooses that offer."""

from decimal import Decimal

import pytest

from tests.browser.test_csr_flow import log_in
from tests.factories import customer_create, offer_create, policy_create, reason_create, staff_user

pytestmark = pytest.mark.django_db(transaction=True)


def test_picking_the_reason_shows_the_recommendation_and_one_click_chooses_its_offer(page):
    # given: a gold customer, a gift card and a discount the rep may give, a late-delivery reason
    staff_user(username="rep", policy=policy_create(day_cost_amount=Decimal("100")))
    customer = customer_create(name="Lucía Pérez", tier="gold")
    gift_card = offer_create(
        name="15 gift card",
        kind="gift_card",
        value_amount=Decimal("15"),
        cost_amount=Decimal("12"),
        description="A 15 gift card",
    )
    offer_create(name="10 off", value_amount=Decimal("10"), cost_amount=Decimal("6"), description="Ten off")
    reason_create("late-parcel", incident_type="late_delivery")
    log_in(page, "rep")
    page.goto(f"/csr/customers/{customer.pk}/")
    assert not page.get_by_label("A 15 gift card").is_checked()

    # when: the rep picks the reason
    page.get_by_label("Reason").select_option(index=1)

    # then: the recommendation shows, the gift card first, with its evidence line
    recommendations = page.locator("[data-testid=panel-recommendations]")
    recommendations.wait_for()
    first = recommendations.locator("li").first
    assert "15 gift card: no answers yet, cost $12.00" in first.locator("[data-testid=evidence]").inner_text()

    # when: one click on it
    first.locator("[data-testid=choose-recommended]").click()

    # then: the offer is chosen in the give form, and "Give it now" has the focus
    assert page.get_by_label("A 15 gift card").is_checked()
    assert page.evaluate("document.activeElement.id") == "issue-button"
    assert page.locator(f"#issue-form input[name=offer][value='{gift_card.pk}']").is_checked()
