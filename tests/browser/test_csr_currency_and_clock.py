"""In a real browser: a customer who pays in reais sees only offers in reais (and soft
ones), none chosen for the rep; the 60-second clock starts at the complaint (the rep's
Start, their first keystroke, or a telephony link), not when the page loads."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from appease.issuance.models import Issuance, LimitBudget
from tests.browser.test_csr_flow import log_in
from tests.factories import customer_create, offer_create, policy_create, reason_create, staff_user

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def brl_world():
    policy = policy_create(currency="USD", day_cost_amount=Decimal("100"))
    LimitBudget.objects.create(policy=policy, currency="BRL", day_cost_amount=Decimal("500"))
    staff_user(username="rep", policy=policy)
    customer = customer_create(name="João Pereira", email="joao@example.com", currency="BRL", language="pt-br")
    offer_create(name="$5 off", description="Five dollars off", currency="USD")
    offer_create(name="R$ 30 off", description="Trinta reais de desconto", currency="BRL", value_amount=Decimal("30"))
    offer_create(name="Apology", description="Our sincere apology", kind="apology", value_amount=Decimal("0"))
    reason_create("late-parcel")
    return customer


def test_a_brl_customer_sees_only_offers_in_reais_none_preselected_and_the_first_key_starts_the_clock(page, brl_world):
    # given the rep on the customer's page
    log_in(page, "rep")
    page.goto(f"/csr/customers/{brl_world.pk}/")

    # then: the reais offer and the apology, not the dollar one; nothing chosen
    offers = page.locator("input[name=offer]")
    labels = page.locator("label.offer").all_inner_texts()
    assert any("Trinta reais de desconto" in label for label in labels)
    assert any("Our sincere apology" in label for label in labels)
    assert not any("Five dollars off" in label for label in labels)
    assert offers.count() == 2
    assert page.locator("input[name=offer]:checked").count() == 0
    assert page.get_by_label("Currency").input_value() == "BRL"

    # and the clock waits for the complaint: Start shown, nothing stamped
    start = page.get_by_role("button", name="Start")
    assert start.is_visible()
    assert page.locator("#id_complaint_started_at").input_value() == ""
    assert page.locator("#timer").inner_text() == "0"

    # when the rep types their first key (in the note)
    page.get_by_label("Note").press_sequentially("p")

    # then the clock runs from that moment, Start is gone, the start is in the form
    assert page.locator("#id_complaint_start_source").input_value() == "rep"
    assert page.locator("#id_complaint_started_at").input_value() != ""
    assert not start.is_visible()
    expect(page.locator("#timer")).not_to_have_text("0", timeout=30_000)  # polls; the page's CSP forbids eval

    # when the reais offer is given
    page.get_by_label("Trinta reais de desconto").check()
    page.get_by_label("Reason").select_option(index=1)
    page.get_by_role("button", name="Give it now").click()
    page.locator("[data-testid=issuance-result][data-status=issued]").wait_for()

    # then the issuance kept the rep's start, before it was given
    issuance = Issuance.objects.get()
    assert (issuance.currency, issuance.complaint_start_source) == ("BRL", "rep")
    assert issuance.complaint_started_at <= issuance.issued_at


def test_the_start_button_starts_the_clock(page, brl_world):
    log_in(page, "rep")
    page.goto(f"/csr/customers/{brl_world.pk}/")

    page.get_by_role("button", name="Start").click()

    assert page.locator("#id_complaint_start_source").input_value() == "rep"
    expect(page.locator("#timer")).not_to_have_text("0", timeout=30_000)  # polls; the page's CSP forbids eval


def test_a_telephony_link_starts_the_clock_at_the_call(page, brl_world):
    # given a link from the telephony system: the call began 45 seconds ago
    began = (timezone.now() - timedelta(seconds=45)).isoformat()
    log_in(page, "rep")

    page.goto(f"/csr/customers/{brl_world.pk}/?started_at={began.replace('+', '%2B')}")

    # then the clock already counts from the call, with no Start to press
    assert page.locator("#id_complaint_start_source").input_value() == "link"
    assert not page.get_by_role("button", name="Start").is_visible()
    assert int(page.locator("#timer").inner_text()) >= 45
