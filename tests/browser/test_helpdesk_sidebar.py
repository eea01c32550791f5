"""The helpdesk sidebar in a real Chromium, framed by a page of another site: the
framing page is served from 127.0.0.1 while the app's live server is on localhost (two
sites), as a helpdesk's ticket page frames its apps. No cookie of ours is needed."""

from __future__ import annotations

import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from appease.core.models import AuditEvent
from appease.delivery.models import Delivery
from appease.delivery.services import delivery_send
from appease.issuance.models import Issuance
from tests.factories import (
    customer_create,
    helpdesk_integration_create,
    launch_token,
    offer_create,
    policy_create,
    reason_create,
    staff_user,
)

pytestmark = pytest.mark.django_db(transaction=True)


class HelpdeskPage(ThreadingHTTPServer):
    """A pretend helpdesk ticket page on 127.0.0.1 that frames `frame_url` 400 px wide."""

    frame_url = ""

    def __init__(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = (
                    "<!doctype html><title>Ticket 4711</title><h1>Ticket 4711</h1>"
                    f'<iframe id="app" title="Appease" src="{server.frame_url}" width="400" height="760"></iframe>'
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def helpdesk():
    server = HelpdeskPage()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def tab(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def open_ticket(tab, helpdesk, live_server, token: str):
    assert "localhost" in live_server.url  # another site than the helpdesk's 127.0.0.1
    helpdesk.frame_url = f"{live_server.url}/csr/sidebar/launch?token={token}"
    tab.goto(helpdesk.origin + "/")
    return tab.frame_locator("#app")


def test_the_agent_gives_from_the_sidebar_framed_by_the_helpdesk_and_watches_it_go(tab, helpdesk, live_server):
    # given: an integration that lets this helpdesk frame the sidebar, a rep, a customer
    integration = helpdesk_integration_create(name="Acme Zendesk", origins=helpdesk.origin)
    rep = staff_user(username="ana", policy=policy_create(day_cost_amount=Decimal("10.00")))
    customer = customer_create(name="Lucía Pérez", email="lucia@example.com")
    offer_create(description="Five off your next order", cost_amount=Decimal("3.00"))
    reason_create()
    token = launch_token(integration, sub="ana", customer={"email": "lucia@example.com"})

    # when: the ticket opens with the sidebar, and the agent gives in one click
    frame = open_ticket(tab, helpdesk, live_server, token)
    frame.get_by_role("heading", name="Lucía Pérez").wait_for()
    frame.get_by_label("Five off your next order").check()
    frame.get_by_label("Reason").select_option(index=1)
    frame.get_by_role("button", name="Give it now").click()

    # then: given at once, as the CSR page shows it, the delivery queued; the budget moved
    result = frame.locator("[data-testid=issuance-result]")
    result.wait_for()
    assert result.get_attribute("data-status") == "issued"
    issuance = Issuance.objects.get()
    assert issuance.csr == rep and issuance.customer == customer
    assert f"••••-{issuance.code.last4}" in result.inner_text()
    assert frame.locator("[data-testid=delivery]").get_attribute("data-delivery-status") == "pending"
    frame.locator("[data-testid=left-day]", has_text="7.00").wait_for()
    event = AuditEvent.objects.get(action="issuance.create", object_id=str(issuance.pk))
    assert event.actor_label == "user:ana via helpdesk:Acme Zendesk"
    # nothing of ours rode on a cookie: the frame is a third party's
    assert not [c for c in tab.context.cookies() if c["name"] == "sessionid"]

    # when: the outbox sends it (the worker's job)
    delivery_send(delivery_id=Delivery.objects.get(issuance=issuance).pk)

    # then: the sidebar's polling (with its token) shows it sent
    frame.locator("[data-testid=delivery][data-delivery-status=sent]").wait_for()


def test_a_helpdesk_not_on_the_allowlist_cannot_frame_the_sidebar(tab, helpdesk, live_server):
    # given: an integration that allows another origin only
    integration = helpdesk_integration_create(name="Acme Zendesk", origins="https://acme.zendesk.com")
    staff_user(username="ana", policy=policy_create())
    customer_create(name="Lucía Pérez", email="lucia@example.com")

    # when: the helpdesk page frames it
    with (
        tab.expect_console_message(lambda message: "frame-ancestors" in message.text) as refusal,
        tab.expect_response(lambda response: "/csr/sidebar/launch" in response.url) as answer,
    ):
        frame = open_ticket(tab, helpdesk, live_server, launch_token(integration, sub="ana"))

    # then: the app answered (the token was good), but Chromium refused to show it there
    assert answer.value.status == 200
    assert "frame-ancestors https://acme.zendesk.com" in answer.value.headers["content-security-policy"]
    assert "blocked" in refusal.value.text
    assert frame.locator("[data-testid=sidebar]").count() == 0


def test_a_replayed_or_expired_launch_shows_a_translated_page_in_the_frame(browser, helpdesk, live_server):
    # given: the same token twice (a reload of the frame); a Spanish-speaking agent's browser
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="es-ES")
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    integration = helpdesk_integration_create(name="Acme Zendesk", origins=helpdesk.origin)
    staff_user(username="ana", policy=policy_create())
    customer_create(name="Lucía Pérez", email="lucia@example.com")
    token = launch_token(integration, sub="ana")
    open_ticket(tab, helpdesk, live_server, token).get_by_role("heading", name="Lucía Pérez").wait_for()

    # when: opened again with the same token
    frame = open_ticket(tab, helpdesk, live_server, token)

    # then: the frame says so, in Spanish, and what to do
    error = frame.locator("[data-testid=sidebar-error]")
    error.wait_for()
    assert error.get_attribute("data-code") == "replayed"
    assert "Vuelve a abrir el ticket" in error.inner_text()

    # when: a token signed six minutes ago
    import time

    now = int(time.time())
    frame = open_ticket(tab, helpdesk, live_server, launch_token(integration, sub="ana", iat=now - 360, exp=now - 60))

    # then
    frame.locator("[data-testid=sidebar-error][data-code=expired]").wait_for()
    assert "ha caducado" in frame.locator("[data-testid=sidebar-error]").inner_text()
    context.close()
