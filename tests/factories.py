"""Test data, made through the real services where practical."""

from __future__ import annotations

import itertools
from decimal import Decimal

from coupons.models import Merchant, MerchantAPIKey, Offer
from coupons.services.inventory import IssuedCode, code_issue

_seq = itertools.count(1)


def offer_create(**fields) -> Offer:
    n = next(_seq)
    defaults = {
        "name": f"Offer {n}",
        "kind": Offer.Kind.AMOUNT_OFF,
        "description": "5 off your next order",
        "value_amount": Decimal("5.00"),
        "currency": "USD",
        "cost_amount": Decimal("3.00"),
        "validity_days": 30,
        "generate_on_demand": True,
    }
    defaults.update(fields)
    offer = Offer(**defaults)
    offer.full_clean()
    offer.save()
    return offer


def gift_card_offer_create(**fields) -> Offer:
    return offer_create(
        **{"kind": Offer.Kind.GIFT_CARD, "value_amount": Decimal("50.00"), "description": "A 50 gift card", **fields}
    )


def issued_code(offer: Offer | None = None, **offer_fields) -> IssuedCode:
    return code_issue(offer=offer or offer_create(**offer_fields))


def merchant_with_key(name: str | None = None) -> tuple[Merchant, str]:
    merchant = Merchant.objects.create(name=name or f"Shop {next(_seq)}")
    _api_key, key = MerchantAPIKey.objects.create_key(name="checkout", merchant=merchant)
    return merchant, key
