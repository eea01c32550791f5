"""Who plays the journeys, with what (demo_data's people and offers, seed.py's customers
and gift cards), and what one journey hands to the next.

A gift the rep's journey gave is recorded here, and the customer's and the merchant's
journeys read it; run on their own, they give one first (`gift_for`), so every journey
also passes alone (`pytest tests/journeys/test_merchant.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest

from appease.core.money import format_money
from tests.conftest import ON_POSTGRES, ON_REDIS
from tests.journeys.conftest import Mail, Product
from tests.journeys.seed import BIG_GIFT_CARDS, CUSTOMERS

# Every journey module's marks: it needs PostgreSQL and Redis (skipped elsewhere, saying why).
MARKS = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.skipif(
        not (ON_POSTGRES and ON_REDIS),
        reason="the journeys run the product on PostgreSQL and Redis: set DATABASE_URL and REDIS_URL (docs/testing.md)",
    ),
]

SUPERVISOR_LANGUAGE = "es"  # demo_data's supervisor works in Spanish


@dataclass(frozen=True)
class Offer:
    description: str  # in the rep's language, as the offer list shows it
    face: str  # its value as the customer's message writes it
    currency: str
    order_total: Decimal  # an order it pays part of (above any minimum)


@dataclass(frozen=True)
class Person:
    name: str
    email: str
    language: str
    currency: str


def _customer(language: str) -> Person:
    name, email, speaks, currency = next(row for row in CUSTOMERS if row[2] == language)
    return Person(name, email, speaks, currency)


def _big(currency: str, language: str) -> Offer:
    spec = next(spec for spec in BIG_GIFT_CARDS if spec["currency"] == currency)
    description = spec[f"description_{language.replace('-', '_')}"]
    face = format_money(spec["value_amount"], currency, language)
    return Offer(description, face, currency, spec["value_amount"] * 2)


@dataclass(frozen=True)
class Rep:
    username: str
    language: str
    customer: Person  # reachable by email, in the rep's language and the offer's currency
    offer: Offer  # within the rep's limits
    big_offer: Offer  # over them: a supervisor approves
    reason: str  # a reason code's label in the rep's language
    newcomer: str  # the customer the rep creates
    newcomer_email: str
    approves_in_admin: bool  # where the supervisor approves: the admin, or the approvals page
    supervisor_language: str = SUPERVISOR_LANGUAGE


REPS = [
    # carla has no language of her own: her browser's (English) is hers.
    Rep(
        username="carla",
        language="en",
        customer=_customer("en"),
        offer=Offer(
            "$5 off your next order of $20 or more", format_money(Decimal("5"), "USD", "en"), "USD", Decimal("40")
        ),
        big_offer=_big("USD", "en"),
        reason="Late delivery",
        newcomer="Harriet Quillfeather",
        newcomer_email="harriet.quillfeather@example.com",
        approves_in_admin=True,
    ),
    Rep(
        username="ana",
        language="es",
        customer=_customer("es"),
        offer=Offer(
            "5 € de descuento en tu próximo pedido desde 20 €",
            format_money(Decimal("5"), "EUR", "es"),
            "EUR",
            Decimal("40"),
        ),
        big_offer=_big("EUR", "es"),
        reason="Entrega con retraso",
        newcomer="Inés Navarrete Soler",
        newcomer_email="ines.navarrete@example.es",
        approves_in_admin=False,
    ),
    Rep(
        username="bruno",
        language="pt-br",
        customer=_customer("pt-br"),
        offer=Offer(
            "R$ 30 de desconto no seu próximo pedido",
            format_money(Decimal("30"), "BRL", "pt-br"),
            "BRL",
            Decimal("100"),
        ),
        big_offer=_big("BRL", "pt-br"),
        reason="Entrega atrasada",
        newcomer="Rafael Teixeira Lobo",
        newcomer_email="rafael.lobo@example.com.br",
        approves_in_admin=True,
    ),
]


@dataclass(frozen=True)
class Gift:
    code: str  # as the customer's message wrote it
    mail: Mail
    rep: Rep

    @property
    def customer(self) -> Person:
        return self.rep.customer

    @property
    def offer(self) -> Offer:
        return self.rep.offer


GIFTS: dict[str, Gift] = {}


def gift_record(language: str, *, code: str, mail: Mail, rep: Rep) -> Gift:
    GIFTS[language] = Gift(code, mail, rep)
    return GIFTS[language]


def gift_for(people, product: Product, language: str) -> Gift:
    """The within-limits gift the rep of `language` gave in this run, given now if none."""
    if language not in GIFTS:
        from tests.journeys.pages import CSR, Customer

        rep = next(rep for rep in REPS if rep.language == language)
        csr = CSR.log_in(people.new_page(language), rep.username, language)
        csr.open_customer(rep.customer.name, email=rep.customer.email)
        result = csr.give(offer=rep.offer.description, reason=rep.reason).wait_status("delivered")
        mail, code = Customer(product, rep.customer.email, rep.customer.language).wait_for_code(result.last4)
        gift_record(language, code=code, mail=mail, rep=rep)
    return GIFTS[language]
