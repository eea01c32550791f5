"""What the journeys need on top of `manage.py demo_data`, made through the real services.

Run in the product's own environment (the harness calls
`manage.py shell --command "from tests.journeys.seed import run; run()"`), so it writes
the journey database with the journey's keys. Safe to run twice.

- One customer per language, reachable by email, in their own currency: the rep of that
  language gives them an appeasement within limits and one over the limit.
- One gift card per currency whose face value is above the demo reps' most per
  appeasement (half their daily budget: 30 USD, 27.50 EUR, 150 BRL), so giving it goes to
  a supervisor for approval.
- For the rep's giving journeys (test_csr_giving.py): reps of their own (one whose policy
  refuses what is over the limit, one who works in Spanish only, one in English), a
  customer for each journey (so no journey meets another's "given before?" question), a
  customer reachable by SMS who did not agree to it, an offer with no codes left and one
  that a journey retires while the rep's page is open.
"""

from __future__ import annotations

from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from appease.core.context import Actor
from appease.core.roles import CSR
from appease.issuance.models import Customer, LimitBudget, LimitPolicy, StaffProfile, Team
from appease.issuance.services.customers import customer_create
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


# username, first name, language, languages worked in, policy (None: the reps' default)
REFUSING_POLICY = "Journeys: refused over the limit"
REPS = [
    ("lucas", "Lucas", "pt-br", [], REFUSING_POLICY),
    ("elena", "Elena", "es", ["es"], None),
    ("dave", "Dave", "en", [], None),
]

# name, email, language, currency, other fields
MORE_CUSTOMERS = [
    # the refusals: a phone, but no consent to SMS, and no chat handle
    (
        "Tomás Ferreira Dias",
        "tomas.dias@example.com.br",
        "pt-br",
        "BRL",
        {"phone": "+5511998765432", "consent_sms": False},
    ),
    # the double click, then reveal and resend
    ("Wendy Okafor", "wendy.okafor@example.com", "en", "USD", {}),
    # the keyboard
    ("Rocío Márquez Vidal", "rocio.marquez@example.es", "es", "EUR", {}),
    # the queue: a valuable English customer's complaint outranks a Spanish one's
    (
        "Gregory Ashworth",
        "gregory.ashworth@example.com",
        "en",
        "USD",
        {"tier": "platinum", "lifetime_value_amount": Decimal("5000.00")},
    ),
    ("Mercedes Lozano Gil", "mercedes.lozano@example.es", "es", "EUR", {}),
]

EMPTY_OFFER = {
    "name": "R$ 15 de desconto (esgotado)",
    "currency": "BRL",
    "value_amount": Decimal("15.00"),
    "cost_amount": Decimal("15.00"),
    "generate_on_demand": False,  # and no codes: the inventory is empty
    "description_en": "R$ 15 off (no codes left)",
    "description_es": "15 R$ de descuento (sin códigos)",
    "description_pt_br": "R$ 15 de desconto (sem códigos)",
}
RETIRED_OFFER = {
    "name": "R$ 10 de desconto (a retirar)",
    "currency": "BRL",
    "value_amount": Decimal("10.00"),
    "cost_amount": Decimal("10.00"),
    "description_en": "R$ 10 off (being retired)",
    "description_es": "10 R$ de descuento (se retira)",
    "description_pt_br": "R$ 10 de desconto (será retirado)",
}


def _reps() -> None:
    policy, created = LimitPolicy.objects.get_or_create(name=REFUSING_POLICY, defaults={"over_limit": "refuse"})
    if created:
        for currency, day in (("USD", Decimal("60")), ("EUR", Decimal("55")), ("BRL", Decimal("300"))):
            LimitBudget.objects.create(
                policy=policy, currency=currency, max_face_per_issuance_amount=day / 2, day_cost_amount=day
            )
    team = Team.objects.get(name="Front line")
    users = get_user_model()
    for username, first_name, language, languages, policy_name in REPS:
        user, created = users.objects.get_or_create(username=username, defaults={"first_name": first_name})
        if created:
            user.set_password("appease-demo")
            user.save()
            user.groups.add(Group.objects.get(name=CSR))
        StaffProfile.objects.update_or_create(
            user=user,
            defaults={
                "team": team,
                "language": language,
                "languages": languages,
                "policy": LimitPolicy.objects.get(name=policy_name) if policy_name else None,
            },
        )


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
        for name, email, language, currency, fields in MORE_CUSTOMERS:
            if not Customer.objects.filter(email=email).exists():
                customer_create(
                    actor=actor,
                    name=name,
                    email=email,
                    preferred_channel="email",
                    language=language,
                    currency=currency,
                    **fields,
                )
        _reps()
        for spec in (EMPTY_OFFER, RETIRED_OFFER):
            if not Offer.objects.filter(name=spec["name"]).exists():
                offer = Offer(kind=Offer.Kind.AMOUNT_OFF, validity_days=90, **spec)
                offer.full_clean()
                offer.save()
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
