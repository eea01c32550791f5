"""The merchant's journey: the code the customer received (read from the message at the
SMTP server) pays at the checkout through the redemption API; a second order cannot use
it again. The merchant's own system hears what happened through signed webhooks."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest

from appease.webhooks.signing import verify
from tests.journeys.conftest import wait_until
from tests.journeys.journeys import MARKS, REPS, SUPERVISOR_LANGUAGE, gift_for
from tests.journeys.pages import CSR, Checkout, Customer, Supervisor

pytestmark = MARKS


@pytest.mark.parametrize("language", [rep.language for rep in REPS])
def test_the_delivered_code_redeems_once_at_the_checkout(people, product, language):
    gift = gift_for(people, product, language)
    checkout = Checkout(product)
    order = f"journey-{language}"

    # when: the customer types the code at checkout (lower case, with spaces: as people do)
    typed = gift.code.lower().replace("-", " ")
    first = checkout.redeem(typed, order_id=order, order_total=gift.offer.order_total, currency=gift.offer.currency)

    # then: it pays the offer's value, in its currency
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["order_id"] == order
    assert body["currency"] == gift.offer.currency
    assert Decimal(body["discount"]) > 0
    assert gift.code.replace("-", "").endswith(body["code_last4"])

    # when: another order tries the same code
    again = checkout.redeem(
        gift.code, order_id=f"{order}-again", order_total=gift.offer.order_total, currency=gift.offer.currency
    )

    # then: refused, already used
    assert again.status_code == 409, again.text
    assert again.json()["error"] == "already_redeemed"


def test_the_merchants_system_hears_the_gift_and_its_redemption_signed(people, product):
    """The supervisor registers the merchant's webhook receiver in the admin and copies the
    secret shown once; a rep gives, the customer pays with the code at the checkout; the
    receiver gets issuance.created, delivery.sent and redemption.created from the real
    worker, each signed with that secret, with the code's last four only."""
    # given: the endpoint, added in the admin by the supervisor (in Spanish)
    boss = Supervisor.log_in(people.new_page(SUPERVISOR_LANGUAGE), "supervisor", SUPERVISOR_LANGUAGE)
    page = boss.page
    page.goto("/admin/webhooks/webhookendpoint/add/")
    page.fill("input[name=url]", f"{product.gateways.url}/hooks")  # the receiver
    for event in ("issuance.created", "delivery.sent", "redemption.created"):
        page.check(f"input[name=events][value='{event}']")
    page.locator("input[name=_save]").click()
    receiver = f"{product.gateways.url}/hooks"
    shown = page.locator(".messagelist .warning").inner_text()
    secret = re.search(r"whsec_[A-Za-z0-9_-]+", shown).group(0)
    template = "The signing secret of %(url)s is %(secret)s. Copy it now: it is not shown again."
    assert shown == boss.t(template) % {"url": receiver, "secret": secret}

    # when: a rep gives to a new customer (the run's others have had gifts already), and
    # the customer pays with the code at the checkout
    rep = REPS[0]
    csr = CSR.log_in(people.new_page(rep.language), rep.username, rep.language)
    email = "winifred.hookham@example.com"
    csr.create_customer(name="Winifred Hookham", email=email, language="en", currency=rep.offer.currency)
    result = csr.give(offer=rep.offer.description, reason=rep.reason).wait_status("delivered")
    _mail, code = Customer(product, email, "en").wait_for_code(result.last4)
    order = "journey-webhooks"
    paid = Checkout(product).redeem(
        code, order_id=order, order_total=rep.offer.order_total, currency=rep.offer.currency
    )
    assert paid.status_code == 201, paid.text

    # then: the three events of this gift reach the receiver, signed, without the code
    def events_of_this_gift():
        received = [(body, signature, json.loads(body)) for body, signature in product.gateways.hook_bodies()]
        by_type = {}
        for body, signature, event in received:
            data = event["data"]
            if event["type"] == "issuance.created" and data["code_last4"] == result.last4:
                by_type["issuance.created"] = (body, signature, event)
            if event["type"] == "redemption.created" and data["order_id"] == order:
                by_type["redemption.created"] = (body, signature, event)
        issued = by_type["issuance.created"][2]["data"]["issuance_id"] if "issuance.created" in by_type else None
        for body, signature, event in received:
            if event["type"] == "delivery.sent" and event["data"]["issuance_id"] == issued:
                by_type["delivery.sent"] = (body, signature, event)
        return by_type if len(by_type) == 3 else None

    events = wait_until(events_of_this_gift, what="the gift's three webhooks", timeout=90, logs=product.logs)
    for body, signature, event in events.values():
        assert verify(body, signature, secret), event["type"]
        assert code.replace("-", "") not in body.decode().replace("-", "")
    assert events["redemption.created"][2]["data"]["discount"]["currency"] == rep.offer.currency
