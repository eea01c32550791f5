"""What the journeys need on top of `manage.py demo_data`, made through the real services.

Run in the product's own environment (the harness calls
`manage.py shell --command "from tests.journeys.seed import run; run()"`), so it writes
the journey database with the journey's keys. Safe to run twice.

- One customer per language, reachable by email, in their own currency: the rep of that
  language gives them an appeasement within limits and one over the limit.
- One gift card per currency whose face value is above the demo reps' most per
  appeasement (half their daily budget: 30 USD, 27.50 EUR, 150 BRL), so giving it goes to
  a supervisor for approval.
"""

from __future__ import annotations

from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction

from appease.context import Actor
from appease.models import Customer
from appease.services.customers import customer_create
from coupons.models import Code, Offer
from coupons.services.inventory import code_batch_generate, code_batch_request

CODES_PER_OFFER = 20

CUSTOMERS = [
    # name, email, language, currency
    ("Olivia Bennett", "olivia.bennett@example.com", "en", "USD"),
    ("Carmen Ruiz", "carmen.ruiz@example.es", "es", "EUR"),
    ("Beatriz Almeida", "beatriz.almeida@example.com.br", "pt-br", "BRL"),
]

BIG_GIFT_CARDS = [
    {
        "name": "$40 gift card",
        "currency": "USD",
        "value_amount": Decimal("40.00"),
        "cost_amount": Decimal("30.00"),
        "description_en": "A $40 gift card for a serious failure",
        "description_es": "Una tarjeta regalo de 40 $ por un fallo grave",
        "description_pt_br": "Um vale-presente de US$ 40 por uma falha grave",
    },
    {
        "name": "40 € tarjeta regalo",
        "currency": "EUR",
        "value_amount": Decimal("40.00"),
        "cost_amount": Decimal("30.00"),
        "description_en": "A €40 gift card for a serious failure",
        "description_es": "Una tarjeta regalo de 40 € por un fallo grave",
        "description_pt_br": "Um vale-presente de 40 € por uma falha grave",
    },
    {
        "name": "R$ 200 vale-presente",
        "currency": "BRL",
        "value_amount": Decimal("200.00"),
        "cost_amount": Decimal("150.00"),
        "description_en": "An R$ 200 gift card for a serious failure",
        "description_es": "Una tarjeta regalo de 200 R$ por un fallo grave",
        "description_pt_br": "Um vale-presente de R$ 200 por uma falha grave",
    },
]


def run() -> None:
    actor = Actor(user=get_user_model().objects.get(username="supervisor"))
    with transaction.atomic():
        for name, email, language, currency in CUSTOMERS:
            if not Customer.objects.filter(email=email).exists():
                customer_create(
                    actor=actor,
                    name=name,
                    email=email,
                    preferred_channel="email",
                    language=language,
                    currency=currency,
                )
        offers = []
        for spec in BIG_GIFT_CARDS:
            offer = Offer.objects.filter(name=spec["name"]).first()
            if offer is None:
                offer = Offer(kind=Offer.Kind.GIFT_CARD, validity_days=365, **spec)
                offer.full_clean()
                offer.save()
            offers.append(offer)
    for offer in offers:
        missing = CODES_PER_OFFER - offer.codes.filter(status=Code.Status.AVAILABLE).count()
        if missing > 0:
            code_batch_generate(batch_id=code_batch_request(offer=offer, quantity=missing).pk)
