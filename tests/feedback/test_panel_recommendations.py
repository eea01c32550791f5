"""The customer panel's recommendations: a fragment the panel loads when the rep picks
the reason (the reason's incident type decides), with the evidence line and one click to
choose the top offer; never an offer the customer cannot use."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import User

from appease.issuance.models import ReasonCode
from tests.factories import customer_create, offer_create, reason_create

pytestmark = pytest.mark.django_db


def url(customer) -> str:
    return f"/csr/cases/recommendations/{customer.pk}/"


def test_the_reason_picked_gives_the_incident_type_and_the_top_offer_is_one_click(client, csr):
    # given: a gold customer, a gift card and a discount in their currency, one in another
    gift_card = offer_create(kind="gift_card", value_amount=Decimal("15"), cost_amount=Decimal("12"))
    offer_create(kind="amount_off", value_amount=Decimal("10"), cost_amount=Decimal("6"))
    euros = offer_create(kind="gift_card", value_amount=Decimal("15"), cost_amount=Decimal("1"), currency="EUR")
    customer = customer_create(tier="gold")
    late = reason_create("late-parcel", incident_type="late_delivery")
    client.force_login(csr)

    response = client.get(url(customer), {"reason_code": late.pk})

    # then: late delivery's ranking for a gold customer: the gift card first, with its line
    assert response.status_code == 200
    ranked = response.context["recommendations"]
    assert ranked[0].offer == gift_card and len(ranked) <= 3
    page = response.content.decode()
    assert f'data-choose-offer="{gift_card.pk}"' in page
    assert f"{gift_card.name}: no answers yet, cost $12.00" in page
    assert f'data-choose-offer="{euros.pk}"' not in page


def test_a_missing_or_retired_reason_is_a_400_in_the_readers_language(client, csr):
    customer = customer_create()
    retired = reason_create()
    ReasonCode.objects.filter(pk=retired.pk).update(is_active=False)
    client.force_login(csr)

    for query in ({}, {"reason_code": retired.pk}, {"reason_code": "x"}, {"incident_type": "alien"}):
        response = client.get(url(customer), query, HTTP_ACCEPT_LANGUAGE="es")
        assert response.status_code == 400, query
        assert 'data-testid="recommendations-error"' in response.content.decode()
    assert "Elige el motivo." in client.get(url(customer), HTTP_ACCEPT_LANGUAGE="es").content.decode()


def test_the_fragment_is_for_reps_and_supervisors_only(client):
    customer = customer_create()
    assert client.get(url(customer), {"incident_type": "late_delivery"}).status_code == 302
    client.force_login(User.objects.create_user("shopper"))
    assert client.get(url(customer), {"incident_type": "late_delivery"}).status_code == 403


def test_the_customer_panel_has_the_slot_the_reason_fills(client, csr):
    customer = customer_create()
    client.force_login(csr)

    page = client.get(f"/csr/customers/{customer.pk}/").content.decode()

    assert f'data-url="{url(customer)}"' in page
