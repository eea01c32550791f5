"""The rep's 60 seconds in a real Chromium at 1366×768 (issue 14): every refusal of
giving is shown where the rep looks, announced and focused; a double click gives once;
the keyboard path is short; "Give it now" is above the fold in every language with
every banner; a rep reveals and resends their own appeasement."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import translation

from appease.core.context import Actor
from appease.core.models import AuditEvent
from appease.delivery.models import Delivery
from appease.issuance.models import Issuance, LimitBudget, StaffProfile
from appease.issuance.services.issuance import issuance_create
from tests.factories import customer_create, offer_create, policy_create, reason_create, staff_user

pytestmark = pytest.mark.django_db(transaction=True)


def focus_lands_on(page, testid: str) -> None:
    """Polls (the focus moves once htmx has settled the new content)."""
    page.locator(f"[data-testid={testid}]:focus").wait_for()


def log_in(page, username: str) -> None:
    page.goto("/accounts/login/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill("pw")
    page.locator("form [type=submit]").click()
    page.wait_for_url("**/csr/")


def refused(page, text: str):
    """The refusal now on screen: it says `text`, is an alert, and has the focus."""
    box = page.locator("#issue-form [data-testid=refused]")
    box.filter(has_text=text).wait_for()
    assert box.get_attribute("role") == "alert"
    focus_lands_on(page, "refused")
    return box


def test_every_refusal_of_giving_is_shown_announced_and_focused_and_a_double_click_gives_once(page):
    # given: a rep whose policy refuses what is over their limit
    staff_user(username="rep", policy=policy_create(over_limit="refuse", day_cost_amount=Decimal("10.00")))
    customer = customer_create(name="Ana Lima", phone="+34612345678", consent_sms=False, currency="USD")
    fine = offer_create(description="Five off", cost_amount=Decimal("3.00"))
    offer_create(description="A big gift card", cost_amount=Decimal("30.00"), value_amount=Decimal("40"))
    offer_create(description="Out of codes", generate_on_demand=False)
    retired = offer_create(description="Soon retired")
    reason_create()
    log_in(page, "rep")
    page.goto(f"/csr/customers/{customer.pk}/")
    give = page.get_by_role("button", name="Give it now")
    # nothing is preselected (nothing is recommended here): the rep picks the offer
    assert page.locator("#offer-choices input[name=offer]:checked").count() == 0
    page.get_by_label("Five off").check()

    # no reason chosen
    give.click()
    assert "Reason" in refused(page, "Choose the reason.").inner_text()
    assert page.locator("#id_reason_code").get_attribute("aria-invalid") == "true"
    # a channel the customer did not agree to
    page.get_by_label("Reason").select_option(index=1)
    page.get_by_label("Send by").select_option("sms")
    give.click()
    refused(page, "has not agreed to be contacted by sms")
    # a channel with no contact
    page.get_by_label("Send by").select_option("chat")
    give.click()
    refused(page, "We have no chat contact")
    # over the limit, under a refuse policy (403)
    page.get_by_label("Send by").select_option("email")
    page.get_by_label("A big gift card").check()
    give.click()
    assert "Daily cost budget" in refused(page, "over your limits").inner_text()
    # an empty inventory
    page.get_by_label("Out of codes").check()
    give.click()
    refused(page, "No codes are left")
    # an offer retired after the page was drawn
    retired.is_active = False
    retired.save()
    page.get_by_label("Soon retired").check()
    give.click()
    refused(page, "This offer can no longer be given")
    # a server error, then a lost connection: said, never silence
    page.get_by_label("Five off").check()
    page.route("**/issue/", lambda route: route.fulfill(status=500, body="<!doctype html><h1>Server Error</h1>"))
    give.click()
    page.locator("#issue-form [data-testid=failure]", has_text="Nothing was given").wait_for()
    focus_lands_on(page, "failure")
    page.unroute("**/issue/")
    page.route("**/issue/", lambda route: route.abort("connectionfailed"))
    give.click()
    page.locator("#issue-form [data-testid=failure]", has_text="Nothing was given").wait_for()
    page.unroute("**/issue/")
    assert Issuance.objects.count() == 0

    # when: a double click
    give.dblclick()

    # then: one appeasement, shown once, and the form starts again blank
    result = page.locator("#issue-results [data-testid=issuance-result]")
    result.first.wait_for()
    assert result.count() == 1
    assert Issuance.objects.get().offer == fine
    page.locator("#id_reason_code:focus").wait_for()
    assert page.locator("#id_reason_code").input_value() == ""
    assert page.locator("#issue-form [data-testid=refused]").count() == 0

    # when: the same offer again at once (the blank form preselects nothing)
    assert page.locator("#offer-choices input[name=offer]:checked").count() == 0
    page.get_by_label("Five off").check()
    page.get_by_label("Reason").select_option(index=1)
    give.click()
    # then: the rep is asked, and only a yes gives it
    question = page.locator("[data-testid=repeat]")
    question.wait_for()
    focus_lands_on(page, "repeat")
    assert Issuance.objects.count() == 1
    page.get_by_role("button", name="Yes, give it again").click()
    page.locator("#issue-results [data-testid=issuance-result]").nth(1).wait_for()
    assert Issuance.objects.count() == 2
    assert "Given: Five off" in result.first.inner_text()


def test_the_keyboard_path_search_arrows_digits_and_ctrl_enter(page):
    # given
    staff_user(username="rep", policy=policy_create())
    customer_create(name="João Silva")
    offer_create(description="Free dessert")
    second = offer_create(description="Free delivery")
    reason_create()
    log_in(page, "rep")
    presses = []

    def press(key: str) -> None:
        presses.append(key)
        page.keyboard.press(key)

    # when: the rep types a name, walks down to the result, opens it
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.type("joão")
    page.locator("#results a", has_text="João Silva").wait_for()
    press("ArrowDown")
    assert page.evaluate("document.activeElement.textContent").strip().startswith("João Silva")
    press("Enter")
    # then: the focus is in the form, on the reason
    page.wait_for_url("**/customers/*/")
    page.locator("#id_reason_code:focus").wait_for()
    # when: arrow picks the reason, a digit the offer, Ctrl+Enter gives
    press("ArrowDown")
    press("2")
    assert page.locator(f"#offer-{second.pk}").is_checked()
    press("Control+Enter")
    # then
    page.locator("#issue-results [data-testid=issuance-result][data-status=issued]").wait_for()
    assert Issuance.objects.get().offer == second
    assert "Tab" not in presses and len(presses) <= 5
    # and "?" lists the shortcuts
    page.locator("main").click(position={"x": 5, "y": 5})
    press("?")
    help_box = page.locator("[data-testid=shortcuts]")
    help_box.wait_for()
    assert "Ctrl" in help_box.inner_text() and "Choose that offer" in help_box.inner_text()
    press("Escape")
    help_box.wait_for(state="hidden")


@pytest.mark.parametrize("language", ["en", "es", "pt-br"])
def test_give_it_now_is_above_the_fold_with_every_banner_in_every_language(page, language):
    # given: a rep with budgets in three currencies, a frequent claimant with an open
    # case, a long name and a handful of offers
    policy = policy_create(currency="USD", day_cost_amount=Decimal("100"))
    for currency in ("BRL", "EUR"):
        LimitBudget.objects.create(policy=policy, currency=currency, day_cost_amount=Decimal("1000.00"))
    rep = staff_user(username="rep", policy=policy)
    StaffProfile.objects.filter(user=rep).update(language=language)
    customer = customer_create(
        name="Maria Fernanda de Albuquerque Gonçalves", phone="+5511987654321", currency="BRL", consent_sms=True
    )
    for n in range(6):
        offer_create(description=f"Desconto de R$ {n + 5},00 no próximo pedido", currency="BRL")
    reason = reason_create()
    for _ in range(3):
        issuance_create(
            actor=Actor(user=staff_user(policy=policy_create(currency="BRL"))),
            customer=customer,
            offer=offer_create(currency="BRL"),
            reason_code=reason,
        )
    from tests.feedback.conftest import open_case

    open_case(customer=customer)
    log_in(page, "rep")

    # when
    page.goto(f"/csr/customers/{customer.pk}/")

    # then: the banner shows, and the button is fully inside the 1366×768 viewport
    page.locator("[data-testid=frequent-claimant]").wait_for()
    box = page.locator("#issue-button").bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= 768, box
    assert page.evaluate("window.scrollY") == 0
    # the focus is in the form
    assert page.evaluate("document.activeElement.id") == "id_reason_code"
    # the budget shows the customer's currency first and fits its card
    assert page.locator("#budget table.budget").first.get_attribute("data-testid") == "budget-BRL"
    fits = "(() => { const a = document.getElementById('budget'); return a.scrollWidth <= a.clientWidth; })()"
    assert page.evaluate(fits)
    # and a refusal speaks the rep's language
    page.locator("#issue-button").click()
    with translation.override(language):
        expected = translation.gettext("Choose the reason.")
    refused(page, expected)
    box = page.locator("#issue-button").bounding_box()
    assert box["y"] + box["height"] <= 768, box


def test_a_rep_reveals_and_resends_their_appeasement(page):
    # given: an appeasement the rep gave, already delivered
    rep = staff_user(username="rep", policy=policy_create())
    issuance = issuance_create(
        actor=Actor(user=rep),
        customer=customer_create(name="Ana Lima", email="old@example.com"),
        offer=offer_create(description="Five off"),
        reason_code=reason_create(),
    )
    Delivery.objects.filter(issuance=issuance).update(status=Delivery.Status.SENT)
    from coupons import codes

    plaintext = codes.decrypt(issuance.code.ciphertext)
    log_in(page, "rep")
    page.goto(f"/csr/issuances/{issuance.pk}/")

    # when: the rep reads the code out on the call
    page.get_by_role("button", name="Show the full code").click()
    # then: the full code, focused, and audited
    shown = page.locator("[data-testid=revealed-code]")
    shown.wait_for()
    assert shown.inner_text().strip() == plaintext
    focus_lands_on(page, "revealed-code")
    assert AuditEvent.objects.filter(action="code.reveal", object_id=str(issuance.pk)).count() == 1

    # when: the customer gives a corrected address and the rep sends it again
    page.locator("summary", has_text="Send again").click()
    page.get_by_label("To (leave empty for the customer's own)").fill("not an address")
    page.get_by_role("button", name="Send again").click()
    # then: a refusal beside the field, focused
    page.locator("[data-testid=refused]", has_text="Enter a valid email address.").wait_for()
    focus_lands_on(page, "refused")
    page.get_by_label("To (leave empty for the customer's own)").fill("new@example.com")
    page.get_by_role("button", name="Send again").click()
    page.locator("[data-testid=resent]").wait_for()
    again = Delivery.objects.filter(issuance=issuance, resend_of__isnull=False).get()
    assert again.address == "new@example.com"
    assert AuditEvent.objects.get(action="delivery.resend").after["address"] == "new@example.com"


def test_a_supervisors_refused_decision_is_shown_in_its_row_and_focused(page):
    # given: an appeasement waiting for approval
    rep = staff_user(username="rep", policy=policy_create(day_cost_amount=Decimal("0")))
    pending = issuance_create(
        actor=Actor(user=rep), customer=customer_create(), offer=offer_create(), reason_code=reason_create()
    )
    staff_user("Supervisor", username="boss", policy=policy_create())
    log_in(page, "boss")
    page.goto("/csr/approvals/")
    # when: the supervisor rejects it without saying why
    page.get_by_role("button", name="Reject").click()
    # then: the refusal is in the row, announced and focused; nothing changed
    row = page.locator("[data-testid=approval-row]")
    row.locator("[data-testid=refused]", has_text="Say why the issuance is rejected.").wait_for()
    focus_lands_on(page, "refused")
    assert row.locator("[data-testid=refused]").get_attribute("role") == "alert"
    pending.refresh_from_db()
    assert pending.status == Issuance.Status.PENDING_APPROVAL
    # when: with a reason, it goes through
    page.get_by_label("Comment").fill("Not for a late parcel")
    page.get_by_role("button", name="Reject").click()
    row.locator("[data-testid=decision]").wait_for()
    pending.refresh_from_db()
    assert pending.status == Issuance.Status.REJECTED
