"""Budgets, limits and amounts in the CSR pages and the admin are written the way the
reader's language writes money, with the currency's symbol; failure reasons are words."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from appease.core.context import Actor
from appease.delivery.models import Delivery
from appease.issuance.models import StaffProfile
from appease.issuance.services.issuance import issuance_create
from tests.factories import customer_create, offer_create, policy_create, reason_create, staff_user

pytestmark = pytest.mark.django_db

NBSP = "\xa0"


def _speaking(user, language: str):
    StaffProfile.objects.filter(user=user).update(language=language)
    return user


def test_the_csr_budget_is_money_of_the_reps_language_and_currency(client):
    # given a Spanish rep with a daily budget of 1234.50 EUR
    rep = _speaking(staff_user(policy=policy_create(currency="EUR", day_cost_amount=Decimal("1234.50"))), "es")
    client.force_login(rep)

    # when the budget panel is shown
    page = client.get("/csr/budget/").content.decode()

    # then it reads as Spanish money in euros, not "1234.5000"
    assert f'data-testid="left-day">1.234,50{NBSP}€<' in page
    assert f'data-testid="spent-day">0,00{NBSP}€<' in page
    assert "1234.5" not in page


def test_the_csr_budget_in_portuguese_reais(client):
    # given a Brazilian rep with a daily budget of 12345.67 BRL
    rep = _speaking(staff_user(policy=policy_create(currency="BRL", day_cost_amount=Decimal("12345.67"))), "pt-br")
    client.force_login(rep)

    # when the budget panel is shown
    page = client.get("/csr/budget/").content.decode()

    # then it is R$ 12.345,67
    assert f'data-testid="left-day">R${NBSP}12.345,67<' in page


def _brl_issuance():
    offer = offer_create(currency="BRL", value_amount=Decimal("25.00"), cost_amount=Decimal("1234.50"))
    rep = staff_user(policy=policy_create(currency="BRL", day_cost_amount=Decimal("5000")))
    customer = customer_create(currency="BRL")  # an offer in reais goes to a customer who pays in them
    return issuance_create(actor=Actor(user=rep), customer=customer, offer=offer, reason_code=reason_create())


def test_the_admin_lists_and_shows_amounts_in_the_supervisors_notation(client):
    # given a Portuguese-speaking supervisor and an issuance in reais
    issuance = _brl_issuance()
    client.force_login(_speaking(staff_user("Supervisor"), "pt-br"))

    # when the issuance list and the issuance page are shown
    listing = client.get("/admin/appease/issuance/").content.decode()
    detail = client.get(f"/admin/appease/issuance/{issuance.pk}/change/").content.decode()

    # then the cost is R$ 1.234,50 on both, never the raw decimal
    for page in (listing, detail):
        assert f"R${NBSP}1.234,50" in page
        assert "1234.5000" not in page and "1234,5000" not in page


def test_the_limit_policy_list_shows_each_budget_as_money(client):
    # given a policy with a daily budget in euros and a Spanish supervisor
    policy_create(currency="EUR", day_cost_amount=Decimal("12345.60"))
    client.force_login(_speaking(staff_user("Supervisor"), "es"))

    # when the limit policies are listed
    page = client.get("/admin/appease/limitpolicy/").content.decode()

    # then the budget reads as Spanish euros
    assert f"12.345,60{NBSP}€" in page


def test_a_failed_delivery_says_why_in_the_reps_language(client):
    # given an issuance whose message failed because the customer opted out
    issuance = _brl_issuance()
    Delivery.objects.filter(issuance=issuance).update(
        status=Delivery.Status.FAILED, failure_reason="opted_out", failed_at=timezone.now()
    )
    rep = _speaking(issuance.csr, "es")
    client.force_login(rep)

    # when the rep looks at the issuance
    page = client.get(f"/csr/issuances/{issuance.pk}/").content.decode()

    # then the reason is words in Spanish, not the machine code
    assert 'data-testid="failure-reason">El cliente se dio de baja o nos bloqueó<' in page
    assert "opted_out" not in page


def test_the_delivery_admin_shows_failure_reasons_as_words(client):
    # given a dead delivery and a Portuguese-speaking supervisor
    issuance = _brl_issuance()
    Delivery.objects.filter(issuance=issuance).update(status=Delivery.Status.DEAD, failure_reason="exhausted")
    client.force_login(_speaking(staff_user("Supervisor"), "pt-br"))

    # when the deliveries are listed
    page = client.get("/admin/delivery/delivery/").content.decode()

    # then the reason is the Portuguese words
    assert "Desistimos depois de todas as tentativas" in page
    assert "exhausted" not in page
