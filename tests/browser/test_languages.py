"""The CSR pages in Spanish and Brazilian Portuguese, in a real browser: the rep's
saved language wins over the browser's, and money is written the local way. (The
customer's message in the customer's language: tests/delivery.)"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import translation

from appease.core.money import format_money
from appease.issuance.models import StaffProfile
from tests.factories import customer_create, offer_create, policy_create, reason_create, staff_user

pytestmark = pytest.mark.django_db(transaction=True)


def in_language(language: str, text: str) -> str:
    with translation.override(language):
        return translation.gettext(text)


def log_in(page, username: str) -> None:
    page.goto("/accounts/login/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill("pw")
    page.locator("form [type=submit]").click()


@pytest.mark.parametrize(
    ("language", "currency", "customer_language"),
    [("es", "EUR", "es"), ("pt-br", "BRL", "pt-br")],
)
def test_a_rep_works_in_their_language(page, language, currency, customer_language):
    rep = staff_user(username="rep", policy=policy_create(currency=currency, day_cost_amount=Decimal("5000")))
    StaffProfile.objects.filter(user=rep).update(language=language)
    # the customer pays in the offer's currency (only offers in it are listed)
    customer_create(name="Cliente Uno", email="uno@example.com", language=customer_language, currency=currency)
    offer = offer_create(
        name="Cupón",
        description="Un descuento",
        value_amount=Decimal("1234.50"),
        cost_amount=Decimal("1500.25"),
        currency=currency,
    )
    reason_create("retraso")
    give_now = in_language(language, "Give it now")
    assert give_now != "Give it now", "the catalog must translate the main button"

    # the browser asks for English; the rep's profile says otherwise
    log_in(page, "rep")
    assert page.locator("html").get_attribute("lang") == language
    page.locator("input[name=q]").fill("Cliente")
    page.get_by_role("link", name="Cliente Uno").click()

    # labels in the rep's language, money the local way
    assert page.get_by_role("button", name=give_now).is_visible()
    cost = format_money(Decimal("1500.25"), currency, language)
    assert cost in page.locator("fieldset.offers").text_content()
    assert cost != "1500.25" and ("," in cost)  # 1.500,25 € / R$ 1.500,25

    # nothing is preselected: the rep picks the offer
    page.locator(f"#offer-{offer.pk}").check()
    page.locator("select[name=reason_code]").select_option(index=1)
    page.get_by_role("button", name=give_now).click()
    page.locator("[data-testid=issuance-result]").wait_for()
    result = page.locator("[data-testid=issuance-result]").inner_text()
    assert in_language(language, "Issued") in result or in_language(language, "Delivered") in result


def test_the_browser_language_is_the_default_until_the_rep_chooses(browser, live_server):
    staff_user(username="rep", policy=policy_create(day_cost_amount=Decimal("100")))
    context = browser.new_context(
        locale="es-ES", base_url=live_server.url, extra_http_headers={"Accept-Language": "es"}
    )
    page = context.new_page()
    try:
        log_in(page, "rep")
        assert page.locator("html").get_attribute("lang") == "es"
        customers = in_language("es", "Customers")
        assert page.get_by_role("link", name=customers).first.is_visible()

        # the rep switches to Portuguese: it sticks, on their profile
        with page.expect_navigation():
            page.locator("#language").select_option("pt-br")
        assert page.locator("html").get_attribute("lang") == "pt-br"
        assert StaffProfile.objects.get(user__username="rep").language == "pt-br"
    finally:
        context.close()
