"""A customer's history (orders, spend, last order, lifetime value) is computed from their
orders once the shop sends them, and shown so: read-only in the admin, worded in the
reader's language on the rep's panel."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from appease.core.context import Actor
from appease.issuance.models import CustomerOrder
from appease.issuance.services.customers import (
    OrderRecorded,
    customer_currency_set,
    customer_history_refresh,
    customer_order_record,
)
from tests.factories import customer_create, policy_create, staff_user

pytestmark = pytest.mark.django_db


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def record(customer, reference, total, currency="EUR", placed_at="2025-11-01T10:00:00+00:00"):
    with transaction.atomic():
        return customer_order_record(
            customer=customer,
            reference=reference,
            total_amount=Decimal(total),
            currency=currency,
            placed_at=at(placed_at),
            source=CustomerOrder.Source.EVENT,
        )


def test_the_history_is_computed_from_the_orders_with_money_in_the_customers_currency_only():
    # given: typed figures, and orders in EUR and one in USD
    lucia = customer_create(currency="EUR", orders_count=40, total_spend_amount=Decimal("9000"))
    record(lucia, "A-1", "40.00", placed_at="2025-10-01T10:00:00+00:00")
    record(lucia, "A-2", "10.50", placed_at="2025-11-01T10:00:00+00:00")
    record(lucia, "U-1", "99.00", currency="USD", placed_at="2025-11-20T10:00:00+00:00")
    CustomerOrder.objects.create(customer=lucia, reference="TYPED-1")  # a reference a rep typed: not an order

    lucia.refresh_from_db()

    # then: every order counts for the count and the recency; only EUR for the money
    assert lucia.orders_count == 3
    assert lucia.last_order_at == at("2025-11-20T10:00:00+00:00")
    assert (lucia.total_spend_amount, lucia.lifetime_value_amount) == (Decimal("50.50"), Decimal("50.50"))
    assert lucia.history_computed_at is not None


def test_without_orders_the_typed_history_stays():
    customer = customer_create(orders_count=12, lifetime_value_amount=Decimal("1200"))
    CustomerOrder.objects.create(customer=customer, reference="TYPED-1")

    refreshed = customer_history_refresh(customer_id=customer.pk)

    assert (refreshed.orders_count, refreshed.lifetime_value_amount, refreshed.history_computed_at) == (
        12,
        Decimal("1200"),
        None,
    )


def test_a_new_currency_recomputes_the_spend_in_it():
    lucia = customer_create(currency="EUR")
    record(lucia, "A-1", "40.00")
    record(lucia, "U-1", "99.00", currency="USD")

    customer_currency_set(actor=Actor(), customer_id=lucia.pk, currency="USD")

    lucia.refresh_from_db()
    assert (lucia.orders_count, lucia.total_spend_amount, lucia.lifetime_value_amount) == (
        2,
        Decimal("99.00"),
        Decimal("99.00"),
    )


def test_an_order_is_recorded_once_and_never_changes():
    lucia, kim = customer_create(currency="EUR"), customer_create(currency="EUR")
    assert record(lucia, "A-1", "40.00")[1] == OrderRecorded.CREATED

    assert record(lucia, "A-1", "40.00")[1] == OrderRecorded.UNCHANGED
    with pytest.raises(ValidationError) as other:
        record(kim, "A-1", "40.00")
    with pytest.raises(ValidationError) as total:
        record(lucia, "A-1", "41.00")
    with pytest.raises(ValidationError) as currency:
        record(lucia, "A-1", "40.00", currency="USD")
    with pytest.raises(ValidationError) as moved:
        record(lucia, "A-1", "40.00", placed_at="2025-11-02T10:00:00+00:00")

    assert set(other.value.message_dict) == {"reference"}
    assert set(total.value.message_dict) == {"total"}
    assert set(currency.value.message_dict) == {"currency"}
    assert set(moved.value.message_dict) == {"placed_at"}
    assert CustomerOrder.objects.get().total_amount == Decimal("40.00")


@pytest.mark.django_db(transaction=True)
def test_recording_an_order_needs_the_callers_transaction():
    with pytest.raises(transaction.TransactionManagementError):
        customer_order_record(
            customer=customer_create(),
            reference="A-1",
            total_amount=Decimal("1"),
            currency="USD",
            placed_at=at("2025-11-01T10:00:00+00:00"),
            source=CustomerOrder.Source.EVENT,
        )


def test_the_admin_shows_a_computed_history_read_only_and_a_typed_one_editable(client):
    client.force_login(staff_user("Supervisor"))
    typed = customer_create(orders_count=3)
    computed = customer_create(currency="EUR")
    record(computed, "A-1", "40.00")

    typed_page = client.get(f"/admin/appease/customer/{typed.pk}/change/").content.decode()
    computed_page = client.get(f"/admin/appease/customer/{computed.pk}/change/").content.decode()

    assert 'name="orders_count"' in typed_page and 'name="lifetime_value_amount"' in typed_page
    for field in ("orders_count", "total_spend_amount", "last_order_at", "lifetime_value_amount"):
        assert f'name="{field}"' not in computed_page, field
    # the order's amounts are read-only in the inline: they come from the shop
    assert 'name="orders-0-total_amount"' not in computed_page and 'name="orders-0-reference"' in computed_page


def test_the_reps_panel_shows_the_computed_history_in_the_readers_language_and_numbers(client):
    rep = staff_user(policy=policy_create(currency="EUR"))
    client.force_login(rep)
    lucia = customer_create(currency="EUR")
    for n in range(1234):
        CustomerOrder.objects.create(
            customer=lucia,
            reference=f"A-{n}",
            total_amount=Decimal("1.00"),
            currency="EUR",
            placed_at=at("2025-11-01T10:00:00+00:00"),
        )
    record(lucia, "A-last", "1000.50", placed_at="2025-11-20T10:00:00+00:00")

    page = client.get(f"/csr/customers/{lucia.pk}/", HTTP_ACCEPT_LANGUAGE="es").content.decode()

    history = page.split('data-testid="customer-history">')[1].split("</span>")[0]
    assert "1.235 pedidos" in history
    assert "gastado 2.234,50\xa0€" in history
    assert "último pedido 20/11/2025" in history
    assert "valor de vida del cliente 2.234,50\xa0€" in history
