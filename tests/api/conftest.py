"""Fixtures for the API fuzz run: real objects for every kind of client, and the
in-process WSGI app kept inside the test's transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from appease.core.context import SYSTEM, Actor
from appease.core.models import StaffAPIKey
from appease.delivery.models import Delivery
from appease.issuance.services.issuance import issuance_create
from appease.webhooks.services import webhook_endpoint_create
from coupons.services.redemption import redemption_create
from feedback.models import Case, FeedbackSite
from feedback.services.cases import case_claim_next
from feedback.services.intake import CustomerRef, feedback_submit
from tests.factories import (
    customer_create,
    gift_card_offer_create,
    issued_code,
    merchant_with_key,
    offer_create,
    policy_create,
    reason_create,
    staff_user,
)


@dataclass
class World:
    """What the generated requests may name, so operations reach their real code paths."""

    merchant_key: str = ""
    csr_token: str = ""
    supervisor_token: str = ""
    site_key: str = ""
    codes: list[str] = field(default_factory=list)
    redemption_ids: list[str] = field(default_factory=list)
    customer_ids: list[int] = field(default_factory=list)
    offer_ids: list[int] = field(default_factory=list)
    reason_codes: list[str] = field(default_factory=list)
    issuance_ids: list[str] = field(default_factory=list)
    case_ids: list[int] = field(default_factory=list)
    provider_message_ids: list[str] = field(default_factory=list)
    staff_usernames: list[str] = field(default_factory=list)
    webhook_endpoint_ids: list[int] = field(default_factory=list)


# The hooks in test_fuzz.py draw from this while a fuzz test runs (and find it empty
# otherwise): strategies are built before fixtures run, values are drawn after.
WORLD = World()


@pytest.fixture
def wsgi_in_test_transaction():
    """Django closes "obsolete" connections when a request starts and ends; inside the
    test's transaction that would drop it. Its own test client disconnects the same
    handlers: so do we, as Schemathesis drives the real WSGI application."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def world(db, settings, wsgi_in_test_transaction):
    """A merchant with a key, a rep and a supervisor with staff tokens, a feedback site,
    customers, offers with issued codes, a redemption, issuances (given and waiting for
    approval) and cases (open, and one the rep works)."""
    # The guessing and intake limits would answer 429 to almost everything after a few
    # examples: raise them so the fuzzer reaches the code behind them.
    settings.FAILED_LOOKUP_LIMIT = 10_000
    settings.FEEDBACK_RATE_PER_IP = 10_000
    settings.FEEDBACK_RATE_PER_KEY = 10_000
    settings.API_RATE_LIMIT_PER_KEY = settings.API_RATE_LIMIT_PER_USER = settings.API_RATE_LIMIT_PER_IP = 1_000_000
    # The providers' callbacks are signed with these (tests/api/test_fuzz.py signs them).
    settings.SMS_AUTH_TOKEN = "fuzz-sms-token"
    settings.WEBHOOK_SECRET = "fuzz-webhook-secret"

    merchant, merchant_key = merchant_with_key()
    csr = staff_user("CSR", policy=policy_create(day_cost_amount=Decimal("12.00")))
    supervisor = staff_user("Supervisor", policy=policy_create(day_cost_amount=Decimal("1000")))
    _key, csr_token = StaffAPIKey.objects.create_key(name="fuzz-csr", user=csr)
    _key, supervisor_token = StaffAPIKey.objects.create_key(name="fuzz-supervisor", user=supervisor)
    site = FeedbackSite.objects.create(name="Fuzz shop")

    customers = [customer_create(), customer_create(preferred_channel="sms", phone="+14155550123")]
    offer = offer_create()
    gift_card = gift_card_offer_create()
    percent_off = offer_create(kind="percent_off", value_amount=Decimal("0"), percent=Decimal("15"))
    apology = offer_create(
        kind="apology", value_amount=Decimal("0"), cost_amount=Decimal("0"), generate_on_demand=False
    )
    reasons = [reason_create("late-parcel"), reason_create("rude-agent", incident_type="staff_attitude")]
    codes = [issued_code(offer).plaintext for _ in range(3)] + [
        issued_code(o).plaintext for o in (gift_card, percent_off)
    ]
    redemption = redemption_create(
        merchant=merchant, raw_code=codes[0], order_id="A-1", order_total=Decimal("40.00"), currency="USD"
    )

    issuances = []
    for customer in customers * 3:  # 6 x 3.00 at cost against a 12.00 day: the last two wait for approval
        issuances.append(issuance_create(actor=Actor(user=csr), customer=customer, offer=offer, reason_code=reasons[0]))
    cases = [
        feedback_submit(
            actor=SYSTEM,
            source=Case.Source.API,
            ref=CustomerRef(email=f"case{n}@example.com"),  # one customer each: theirs would join one case
            text=text,
            rating=1,
            force_case=True,
        ).case
        for n, text in enumerate(["My parcel is three days late", "The agent was rude to me", "Still no refund"])
    ]
    case_claim_next(actor=Actor(user=csr))  # the rep works one case: they may resolve it
    # Two deliveries the providers know, so signed callbacks reach a real delivery.
    deliveries = list(Delivery.objects.filter(issuance__in=issuances[:2]).order_by("created_at"))
    for n, delivery in enumerate(deliveries):
        Delivery.objects.filter(pk=delivery.pk).update(provider_message_id=f"SM-fuzz-{n}")

    # A webhook endpoint, for the paths that name one (subscribed to the one event no
    # fuzzed operation emits: the world's rows stay the operations' own).
    webhook_endpoint, _secret = webhook_endpoint_create(
        actor=Actor(user=supervisor), url="https://hooks.example.com/fuzz", events=["anomaly.flagged"]
    )

    WORLD.__init__(
        merchant_key=merchant_key,
        csr_token=csr_token,
        supervisor_token=supervisor_token,
        site_key=site.public_key,
        codes=codes,
        redemption_ids=[str(redemption.pk)],
        customer_ids=[c.pk for c in customers],
        offer_ids=[offer.pk, gift_card.pk, percent_off.pk, apology.pk],
        reason_codes=[r.code for r in reasons],
        issuance_ids=[str(i.pk) for i in issuances],
        case_ids=[c.pk for c in cases],
        provider_message_ids=[f"SM-fuzz-{n}" for n in range(len(deliveries))],
        staff_usernames=[csr.username, supervisor.username],
        webhook_endpoint_ids=[webhook_endpoint.pk],
    )
    yield WORLD
    WORLD.__init__()
