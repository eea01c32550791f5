"""The merchant's journey: the code the customer received (read from the message at the
SMTP server) pays at the checkout through the redemption API; a second order cannot use
it again."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.journeys.journeys import MARKS, REPS, gift_for
from tests.journeys.pages import Checkout

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
