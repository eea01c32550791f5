"""A rep on the customer panel sees the experiment's assigned arm when they choose the
reason, and gives something else with a reason, in a real browser."""

from decimal import Decimal

import pytest

from appease.issuance.models import Issuance
from feedback.models import AppeasementOutcome, Experiment
from tests.browser.test_csr_flow import log_in
from tests.factories import customer_create, offer_create, policy_create, reason_create, staff_user

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_rep_sees_the_assigned_arm_and_overrides_it_with_a_reason(page):
    # given an experiment on damaged items over two discounts, every appeasement in it
    staff_user(username="rep", policy=policy_create(day_cost_amount=Decimal("100")))
    customer = customer_create(name="Ana Souza")
    five = offer_create(name="5 off", description="Five off your next order")
    ten = offer_create(name="10 off", description="Ten off your next order", value_amount=Decimal("10"))
    reason_create("broken-item", incident_type="damaged_item")
    experiment = Experiment.objects.create(
        name="Damaged", incident_type="damaged_item", share_percent=100, apology_arm=False
    )
    experiment.offers.set([five, ten])

    # when the rep opens the panel and chooses the reason
    log_in(page, "rep")
    page.goto(f"/csr/customers/{customer.pk}/")
    page.get_by_label("Reason").select_option(index=1)
    notice = page.locator("[data-testid=experiment]")
    notice.wait_for()

    # then the assignment is shown, with the offer it names
    assigned_id = int(notice.get_attribute("data-assigned-offer"))
    assigned, other = (five, ten) if assigned_id == five.pk else (ten, five)
    assert f"this customer is assigned “{assigned.description}”" in notice.inner_text()

    # when the rep gives the other offer without a reason: refused beside the field, nothing given
    page.get_by_label(other.description).check()
    page.get_by_role("button", name="Give it now").click()
    page.locator("#override-errors").wait_for()
    assert "say why you give something else" in page.locator("#override-errors").inner_text()
    assert not Issuance.objects.exists()

    # when they say why and give it
    page.get_by_label(other.description).check()
    page.get_by_label("Why something else?").fill("The customer already has a 5 off code")
    page.get_by_role("button", name="Give it now").click()
    page.locator("[data-testid=issuance-result]").wait_for()

    # then it is given, recorded in the experiment as an override with its reason
    outcome = AppeasementOutcome.objects.get()
    assert outcome.experiment_id == experiment.pk
    assert (outcome.assigned_arm, outcome.arm) == (f"offer:{assigned.pk}", f"offer:{other.pk}")
    assert outcome.override_reason == "The customer already has a 5 off code"
