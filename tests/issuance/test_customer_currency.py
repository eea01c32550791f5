"""A customer pays in one currency: only offers in it (or soft ones) are listed, and the
issuance service refuses any other on `offer_id`, whichever path asks (the API, the case
page, an automatic rule). The message states the value in the code's currency."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from appease.core.context import Actor
from appease.delivery.messages import message_compose
from appease.issuance.models import BudgetCounter, Customer, CustomerOrder, Issuance
from appease.issuance.services.issuance import issuance_create
from coupons.models import Offer
from feedback.models import AutoRule, MerchantEvent
from feedback.services.automation import event_process
from feedback.services.cases import case_claim, case_issue
from tests.factories import customer_create, offer_create, policy_create, reason_create, staff_user
from tests.feedback.conftest import open_case

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    policy = policy_create(currency="USD", day_cost_amount=Decimal("100"))
    from appease.issuance.models import LimitBudget

    LimitBudget.objects.create(policy=policy, currency="BRL", day_cost_amount=Decimal("500"))
    return {
        "csr": staff_user(policy=policy),
        "brl_customer": customer_create(currency="BRL", language="pt-br"),
        "usd_offer": offer_create(name="$5 off", value_amount=Decimal("5.00"), currency="USD"),
        "brl_offer": offer_create(name="R$ 30 off", value_amount=Decimal("30.00"), currency="BRL"),
        "apology": offer_create(name="Apology", kind=Offer.Kind.APOLOGY, value_amount=Decimal("0"), currency="USD"),
        "reason": reason_create("late-parcel"),
    }


def _logged_in(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def test_the_service_refuses_an_offer_in_another_currency_on_offer_id_and_spends_nothing(world):
    # when a USD offer is given to a customer who pays in reais
    with pytest.raises(ValidationError) as refused:
        issuance_create(
            actor=Actor(user=world["csr"]),
            customer=world["brl_customer"],
            offer=world["usd_offer"],
            reason_code=world["reason"],
        )

    # then: a field error on offer_id naming both currencies; nothing given, nothing spent
    assert refused.value.message_dict["offer_id"] == ["This offer is in USD; the customer pays in BRL."]
    assert not Issuance.objects.exists()
    assert not BudgetCounter.objects.exists()


def test_the_api_answers_400_on_offer_id_for_another_currency(world):
    response = _logged_in(world["csr"]).post(
        "/api/v1/issuances",
        {"customer_id": world["brl_customer"].pk, "offer_id": world["usd_offer"].pk, "reason_code": "late-parcel"},
        format="json",
        HTTP_ACCEPT_LANGUAGE="es",
    )

    assert response.status_code == 400, response.json()
    assert response.json()["fields"]["offer_id"] == ["Esta oferta está en USD; el cliente paga en BRL."]
    assert not Issuance.objects.exists()


def test_the_case_page_refuses_another_currency_and_the_case_service_too(world, client):
    # given a case of the BRL customer, claimed by the rep
    case = open_case(customer=world["brl_customer"])
    case_claim(actor=Actor(user=world["csr"]), case_id=case.pk)
    client.force_login(world["csr"])

    # when the page posts a USD offer (a stale or forged form)
    response = client.post(
        f"/csr/cases/{case.pk}/issue/",
        {"offer": world["usd_offer"].pk, "reason_code": world["reason"].pk, "channel": "email"},
        follow=True,
    )

    # then nothing is given and the refusal is shown (the form lists BRL offers only)
    assert not Issuance.objects.exists()
    assert "Select a valid choice" in response.content.decode()
    # and the service behind the page refuses on offer_id whoever calls it
    with pytest.raises(ValidationError) as refused:
        case_issue(
            actor=Actor(user=world["csr"]), case_id=case.pk, offer=world["usd_offer"], reason_code=world["reason"]
        )
    assert "offer_id" in refused.value.message_dict
    # while the customer's own currency goes through
    given = case_issue(
        actor=Actor(user=world["csr"]), case_id=case.pk, offer=world["brl_offer"], reason_code=world["reason"]
    )
    assert (given.status, given.currency) == ("issued", "BRL")


def test_an_automatic_rule_skips_a_customer_in_another_currency(world):
    # given a rule giving the USD offer, and an event naming the BRL customer
    rule = AutoRule.objects.create(
        name="Late: $5 off",
        event_type="delivery_delayed",
        condition_field="delay_minutes",
        condition_operator=">=",
        condition_value="60",
        offer=world["usd_offer"],
        reason_code=world["reason"],
        budget_amount=Decimal("100"),
        per_customer_cap=1,
    )
    from coupons.models import Merchant

    event = MerchantEvent.objects.create(
        merchant=Merchant.objects.create(name="Shop"),
        event_id="E-9",
        event_type="delivery_delayed",
        data={"delay_minutes": 90, "customer": {"email": world["brl_customer"].email}},
    )

    # when the event is processed
    result = event_process(event_id=event.pk)

    # then: skipped for its currency, nothing given, the rule's budget untouched
    assert result["issued"] == []
    assert result["skipped"] == [
        {"customer_id": world["brl_customer"].pk, "rule_id": rule.pk, "reason": "currency_mismatch"}
    ]
    rule.refresh_from_db()
    assert (rule.spent_amount, rule.issued_count) == (Decimal("0"), 0)


def test_a_soft_offer_goes_to_a_customer_in_any_currency(world):
    issuance = issuance_create(
        actor=Actor(user=world["csr"]),
        customer=world["brl_customer"],
        offer=world["apology"],
        reason_code=world["reason"],
    )
    assert issuance.status == "issued"


def test_the_panel_lists_only_offers_the_customer_can_use_none_preselected(world, client):
    client.force_login(world["csr"])

    page = client.get(f"/csr/customers/{world['brl_customer'].pk}/").content.decode()

    radios = re.findall(r'<input type="radio"[^>]*\bname="offer"[^>]*>', page)
    values = {int(re.search(r'\bvalue="(\d+)"', radio).group(1)) for radio in radios}
    assert values == {world["brl_offer"].pk, world["apology"].pk}
    assert not any(re.search(r"\bchecked\b", radio) for radio in radios)
    assert 'name="currency"' in page and '<option value="BRL" selected>' in page


def test_the_rep_changes_the_customers_currency_on_the_page_audited(world, client):
    client.force_login(world["csr"])
    customer = customer_create(currency="USD")

    response = client.post(f"/csr/customers/{customer.pk}/currency/", {"currency": "BRL"})

    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.currency == "BRL"
    from appease.core.models import AuditEvent

    event = AuditEvent.objects.get(action="customer.change", object_id=str(customer.pk))
    assert (event.before["currency"], event.after["currency"]) == ("USD", "BRL")
    # a currency no offer uses is not offered, and changes nothing
    client.post(f"/csr/customers/{customer.pk}/currency/", {"currency": "XXX"})
    customer.refresh_from_db()
    assert customer.currency == "BRL"


def test_the_new_customer_form_sets_the_currency_from_the_shop_default(world, client, settings):
    settings.DEFAULT_CURRENCY = "EUR"
    client.force_login(world["csr"])

    form = client.get("/csr/customers/new/").context["form"]
    assert form["currency"].value() == "EUR"

    client.post(
        "/csr/customers/new/",
        {"name": "Rita", "email": "rita@example.com", "preferred_channel": "email", "language": "pt-br",
         "tier": "standard", "currency": "BRL", "consent_email": "on"},
    )  # fmt: skip
    assert Customer.objects.get(email="rita@example.com").currency == "BRL"


def test_the_customers_api_takes_a_currency_and_refuses_an_unknown_one(world):
    client = _logged_in(world["csr"])

    made = client.post(
        "/api/v1/customers", {"name": "Léa", "email": "lea@example.com", "currency": "eur"}, format="json"
    )
    wrong = client.post(
        "/api/v1/customers", {"name": "Max", "email": "max@example.com", "currency": "ABC"}, format="json"
    )

    assert made.status_code == 201, made.json()
    assert made.json()["currency"] == "EUR"
    assert wrong.status_code == 400 and "currency" in wrong.json()["fields"]
    assert not Customer.objects.filter(email="max@example.com").exists()


def test_the_message_states_the_value_in_the_codes_currency(world):
    # given the BRL offer given to the BRL customer (Portuguese)
    issuance = issuance_create(
        actor=Actor(user=world["csr"]),
        customer=world["brl_customer"],
        offer=world["brl_offer"],
        reason_code=world["reason"],
    )

    # when the email is composed, as the outbox does
    message = message_compose(delivery=issuance.deliveries.get())

    # then it states R$ 30,00, as the code's currency says
    assert issuance.code.currency == "BRL"
    assert "R$\xa030,00" in message.text
    assert "US$" not in message.text


def test_the_backfill_puts_every_customer_in_a_usable_currency(settings):
    # given customers from before: one lowercase, one with no currency, one on the default
    # whose latest order was paid in euros, one on the default with no orders
    from importlib import import_module

    settings.DEFAULT_CURRENCY = "USD"
    lower = customer_create(currency="BRL")
    empty = customer_create(currency="USD")
    euro = customer_create(currency="USD")
    plain = customer_create(currency="USD")
    Customer.objects.filter(pk=lower.pk).update(currency="brl")
    Customer.objects.filter(pk=empty.pk).update(currency="")
    CustomerOrder.objects.create(customer=euro, reference="ES-1", currency="EUR")

    # when the migration's backfill runs
    import_module("appease.issuance.migrations.0018_customer_currency").backfill(apps, None)

    # then
    found = dict(Customer.objects.values_list("pk", "currency"))
    assert (found[lower.pk], found[empty.pk], found[euro.pk], found[plain.pk]) == ("BRL", "USD", "EUR", "USD")


def test_an_empty_offer_list_says_whether_it_is_the_currency_or_the_policy(world, client):
    # given a customer in euros, while the only offers are in dollars and reais (or soft:
    # retired here), and a rep reading Spanish
    Offer.objects.filter(pk=world["apology"].pk).update(is_active=False)
    euro_customer = customer_create(currency="EUR")
    client.force_login(world["csr"])

    # when the rep opens the customer
    page = client.get(f"/csr/customers/{euro_customer.pk}/", HTTP_ACCEPT_LANGUAGE="es").content.decode()

    # then the list says it is the currency, not the policy
    assert "Ninguna oferta que puedas dar está en la moneda de este cliente (EUR)." in page
    assert "Tu política no permite ninguna oferta." not in page

    # and with no active offer at all, it is the policy
    Offer.objects.update(is_active=False)
    page = client.get(f"/csr/customers/{euro_customer.pk}/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "Tu política no permite ninguna oferta." in page
    assert "Ninguna oferta que puedas dar" not in page
