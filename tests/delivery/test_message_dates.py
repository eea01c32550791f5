"""Dates in what the customer reads are on the shop's clock, in the customer's language."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from appease.core.context import Actor
from appease.delivery.messages import message_compose
from appease.delivery.models import Delivery
from appease.issuance.services.issuance import issuance_create
from coupons.models import Code
from tests.factories import customer_create, offer_create, policy_create, reason_create, staff_user

pytestmark = pytest.mark.django_db


def _issued_to(language: str, *, expires_at: datetime, channel: str = "email"):
    customer = customer_create(name="Lucía Pérez", language=language, phone="+34612345678")
    issuance = issuance_create(
        actor=Actor(user=staff_user(policy=policy_create())),
        customer=customer,
        offer=offer_create(value_amount=Decimal("5.00")),
        reason_code=reason_create(),
        channel=channel,
    )
    Code.objects.filter(pk=issuance.code_id).update(expires_at=expires_at)
    return Delivery.objects.get(issuance=issuance)  # fresh: the code as stored now


def test_the_valid_until_date_is_the_shops_day_in_spanish(settings):
    # given a shop in Auckland, the server on UTC, a code expiring 31 Dec 23:30 UTC
    settings.TIME_ZONE, settings.SHOP_TIME_ZONE = "UTC", "Pacific/Auckland"
    delivery = _issued_to("es", expires_at=datetime(2026, 12, 31, 23, 30, tzinfo=UTC))

    # when the Spanish customer's email is composed
    message = message_compose(delivery=delivery)

    # then the code is valid until 1 January on the shop's clock, in Spanish
    assert "Válido hasta: 1 de enero de 2027" in message.text


def test_the_valid_until_date_is_the_shops_day_in_portuguese_by_sms(settings):
    # given a shop in São Paulo and a code expiring 1 Jan 01:00 UTC (31 Dec there)
    settings.TIME_ZONE, settings.SHOP_TIME_ZONE = "UTC", "America/Sao_Paulo"
    delivery = _issued_to("pt-br", expires_at=datetime(2027, 1, 1, 1, 0, tzinfo=UTC), channel="sms")

    # when the Brazilian customer's SMS is composed
    message = message_compose(delivery=delivery)

    # then it says 31 December 2026, in Portuguese (Django capitalises the month)
    assert "31 de dezembro de 2026" in message.text.lower()
