"""The feedback widget speaks the page's language, else the browser's, on any shop's
page (no data-language on the snippet), and asks the API for its errors in it."""

from __future__ import annotations

import pytest
from django.templatetags.static import static

from feedback.models import FeedbackSite

pytestmark = pytest.mark.django_db(transaction=True)

# A merchant page the test serves itself (Chromium refuses a script from the loopback
# server to a page of another origin it takes for public: Private Network Access).
SHOP_PATH = "/a-merchant-page/"


def _shop_page(browser, live_server, *, html_lang: str | None, locale: str, languages: list[str]):
    """A merchant's page, not ours, with the widget's plain snippet, in a browser
    whose language preferences are `languages` (Playwright sets only one: the rest of
    the list is given to navigator.languages before any script runs)."""
    site = FeedbackSite.objects.create(name="Casa Verde")
    context = browser.new_context(locale=locale)
    page = context.new_page()
    page.add_init_script(f"Object.defineProperty(Navigator.prototype, 'languages', {{get: () => {languages!r}}});")
    lang = f' lang="{html_lang}"' if html_lang else ""
    snippet = (
        f'<script src="{live_server.url}{static("feedback-widget.js")}" data-site-key="{site.public_key}"'
        f' data-endpoint="{live_server.url}/api/v1/feedback" defer></script>'
    )
    body = f"<!doctype html><html{lang}><body><h1>Shop</h1>{snippet}</body></html>"
    page.route(live_server.url + SHOP_PATH, lambda route: route.fulfill(content_type="text/html", body=body))
    page.goto(live_server.url + SHOP_PATH)
    page.locator("#appease-fb-button").wait_for()
    return context, page


def test_the_widget_follows_the_pages_lang(browser, live_server):
    # given a Portuguese shop page, seen in an English browser
    context, page = _shop_page(browser, live_server, html_lang="pt-BR", locale="en-US", languages=["en-US"])
    try:
        # when the widget opens
        page.locator("#appease-fb-button").click()
        page.locator("#appease-fb-dialog").wait_for()

        # then its labels are Portuguese
        assert page.locator(".appease-fb-root").get_attribute("lang") == "pt-BR"
        assert "Enviar" in page.locator("#appease-fb-send").inner_text()

        # and the API's error for a field comes back in Portuguese too, not the browser's English
        page.locator("#appease-fb-rating-2").check(force=True)
        page.locator("#appease-fb-text").fill("O pedido chegou quebrado")
        page.locator("#appease-fb-email").fill("ana@example.c")  # the server refuses a one-letter TLD
        with page.expect_response("**/api/v1/feedback") as answer:
            page.locator("#appease-fb-send").click()
        assert answer.value.status == 400
        page.locator("#appease-fb-email[aria-invalid=true]").wait_for()
        assert page.locator("#appease-fb-email-error").inner_text() == "Informe um endereço de e-mail válido."
    finally:
        context.close()


def test_without_a_page_lang_the_widget_takes_the_browsers_first_language_it_speaks(browser, live_server):
    # given a page with no lang, and a browser preferring French, then Spanish
    context, page = _shop_page(browser, live_server, html_lang=None, locale="fr-FR", languages=["fr-FR", "es"])
    try:
        # when the widget opens
        page.locator("#appease-fb-button").click()
        page.locator("#appease-fb-dialog").wait_for()

        # then it speaks Spanish, the first of the browser's languages it knows
        assert page.locator(".appease-fb-root").get_attribute("lang") == "es"
    finally:
        context.close()
