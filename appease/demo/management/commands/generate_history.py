"""`manage.py generate_history`: a year of realistic appeasement history, for the
reports and their benchmark (bench/reporting).

What it makes (defaults): 200 reps in ~10 teams (CSR group, staff profiles, one
supervisor per team), 100,000 customers, a handful of offers per currency (USD, EUR,
BRL) and reason codes for every incident type, then 1,000,000 issuances over the last
365 days with weekday and hour seasonality, a busier peak season and one outage
afternoon. Around them: cases (~30 % of issuances come from one), the feedback that
opened each case plus acknowledged feedback with ratings and NPS, follow-ups with
"solved?" and CSAT answers (some cases reopened), deliveries a few seconds after each
issuance (some failed or dead), codes for every coupon and gift card given (~40 %
redeemed, with a redemption row; gift cards partly used), and a few planted anomalies
so the anomalies page has something to show.

What the recommendations learn from (issue 18): one `AppeasementOutcome` per issuance
(most from the customer panel, ~30 % from cases, some USD late deliveries from an
automatic rule), with its segment as the product computes it when it gives; a follow-up
for every appeasement (a case's, or one naming the issuance outside cases) whose answer
is the outcome's; the code's first redemption; every customer's orders (their history,
the orders that used a code, orders again after an appeasement), from which their order
count, spend, lifetime value and last order and each outcome's `repurchased_at` are
made; and a running experiment on late deliveries. Whether an appeasement solved the
incident is drawn from a known table (`TRUE_SOLVE`, `TIER_SHIFT`, `true_solve`; shown in
docs/reporting.md, "What the history holds, and the truth it was drawn from"): staff
attitude is solved by an apology as often as by a gift card, an overcharge needs money
back, a $5 credit does as well as a $25 gift card for a late delivery, and platinum
customers respond better to gift cards when goods went wrong.

How: on PostgreSQL every big table is written with COPY, ids made here (UUIDs, or
integers above the table's current maximum; the sequences are moved past them
afterwards), rows made by forked worker processes in chunks of 10,000 issuances
while this process streams them into COPY, all in one transaction with the
constraints checked as each COPY ends. Elsewhere (SQLite) it falls back to plain
INSERTs (executemany), and refuses more than a few thousand issuances.

After the chunks, one pass over the written rows (`Command.derive`, SQL that runs on
both databases) makes what depends on other chunks' rows: the outcomes' segments and
repurchases, the customers' order figures, the automatic rule's counters.

Not made: the append-only ledgers (code events, case events, audit events), delivery
attempts and status callbacks, budget counters, merchant events, and the case a "not
solved" answer opens outside a case.
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
import os
import random
import re
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, models, transaction
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.translation import gettext as _

from appease.core.roles import CSR, SUPERVISOR
from appease.delivery.models import Delivery
from appease.issuance.models import (
    Customer,
    CustomerOrder,
    IncidentType,
    Issuance,
    ReasonCode,
    StaffProfile,
    Team,
)
from coupons import codes
from coupons.models import Code, Merchant, Offer, Redemption
from feedback.models import (
    AppeasementOutcome,
    AutoRule,
    Case,
    Experiment,
    Feedback,
    FeedbackSite,
    FollowUp,
    Intervention,
    OwnerTeam,
    PriorityLevel,
    arm_key,
)
from feedback.services.outcomes import KIND_INTERVENTION
from feedback.services.scoring import REPEAT_WINDOW
from reporting.services import rollups_refresh

CHUNK = 10_000  # issuances per chunk: one unit of work for a worker, one COPY per table
PARALLEL_MIN_ISSUANCES = 50_000
SQLITE_MAX_ISSUANCES = 20_000
PLACEHOLDER_CODE = "HIST-ORYC-ODEN-OTSH-OWN"  # every history code's ciphertext decrypts to this

P_FROM_CASE = 0.30  # issuances given from a case
P_CASE_WITHOUT_ISSUANCE = 0.06  # per issuance: a case that got words or a callback only
P_ACKNOWLEDGED_FEEDBACK = 0.25  # per issuance: low-impact feedback, no case
P_NEEDS_APPROVAL = 0.015
P_VOIDED = 0.008
P_DELIVERY_FAILS = 0.022
P_LIVE_CASE = 0.75  # a case worked while the customer is there (chat, phone); else queued
PLANTED_RATE_FACTOR = 5
PLANTED_MANY_REPS = 40  # issuances, each from a different rep, to one customer in 20 days

LANGUAGE_SHARE = {"en": 0.60, "es": 0.25, "pt-br": 0.15}
TIER_SHARE = {"standard": 0.60, "silver": 0.25, "gold": 0.11, "platinum": 0.04}
CHANNEL_SHARE = {"email": 0.58, "sms": 0.22, "chat": 0.12, "social": 0.08}
INCIDENT_SHARE = {
    "late_delivery": 0.28,
    "damaged_item": 0.12,
    "wrong_item": 0.10,
    "overcharge": 0.08,
    "staff_attitude": 0.07,
    "product_defect": 0.12,
    "billing": 0.10,
    "service_outage": 0.07,
    "other": 0.06,
}
PRIORITY_SHARE = {"critical": 0.08, "high": 0.32, "normal": 0.60}
PRIORITY_SCORE = {"critical": (70, 95), "high": (45, 69), "normal": (25, 44)}
# Local weekday (Monday first) and hour of day: when customers complain.
WEEKDAY_FACTOR = (1.15, 1.10, 1.05, 1.00, 0.95, 0.70, 0.60)
HOUR_FACTOR = (
    *(0.08, 0.05, 0.04, 0.04, 0.05, 0.10, 0.25, 0.55, 0.85, 1.10, 1.25, 1.25),
    *(1.15, 1.05, 1.15, 1.20, 1.15, 1.05, 0.95, 0.85, 0.70, 0.50, 0.30, 0.15),
)

TEAMS = [
    ("Atlas", "en"),
    ("Beacon", "es"),
    ("Compass", "pt-br"),
    ("Delta", "en"),
    ("Echo", "en"),
    ("Faro", "es"),
    ("Ipê", "pt-br"),
    ("Falcon", "en"),
    ("Granite", "en"),
    ("Harbor", "en"),
]
NAMES = {
    "en": (
        "James Mary John Patricia Robert Jennifer Michael Linda William Elizabeth David Barbara Richard Susan "
        "Joseph Jessica Thomas Sarah Charles Karen Daniel Nancy Matthew Lisa Anthony Betty Mark Sandra Steven "
        "Ashley Paul Emily Andrew Donna Kevin Michelle Brian Carol George Amanda",
        "Smith Johnson Williams Brown Jones Miller Davis Wilson Anderson Taylor Thomas Moore Martin Jackson "
        "Thompson White Harris Clark Lewis Robinson Walker Young Allen King Wright Scott Hill Green Adams Baker",
    ),
    "es": (
        "María José Carmen Antonio Lucía Manuel Ana Francisco Isabel David Laura Javier Marta Carlos Elena "
        "Miguel Sofía Pablo Paula Alejandro",
        "García Fernández González Rodríguez López Martínez Sánchez Pérez Gómez Martín Jiménez Ruiz Hernández "
        "Díaz Moreno Muñoz Álvarez Romero Navarro Torres",
    ),
    "pt-br": (
        "João Maria Ana Pedro Lucas Juliana Gabriel Beatriz Rafael Larissa Mateus Camila Felipe Fernanda "
        "Gustavo Mariana Thiago Letícia Bruno Aline",
        "Silva Santos Oliveira Souza Rodrigues Ferreira Alves Pereira Lima Gomes Costa Ribeiro Martins Carvalho "
        "Almeida Lopes Soares Fernandes Vieira Barbosa",
    ),
}
MAIL_DOMAIN = {"en": "example.com", "es": "example.es", "pt-br": "example.com.br"}
SUBJECTS = {
    "late_delivery": ("My order is late", "Mi pedido llega tarde", "Meu pedido está atrasado"),
    "damaged_item": ("The item arrived damaged", "El artículo llegó dañado", "O produto chegou danificado"),
    "wrong_item": ("I received the wrong item", "Recibí un artículo equivocado", "Recebi o item errado"),
    "overcharge": ("I was charged twice", "Me cobraron dos veces", "Fui cobrado duas vezes"),
    "staff_attitude": ("The agent was rude to me", "El agente fue grosero", "O atendente foi grosseiro"),
    "product_defect": ("The product stopped working", "El producto dejó de funcionar", "O produto parou de funcionar"),
    "billing": ("Problem with my invoice", "Problema con mi factura", "Problema com minha fatura"),
    "service_outage": (
        "I can't log in, the site is down",
        "No puedo entrar, el servicio está caído",
        "Não consigo entrar, o serviço está fora do ar",
    ),
    "other": ("I want to complain", "Quiero poner una reclamación", "Quero fazer uma reclamação"),
}
PRAISE = {
    "en": ("Quick delivery, thanks", "All good", "Easy to order", "Nice packaging", "Fine"),
    "es": ("Entrega rápida, gracias", "Todo bien", "Fácil de pedir", "Buen embalaje", "Correcto"),
    "pt-br": ("Entrega rápida, obrigado", "Tudo certo", "Fácil de comprar", "Embalagem boa", "Ok"),
}
LANGUAGE_INDEX = {"en": 0, "es": 1, "pt-br": 2}
# code, incident type, English label, Spanish, Portuguese
REASONS = [
    ("hist-late", "late_delivery", "Late delivery", "Entrega con retraso", "Entrega atrasada"),
    ("hist-late-week", "late_delivery", "Over a week late", "Más de una semana tarde", "Mais de uma semana de atraso"),
    ("hist-damaged", "damaged_item", "Damaged in transit", "Dañado en el transporte", "Danificado no transporte"),
    ("hist-wrong-item", "wrong_item", "Wrong item sent", "Artículo equivocado", "Item errado"),
    ("hist-wrong-size", "wrong_item", "Wrong size", "Talla equivocada", "Tamanho errado"),
    ("hist-overcharge", "overcharge", "Charged twice", "Cobro duplicado", "Cobrança em dobro"),
    ("hist-rude", "staff_attitude", "Rude staff", "Trato descortés", "Atendimento grosseiro"),
    ("hist-defect", "product_defect", "Product defect", "Producto defectuoso", "Produto com defeito"),
    ("hist-missing-part", "product_defect", "Missing parts", "Faltan piezas", "Peças faltando"),
    ("hist-billing", "billing", "Billing error", "Error de facturación", "Erro de cobrança"),
    ("hist-refund-delay", "billing", "Slow refund", "Reembolso lento", "Reembolso demorado"),
    ("hist-outage", "service_outage", "Service outage", "Caída del servicio", "Serviço fora do ar"),
    ("hist-goodwill", "other", "Goodwill gesture", "Gesto de buena voluntad", "Gesto de boa vontade"),
]
# name, kind, value, cost, percent, max discount, min order, validity days, weight, share of
# codes used, arm class (what the truth table below knows it as)
OFFERS = {
    "USD": [
        ("Apology note", "apology", 0, 0, None, None, 0, 90, 10, 0.0, "apology"),
        ("$5 credit", "amount_off", 500, 300, None, None, 2000, 90, 25, 0.46, "credit_small"),
        ("$10 credit", "amount_off", 1000, 650, None, None, 3000, 90, 16, 0.49, "credit"),
        ("15% off next order", "percent_off", 0, 400, 15, 3000, 0, 60, 14, 0.44, "percent"),
        ("20% off in the app", "percent_off", 0, 500, 20, 4000, 0, 60, 8, 0.04, "percent"),  # planted: codes go unused
        ("$25 gift card", "gift_card", 2500, 2000, None, None, 0, 365, 9, 0.60, "gift_card"),
        ("$50 gift card", "gift_card", 5000, 4000, None, None, 0, 365, 3, 0.65, "gift_card_big"),
        ("Supervisor callback", "callback", 0, 0, None, None, 0, 90, 3, 0.0, "callback"),
    ],
    "EUR": [
        ("Nota de disculpa", "apology", 0, 0, None, None, 0, 90, 10, 0.0, "apology"),
        ("€5 credit", "amount_off", 500, 300, None, None, 2000, 90, 28, 0.44, "credit_small"),
        ("€10 credit", "amount_off", 1000, 650, None, None, 3000, 90, 15, 0.47, "credit"),
        ("15 % de descuento", "percent_off", 0, 400, 15, 3000, 0, 60, 18, 0.42, "percent"),
        ("€25 gift card", "gift_card", 2500, 2000, None, None, 0, 365, 10, 0.58, "gift_card"),
    ],
    "BRL": [
        ("Pedido de desculpas", "apology", 0, 0, None, None, 0, 90, 10, 0.0, "apology"),
        ("R$ 25 de crédito", "amount_off", 2500, 1500, None, None, 10000, 90, 28, 0.45, "credit_small"),
        ("R$ 50 de crédito", "amount_off", 5000, 3200, None, None, 15000, 90, 15, 0.48, "credit"),
        ("15% de desconto", "percent_off", 0, 2000, 15, 15000, 0, 60, 18, 0.43, "percent"),
        ("Vale-presente R$ 100", "gift_card", 10000, 8000, None, None, 0, 365, 10, 0.57, "gift_card"),
    ],
}

# --- What works: the history's known truth -----------------------------------------------
# Every appeasement the customer got has a true chance of solving the incident, set by
# the incident type, the arm's class and the customer's tier; whether it did is drawn
# from it once, and a follow-up answer (when there is one) reports that draw. The
# recommendations and the recovery reports should find this table in the history: see
# docs/reporting.md, "The demo history's truth", and tests/reporting/test_generate_history.py.
ARM_CLASSES = ("apology", "callback", "credit_small", "credit", "percent", "gift_card", "gift_card_big")
TRUE_SOLVE = {
    # incident: apology, callback, small credit ($5), credit ($10), 15% off, gift card ($25), $50 gift card
    "staff_attitude": (0.80, 0.78, 0.70, 0.72, 0.70, 0.80, 0.81),  # respect first: words solve as well as gifts
    "overcharge": (0.30, 0.40, 0.86, 0.88, 0.72, 0.70, 0.72),  # money back, not words
    "billing": (0.40, 0.55, 0.82, 0.85, 0.72, 0.70, 0.72),
    "late_delivery": (0.55, 0.50, 0.80, 0.81, 0.76, 0.81, 0.82),  # $5 off does as well as a $25 gift card
    "damaged_item": (0.42, 0.50, 0.66, 0.74, 0.68, 0.78, 0.82),
    "wrong_item": (0.45, 0.50, 0.70, 0.76, 0.70, 0.78, 0.80),
    "product_defect": (0.40, 0.52, 0.64, 0.72, 0.66, 0.77, 0.82),
    "service_outage": (0.70, 0.60, 0.76, 0.78, 0.74, 0.78, 0.79),
    "other": (0.65, 0.62, 0.72, 0.75, 0.72, 0.76, 0.78),
}
# Gold and platinum customers expect more when the goods went wrong: for these incidents
# words solve less for them and value solves more (added to the table, per tier: soft
# arms, credits and percent off, gift cards).
HARD_OFFER_INCIDENTS = ("late_delivery", "damaged_item", "wrong_item", "product_defect")
TIER_SHIFT = {"gold": (-0.05, 0.00, 0.05), "platinum": (-0.15, 0.06, 0.12)}
# Reps' habits: how much likelier than its catalog weight an arm class is chosen for an
# incident (the history carries the reps' choice bias, as real data does).
HABITS = {
    "staff_attitude": {"apology": 4.0, "callback": 2.0, "gift_card": 2.0, "gift_card_big": 2.0},
    "overcharge": {"apology": 2.5, "credit_small": 1.5, "credit": 2.0},
    "billing": {"apology": 1.5, "credit": 1.5},
    "late_delivery": {"apology": 1.5, "credit_small": 1.5, "gift_card": 1.5},
    "damaged_item": {"gift_card": 1.5, "gift_card_big": 2.0},
    "product_defect": {"gift_card": 1.5, "gift_card_big": 2.0},
    "service_outage": {"apology": 2.0},
}
# Did the customer order again within REPURCHASE_WINDOW of the appeasement (besides
# their usual orders and the orders that used its code)?
P_REPURCHASE = {True: 0.45, False: 0.08}
# Redeeming the code: its offer's share of codes used, times this.
REDEEM_FACTOR = {True: 1.3, False: 0.4}
P_ANSWERED = 0.45  # a follow-up sent is answered
P_RULE = 0.20  # of USD late deliveries outside cases: the automatic rule gave it
PATHS_OUTSIDE_CASES = (("panel", 0.80), ("api", 0.12), ("sidebar", 0.08))
RULE_NAME = "History: delivery 3 h late, $5 credit"
# The running experiment: late deliveries of USD customers, 10 % of them assigned an arm
# at random among $5 credit, a $25 gift card and an apology (the holdout); a rep
# overrides an assignment now and then, with a reason.
EXPERIMENT_NAME = "Late delivery: $5 credit vs $25 gift card vs apology"
EXPERIMENT_INCIDENT = "late_delivery"
EXPERIMENT_OFFERS = ("$5 credit", "$25 gift card")
EXPERIMENT_SHARE = 10
EXPERIMENT_DAYS = 60
P_OVERRIDE = 0.2
OVERRIDE_REASONS = (
    "Customer asked for money off, not a gift card",
    "Loyal customer: gave more than the assigned arm",
    "Customer refused a voucher",
)
# Each customer's orders before and during the history, by tier: (fewest, most).
ORDERS_BY_TIER = {"standard": (1, 6), "silver": (4, 11), "gold": (10, 21), "platinum": (20, 41)}
ORDER_TOTAL = {"USD": (2000, 15000), "EUR": (2000, 14000), "BRL": (10000, 75000)}  # cents


def true_solve(incident: str, arm_class: str, tier: str) -> float:
    """The chance that this arm solves this incident for a customer of this tier."""
    share = TRUE_SOLVE[incident][ARM_CLASSES.index(arm_class)]
    if incident in HARD_OFFER_INCIDENTS and tier in TIER_SHIFT:
        soft, credit, gift = TIER_SHIFT[tier]
        if arm_class in ("apology", "callback"):
            share += soft
        elif arm_class in ("gift_card", "gift_card_big"):
            share += gift
        else:
            share += credit
    return min(0.97, max(0.03, share))


PATHS = [path for path, _share in PATHS_OUTSIDE_CASES]
PATHS_CUM = list(itertools.accumulate(share for _path, share in PATHS_OUTSIDE_CASES))
ALPHABET = codes.ALPHABET
FAILURES = (("invalid_address", "failed"), ("opted_out", "failed"), ("rejected", "failed"), ("exhausted", "dead"))


# --- Tables: columns and how each value is written --------------------------------------
# Kinds: i integer, s text, t timestamp (epoch seconds), m money (integer cents),
# u UUID (128-bit integer), b bytes, j JSON, B boolean, f float.


@dataclass(frozen=True)
class Table:
    name: str
    model: type[models.Model]
    columns: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, name: str, model: type[models.Model], spec: str) -> Table:
        """`spec`: "column:kind column:kind …", in COPY order."""
        return cls(name, model, tuple(tuple(item.split(":")) for item in spec.split()))


TABLES = {
    table.name: table
    for table in (
        Table.of(
            "customers",
            Customer,
            "id:i external_id:s name:s email:s phone:s preferred_channel:s channel_handle:s language:s tier:s "
            "currency:s lifetime_value_amount:m orders_count:i total_spend_amount:m last_order_at:t "
            "consent_email:B consent_sms:B consent_chat:B consent_social:B created_at:t updated_at:t",
        ),
        Table.of(
            "cases",
            Case,
            "id:i customer_id:i source:s status:s subject:s incident_type:s incident_inferred:B "
            "order_reference:s channel:s language:s owner_team_id:i sentiment:f anger:f priority:s "
            "priority_score:i age_points:i score_reasons:j assigned_to_id:i claimed_at:t first_response_at:t "
            "first_response_due_at:t resolution_due_at:t first_response_breached_at:t "
            "resolution_breached_at:t first_response_breaches:i resolution_breaches:i escalated_at:t resolved_at:t "
            "resolved_by_id:i resolution_note:s intervention:s closed_at:t reopened_count:i created_at:t",
        ),
        Table.of(
            "feedback",
            Feedback,
            "id:i site_id:i source:s customer_id:i case_id:i rating:i nps:i text:s incident_type:s "
            "order_reference:s channel:s page_url:s language:s sentiment:f anger:f disposition:s "
            "created_by_id:i created_at:t",
        ),
        Table.of(
            "codes",
            Code,
            "id:i offer_id:i lookup_hash:b ciphertext:s last4:s status:s currency:s initial_balance_amount:m "
            "balance_amount:m created_at:t issued_at:t expires_at:t redeemed_at:t voided_at:t",
        ),
        Table.of(
            "issuances",
            Issuance,
            "id:u csr_id:i auto_rule_id:i case_id:i customer_id:i offer_id:i reason_code_id:i note:s apology_text:s "
            "channel:s code_id:i status:s currency:s face_value_amount:m cost_amount:m breached_limits:j "
            "complaint_started_at:t complaint_start_source:s created_at:t issued_at:t delivered_at:t "
            "decided_by_id:i decided_at:t "
            "decision_comment:s escalated_at:t voided_by_id:i voided_at:t void_reason:s",
        ),
        Table.of(
            "deliveries",
            Delivery,
            "id:u issuance_id:u customer_id:i kind:s channel:s address:s language:s status:s attempts:i "
            "next_attempt_at:t provider_message_id:s failure_reason:s last_error:s requested_by_id:i "
            "request_id:s created_at:t sent_at:t delivered_at:t failed_at:t",
        ),
        Table.of(
            "follow_ups",
            FollowUp,
            "id:u case_id:i issuance_id:u customer_id:i status:s intervention:s due_at:t expires_at:t delivery_id:u "
            "skip_reason:s sent_at:t answered_at:t solved:B csat:i comment:s created_at:t",
        ),
        Table.of(
            "redemptions",
            Redemption,
            "id:u code_id:i merchant_id:i order_id:s order_total_amount:m discount_amount:m currency:s "
            "balance_after_amount:m single_use:B status:s redeemed_at:t reversed_at:t reverse_reason:s",
        ),
        # ids by the database (its sequence), as nothing refers to an order
        Table.of("orders", CustomerOrder, "customer_id:i reference:s total_amount:m currency:s placed_at:t source:s"),
        # The segment columns and repurchased_at are placeholders here, made from the
        # written rows when every chunk is in (Command.outcomes_derive).
        Table.of(
            "outcomes",
            AppeasementOutcome,
            "id:u issuance_id:u case_id:i customer_id:i incident_type:s intervention:s offer_id:i arm:s path:s "
            "currency:s cost_amount:m tier:s value_band:s repeat_band:s prior:s experiment_id:i assigned_arm:s "
            "override_reason:s follow_up_id:u given_at:t answered_at:t solved:B csat:i redeemed_at:t "
            "repurchased_at:t",
        ),
    )
}
# Referenced rows first: each COPY's foreign keys are checked when it ends.
CHUNK_TABLES = (
    "cases",
    "feedback",
    "codes",
    "issuances",
    "deliveries",
    "follow_ups",
    "redemptions",
    "orders",
    "outcomes",
)


# --- The plan: everything the workers need, made once before they are forked ---------


@dataclass(frozen=True)
class CustomerInfo:
    id: int
    language: str
    currency: str
    channel: str
    tier: str
    addresses: dict  # channel → address, only channels the customer can be reached on


@dataclass(frozen=True)
class OfferInfo:
    id: int
    kind: str
    currency: str
    value: int  # cents
    cost: int
    percent: int | None
    max_discount: int | None
    min_order: int
    validity_days: int
    used_share: float
    arm_class: str
    arm: str  # arm_key: "offer:<id>" or "apology"

    @property
    def soft(self) -> bool:
        return self.kind in Offer.SOFT_KINDS

    @property
    def gift_card(self) -> bool:
        return self.kind == Offer.Kind.GIFT_CARD


@dataclass
class Pool:
    """The reps who serve one language, and how busy each is."""

    reps: list[int]
    cum: list[float]

    def pick(self, rng: random.Random) -> int:
        return _pick(rng, self.cum, self.reps)


@dataclass
class Plan:
    seed: int
    salt: str
    issuances: int
    now: float
    start: float
    slot_start: list[float]
    slot_cum: list[float]
    outage: tuple[float, float]
    customers: list[CustomerInfo]
    customer_cum: list[float]
    pools: dict[str, Pool]
    planted_reps: list[int]
    planted_cum: list[float]
    planted_share: float  # of issuances outside cases, given by a planted rep
    all_reps: list[int]
    supervisors: list[int]
    offers: dict[str, list[OfferInfo]]
    offer_cum: dict[str, list[float]]
    reasons: dict[str, list[int]]
    owner_teams: dict[str, int | None]
    priorities: dict[str, tuple[int, int]]  # priority → (first response s, resolution s)
    merchants: list[int]
    habit_cum: dict[tuple[str, str], list[float]]  # (currency, incident) → offers' cumulative weights
    rule: tuple[int, OfferInfo, int] | None  # (automatic rule, its offer, its reason code)
    experiment: ExperimentInfo | None
    site_id: int
    code_base: int
    case_base: int
    feedback_base: int
    ciphertext: str
    planted_customer: int | None
    planted_many: int  # the last this many issuances go to the planted customer
    incidents: list[str] = field(default_factory=lambda: list(INCIDENT_SHARE))
    incident_cum: list[float] = field(default_factory=lambda: list(itertools.accumulate(INCIDENT_SHARE.values())))
    follow_up_delay: float = 3600.0
    survey_validity: float = 7 * 86400.0
    repurchase_window: float = 60 * 86400.0


@dataclass(frozen=True)
class ExperimentInfo:
    id: int
    incident: str
    currency: str
    started: float
    share: float
    arms: list[OfferInfo]  # each arm's offer (the apology arm: the currency's apology offer)


_PLAN: Plan | None = None  # set before the workers fork; they read it, never the database


# --- Making rows ----------------------------------------------------------------------


def _pick(rng: random.Random, cum: list[float], items: list):
    return items[min(bisect.bisect_left(cum, rng.random() * cum[-1]), len(items) - 1)]


def _breach(case: dict, target: str, at: float) -> None:
    """A missed target: its time in this round, and one more on the case's count."""
    if case[f"{target}_breached_at"] is None:
        case[f"{target}_breached_at"] = at
        case[f"{target}_breaches"] += 1


def _uuid4(rng: random.Random) -> int:
    value = rng.getrandbits(128)
    value &= ~(0xF000 << 64)
    value |= 0x4000 << 64
    value &= ~(0xC000 << 48)
    value |= 0x8000 << 48
    return value


def _delay(rng: random.Random, median: float, sigma: float, low: float, high: float) -> float:
    return min(high, max(low, rng.lognormvariate(math.log(median), sigma)))


def _complaint_delay(rng: random.Random) -> float:
    """Seconds from the complaint opening to the appeasement: 10–300 s, ~65 % within 60 s."""
    return _delay(rng, 45, 0.75, 10, 300)


class ChunkMaker:
    """The rows of one chunk of issuances and everything around them. Deterministic:
    the same plan and chunk number give the same rows."""

    def __init__(self, plan: Plan, chunk: int) -> None:
        self.plan = plan
        self.rng = random.Random(f"{plan.seed}:{plan.salt}:{chunk}")  # noqa: S311  (test data, not secrets)
        self.rows: dict[str, list[dict]] = {name: [] for name in CHUNK_TABLES}

    # -- small draws --

    def when(self, index: int) -> float:
        """The moment of the `index`-th issuance: stratified, so the seasonality is the
        slots' and the rows come out in time order, as a real table is appended."""
        plan, rng = self.plan, self.rng
        quantile = (index + rng.random()) / plan.issuances
        slot = min(bisect.bisect_left(plan.slot_cum, quantile * plan.slot_cum[-1]), len(plan.slot_start) - 1)
        return plan.slot_start[slot] + rng.random() * 3600

    def incident(self, at: float) -> str:
        plan, rng = self.plan, self.rng
        if plan.outage[0] <= at < plan.outage[1] and rng.random() < 0.6:
            return "service_outage"
        return _pick(rng, plan.incident_cum, plan.incidents)

    def channel(self, customer: CustomerInfo) -> str:
        if self.rng.random() < 0.85:
            return customer.channel
        return self.rng.choice(list(customer.addresses))

    # -- one issuance and what hangs off it --

    def issuance(self, index: int) -> None:
        plan, rng = self.plan, self.rng
        planted = plan.planted_customer is not None and index >= plan.issuances - plan.planted_many
        if planted:
            # Planted: one customer appeased by many different reps, through each of their channels.
            nth = index - (plan.issuances - plan.planted_many)
            customer = self._customer(plan.planted_customer)
            created = plan.now - 86400 * (1 + min(20, (plan.now - plan.start) / 86400 - 2) * rng.random())
            rep = plan.all_reps[(nth * 7) % len(plan.all_reps)]
            channel = list(customer.addresses)[nth % len(customer.addresses)]
            from_case = False
        else:
            customer = _pick(rng, plan.customer_cum, plan.customers)
            created = self.when(index)
            from_case = rng.random() < P_FROM_CASE
            if not from_case and plan.planted_reps and rng.random() < plan.planted_share:
                rep = _pick(rng, plan.planted_cum, plan.planted_reps)
            else:
                rep = plan.pools[customer.language].pick(rng)
            channel = self.channel(customer)
        incident = self.incident(created)
        offers = plan.offers[customer.currency]
        offer = _pick(rng, plan.habit_cum[customer.currency, incident], offers)
        path = "case" if from_case else _pick(rng, PATHS_CUM, PATHS)
        by_rule = (
            plan.rule is not None
            and not from_case
            and not planted
            and incident == "late_delivery"
            and customer.currency == plan.rule[1].currency
            and rng.random() < P_RULE
        )
        experiment = assigned = override = ""
        if by_rule:
            path, offer = "rule", plan.rule[1]
        elif (
            (exp := plan.experiment) is not None
            and not planted
            and (incident, customer.currency) == (exp.incident, exp.currency)
            and created >= exp.started
            and rng.random() < exp.share
        ):
            arm = rng.choice(exp.arms)
            experiment, assigned = exp.id, arm.arm
            if rng.random() < P_OVERRIDE and offer.arm != arm.arm:
                override = rng.choice(OVERRIDE_REASONS)  # the rep's habit won: `offer` stays
            else:
                offer = arm
        row = {
            "id": _uuid4(rng),
            "csr_id": None if by_rule else rep,
            "auto_rule_id": plan.rule[0] if by_rule else None,
            "case_id": None,
            "customer_id": customer.id,
            "offer_id": offer.id,
            "reason_code_id": plan.rule[2] if by_rule else rng.choice(plan.reasons[incident]),
            "note": "" if by_rule or rng.random() < 0.95 else "Customer has complained before",
            "apology_text": "",
            "channel": channel,
            "code_id": None,
            "status": Issuance.Status.ISSUED,
            "currency": customer.currency,
            "face_value_amount": offer.value,
            "cost_amount": offer.cost,
            "breached_limits": [],
            "complaint_started_at": None,
            "complaint_start_source": "",
            "created_at": created,
            "issued_at": created,
            "delivered_at": None,
            "decided_by_id": None,
            "decided_at": None,
            "decision_comment": "",
            "escalated_at": None,
            "voided_by_id": None,
            "voided_at": None,
            "void_reason": "",
        }
        if not by_rule and rng.random() < P_NEEDS_APPROVAL:
            self.approval(row, offer)
        # Whether it solves the incident: drawn once from the truth, for everything given;
        # a follow-up answer, if one comes, reports it.
        solved = rng.random() < true_solve(incident, offer.arm_class, customer.tier)
        follow_up = None
        if from_case:
            row["case_id"], follow_up = self.case_for_issuance(index, row, customer, incident, offer, solved)
        elif by_rule:
            row["complaint_started_at"] = created - _delay(rng, 3, 0.8, 0.5, 30)  # the merchant's event
            row["complaint_start_source"] = "event"
        elif rng.random() < 0.92:
            row["complaint_started_at"] = created - _complaint_delay(rng)
            # the rep's Start, or one in five from a telephony or helpdesk link
            row["complaint_start_source"] = "link" if index % 5 == 0 else "rep"
        redeemed = None
        if row["status"] == Issuance.Status.ISSUED:
            redeemed = self.give(index, row, customer, offer, solved)
        given_at = row["issued_at"] or row["created_at"]
        if row["status"] in (Issuance.Status.ISSUED, Issuance.Status.DELIVERED):
            if not from_case:
                follow_up = self.survey(
                    customer=customer,
                    at=row["delivered_at"] or given_at,
                    intervention=KIND_INTERVENTION[offer.kind],
                    issuance_id=row["id"],
                    solved=solved,
                )
            self.repurchase(customer, given_at, solved, redeemed)
        self.rows["issuances"].append(row)
        answered = follow_up is not None and follow_up["status"] == FollowUp.Status.ANSWERED
        self.rows["outcomes"].append(
            {
                "id": _uuid4(rng),
                "issuance_id": row["id"],
                "case_id": row["case_id"],
                "customer_id": customer.id,
                "incident_type": incident,
                "intervention": KIND_INTERVENTION[offer.kind],
                "offer_id": offer.id,
                "arm": offer.arm,
                "path": path,
                "currency": customer.currency,
                "cost_amount": offer.cost,
                "tier": customer.tier,
                "value_band": "low",  # the segment and repurchased_at: outcomes_derive
                "repeat_band": "first",
                "prior": "none",
                "experiment_id": experiment or None,
                "assigned_arm": assigned,
                "override_reason": override,
                "follow_up_id": follow_up["id"] if follow_up else None,
                "given_at": given_at,
                "answered_at": follow_up["answered_at"] if answered else None,
                "solved": follow_up["solved"] if answered else None,
                "csat": follow_up["csat"] if answered else None,
                "redeemed_at": redeemed,
                "repurchased_at": None,
            }
        )
        if rng.random() < P_CASE_WITHOUT_ISSUANCE and not planted:
            self.case_without_issuance(index)
        if rng.random() < P_ACKNOWLEDGED_FEEDBACK and not planted:
            self.acknowledged_feedback(index)

    def order(self, customer: CustomerInfo, *, at: float, total: int, reference: str | None = None) -> None:
        self.rows["orders"].append(
            {
                "customer_id": customer.id,
                "reference": reference or f"HO-{self.rng.getrandbits(80):020X}",
                "total_amount": total,
                "currency": customer.currency,
                "placed_at": at,
                "source": CustomerOrder.Source.EVENT,  # the shop's systems sent it
            }
        )

    def repurchase(self, customer: CustomerInfo, given: float, solved: bool, redeemed: float | None) -> None:
        """An order again soon after, likelier when the appeasement solved the incident
        (an order that used the code is one already)."""
        plan, rng = self.plan, self.rng
        window = plan.repurchase_window
        if redeemed is not None and redeemed <= given + window:
            return
        if rng.random() < P_REPURCHASE[solved]:
            at = given + 43200 + (window - 43200) * rng.random()
            if at < plan.now - 60:
                self.order(customer, at=at, total=rng.randrange(*ORDER_TOTAL[customer.currency]))

    def approval(self, row: dict, offer: OfferInfo) -> None:
        """Over a limit: waiting for a supervisor, rejected, or approved later."""
        plan, rng = self.plan, self.rng
        created = row["created_at"]
        limit = 10000
        row["breached_limits"] = [
            {
                "limit": "day_cost",  # data only: worded when shown, in the reader's language
                "limit_value": f"{limit / 100:.2f}",
                "attempted": f"{(limit + offer.cost + 100) / 100:.2f}",
                "over_by": f"{(offer.cost + 100) / 100:.2f}",
                "currency": offer.currency,
            }
        ]
        decided = created + _delay(rng, 1200, 1.0, 60, 86400)
        if decided > plan.now - 60 or (created > plan.now - 2 * 86400 and rng.random() < 0.5):
            row["status"] = Issuance.Status.PENDING_APPROVAL
            row["issued_at"] = None
            # Escalated already (APPROVAL_ESCALATE_AFTER), so no email goes out for history.
            row["escalated_at"] = min(created + 900, plan.now - 1)
            return
        row["decided_by_id"] = rng.choice(plan.supervisors)
        row["decided_at"] = decided
        if rng.random() < 0.25:
            row["status"] = Issuance.Status.REJECTED
            row["issued_at"] = None
            row["decision_comment"] = rng.choice(("Too much for this incident", "Already appeased this month"))
        else:
            row["issued_at"] = decided
            row["decision_comment"] = rng.choice(("", "OK", "Fine, loyal customer"))

    def give(self, index: int, row: dict, customer: CustomerInfo, offer: OfferInfo, solved: bool) -> float | None:
        """An issuance the customer got: its delivery, its code, the code's redemptions
        (likelier when it solved the incident) and their orders. Returns when the code
        was first used, if it was."""
        plan, rng = self.plan, self.rng
        issued = row["issued_at"]
        delivery = {
            "id": _uuid4(rng),
            "issuance_id": row["id"],
            "customer_id": customer.id,
            "kind": Delivery.Kind.APPEASEMENT,
            "channel": row["channel"],
            "address": customer.addresses[row["channel"]],
            "language": customer.language,
            "status": Delivery.Status.SENT,
            "attempts": 1,
            "next_attempt_at": issued,
            "provider_message_id": "",
            "failure_reason": "",
            "last_error": "",
            "requested_by_id": row["decided_by_id"] or row["csr_id"],
            "request_id": "",
            "created_at": issued,
            "sent_at": None,
            "delivered_at": None,
            "failed_at": None,
        }
        failed = rng.random() < P_DELIVERY_FAILS
        if failed:
            reason, status = rng.choice(FAILURES)
            attempts = settings.DELIVERY_MAX_ATTEMPTS if status == Delivery.Status.DEAD else 1
            failed_at = min(
                issued + (_delay(rng, 3, 0.5, 0.5, 30) if attempts == 1 else 1800 + 3600 * rng.random()), plan.now - 1
            )
            delivery.update(
                status=status,
                attempts=attempts,
                failure_reason=reason,
                last_error=reason.replace("_", " "),
                failed_at=failed_at,
                next_attempt_at=failed_at,
            )
            row["status"] = Issuance.Status.FAILED
        else:
            seconds = _delay(rng, 2.5, 0.6, 0.3, 60)
            if rng.random() < 0.02:  # a retry after a transient failure
                seconds += 30 + 870 * rng.random()
                delivery["attempts"] = 2
            sent = min(issued + seconds, plan.now - 1)
            delivery.update(sent_at=sent, next_attempt_at=sent, provider_message_id=f"msg_{rng.getrandbits(96):024x}")
            if row["channel"] in ("email", "sms") and rng.random() < 0.6:
                delivery["status"] = Delivery.Status.DELIVERED
                delivery["delivered_at"] = min(sent + _delay(rng, 4, 0.8, 0.5, 600), plan.now - 1)
            row["status"] = Issuance.Status.DELIVERED
            row["delivered_at"] = sent
        self.rows["deliveries"].append(delivery)
        voided = rng.random() < P_VOIDED
        if voided:
            row["status"] = Issuance.Status.VOIDED
            row["voided_by_id"] = rng.choice(plan.supervisors)
            row["voided_at"] = min(issued + 3600 * (1 + 47 * rng.random()), plan.now - 1)
            row["void_reason"] = rng.choice(("Given to the wrong customer", "Duplicate of an earlier appeasement"))
        if offer.soft:
            return None
        code = {
            "id": plan.code_base + index + 1,
            "offer_id": offer.id,
            "lookup_hash": rng.randbytes(32),
            "ciphertext": plan.ciphertext,
            "last4": "".join(rng.choices(ALPHABET, k=4)),
            "status": Code.Status.ISSUED,
            "currency": offer.currency,
            "initial_balance_amount": offer.value if offer.gift_card else None,
            "balance_amount": offer.value if offer.gift_card else None,
            "created_at": issued,
            "issued_at": issued,
            "expires_at": issued + offer.validity_days * 86400,
            "redeemed_at": None,
            "voided_at": None,
        }
        row["code_id"] = code["id"]
        if voided:
            code["status"] = Code.Status.VOIDED
            code["voided_at"] = row["voided_at"]
        redeemed = None
        if not voided and not failed and rng.random() < offer.used_share * REDEEM_FACTOR[solved]:
            redeemed = self.redeem(code, offer, customer)
        if code["status"] == Code.Status.ISSUED and code["expires_at"] <= plan.now:
            code["status"] = Code.Status.EXPIRED
        self.rows["codes"].append(code)
        return redeemed

    def redeem(self, code: dict, offer: OfferInfo, customer: CustomerInfo) -> float | None:
        """The code's uses, each an order of the customer's; returns the first that
        stood (a cancelled order's is reversed)."""
        plan, rng = self.plan, self.rng
        at = code["issued_at"] + _delay(rng, 6 * 86400, 1.0, 600, 400 * 86400)
        uses = 1 if not offer.gift_card else rng.choice((1, 1, 2, 2, 3))
        first = None
        for _use in range(uses):
            if at >= code["expires_at"] or at >= plan.now - 60:
                return first  # not yet, or never: the code expired first
            total = max(offer.min_order, 1000) + rng.randrange(0, 15000)
            if offer.gift_card:
                discount = min(code["balance_amount"], total)
            elif offer.percent:
                discount = min(total * offer.percent // 100, offer.max_discount or total)
            else:
                discount = min(offer.value, total)
            redemption = {
                "id": _uuid4(rng),
                "code_id": code["id"],
                "merchant_id": rng.choice(plan.merchants),
                "order_id": f"ORD-{rng.getrandbits(80):020X}",
                "order_total_amount": total,
                "discount_amount": discount,
                "currency": offer.currency,
                "balance_after_amount": None,
                "single_use": not offer.gift_card,
                "status": Redemption.Status.ACTIVE,
                "redeemed_at": at,
                "reversed_at": None,
                "reverse_reason": "",
            }
            if not offer.gift_card and rng.random() < 0.015:
                # The order was cancelled: the redemption reversed, the code usable again.
                reversed_at = at + 86400 * (1 + 9 * rng.random())
                if reversed_at < plan.now - 60:
                    redemption.update(
                        status=Redemption.Status.REVERSED, reversed_at=reversed_at, reverse_reason="order cancelled"
                    )
                    self.rows["redemptions"].append(redemption)
                    return first
            self.rows["redemptions"].append(redemption)
            self.order(customer, at=at, total=total, reference=redemption["order_id"])
            first = first or at
            if offer.gift_card:
                code["balance_amount"] -= discount
                redemption["balance_after_amount"] = code["balance_amount"]
                if code["balance_amount"] == 0:
                    code["status"] = Code.Status.REDEEMED
                    code["redeemed_at"] = at
                    return first
                at += _delay(rng, 10 * 86400, 1.0, 3600, 200 * 86400)
            else:
                code["status"] = Code.Status.REDEEMED
                code["redeemed_at"] = at
                return first
        return first

    # -- cases, feedback, follow-ups --

    def new_case(self, case_id: int, customer: CustomerInfo, created: float, incident: str, channel: str, source: str):
        plan, rng = self.plan, self.rng
        priority = _pick(rng, [0.08, 0.40, 1.0], ["critical", "high", "normal"])
        if incident == "service_outage" and priority == "normal":
            priority = "high"
        low, high = PRIORITY_SCORE[priority]
        first_seconds, resolution_seconds = plan.priorities[priority]
        anger = round(rng.random() ** 2, 3)
        order_reference = f"{customer.currency[:2]}-{rng.randrange(10**6):06d}"
        return {
            "id": case_id,
            "customer_id": customer.id,
            "source": source,
            "status": Case.Status.OPEN,
            "subject": SUBJECTS[incident][LANGUAGE_INDEX[customer.language]],
            "incident_type": incident,
            "incident_inferred": source in (Case.Source.WIDGET, Case.Source.SURVEY) and rng.random() < 0.8,
            "order_reference": order_reference,
            "channel": channel,
            "language": customer.language,
            "owner_team_id": plan.owner_teams.get(incident),
            "sentiment": round(-0.9 + 0.9 * rng.random(), 3),
            "anger": anger,
            "priority": priority,
            "priority_score": rng.randint(low, high),
            "age_points": 0,
            "score_reasons": [{"factor": "incident", "points": low, "params": {"incident_type": incident}}],
            "assigned_to_id": None,
            "claimed_at": None,
            "first_response_at": None,
            "first_response_due_at": created + first_seconds,
            "resolution_due_at": created + resolution_seconds,
            "first_response_breached_at": None,
            "resolution_breached_at": None,
            "first_response_breaches": 0,
            "resolution_breaches": 0,
            "escalated_at": None,
            "resolved_at": None,
            "resolved_by_id": None,
            "resolution_note": "",
            "intervention": "",
            "closed_at": None,
            "reopened_count": 0,
            "created_at": created,
        }

    def case_feedback(self, case: dict, *, rep: int | None) -> None:
        rng = self.rng
        source = case["source"]
        self.rows["feedback"].append(
            {
                "id": self.plan.feedback_base + (case["id"] - self.plan.case_base),
                "site_id": self.plan.site_id if source == Case.Source.WIDGET else None,
                "source": source,
                "customer_id": case["customer_id"],
                "case_id": case["id"],
                "rating": rng.choice((1, 1, 2, 2, 3)),
                "nps": rng.randint(0, 6) if source == Case.Source.SURVEY else None,
                "text": f"{case['subject']}. Order {case['order_reference']}.",
                "incident_type": case["incident_type"],
                "order_reference": case["order_reference"],
                "channel": case["channel"],
                "page_url": "https://shop.example.com/orders" if source == Case.Source.WIDGET else "",
                "language": case["language"],
                "sentiment": case["sentiment"],
                "anger": case["anger"],
                "disposition": Feedback.Disposition.CRITICAL
                if case["priority"] == "critical"
                else Feedback.Disposition.QUEUED,
                "created_by_id": rep if source == Case.Source.CSR else None,
                "created_at": case["created_at"],
            }
        )

    def work(self, case: dict, *, rep: int, claimed: float) -> None:
        case.update(status=Case.Status.CLAIMED, assigned_to_id=rep, claimed_at=claimed, first_response_at=claimed)
        if claimed > case["first_response_due_at"]:
            _breach(case, "first_response", case["first_response_due_at"])
        if self.rng.random() < 0.03:
            case["escalated_at"] = min(claimed + 600, self.plan.now - 1)

    def resolve(
        self, case: dict, *, rep: int, at: float, intervention: str, solved_share: float, solved: bool | None = None
    ) -> dict | None:
        """Resolved at `at` (if that has happened yet), then the follow-up and its answer
        (`solved`, when the truth is known already; else drawn from `solved_share`).
        Returns the follow-up."""
        plan, rng = self.plan, self.rng
        due = case["resolution_due_at"]
        if at >= plan.now - 60:
            if due < plan.now:
                _breach(case, "resolution", due)
            return None  # still being worked
        if at > due:
            _breach(case, "resolution", due)
        case.update(
            status=Case.Status.RESOLVED,
            resolved_at=at,
            resolved_by_id=rep,
            intervention=intervention,
            resolution_note=f"Resolved: {intervention.replace('_', ' ')}.",
        )
        if rng.random() < 0.10:  # surveyed recently (SURVEY_QUIET_PERIOD): no follow-up
            case.update(status=Case.Status.UNCONFIRMED, closed_at=at)
            return None
        customer = self._customer(case["customer_id"])
        if solved is None:
            solved = rng.random() < solved_share
        follow_up = self.survey(customer=customer, at=at, intervention=intervention, case_id=case["id"], solved=solved)
        if follow_up["status"] == FollowUp.Status.ANSWERED:
            if solved:
                case.update(status=Case.Status.CONFIRMED, closed_at=follow_up["answered_at"])
            elif case["reopened_count"] == 0:
                self.reopen(
                    case, rep=rep, at=follow_up["answered_at"], intervention=intervention, solved_share=solved_share
                )
            else:
                case.update(status=Case.Status.UNCONFIRMED, closed_at=follow_up["answered_at"])
        elif follow_up["status"] == FollowUp.Status.EXPIRED:
            case.update(status=Case.Status.UNCONFIRMED, closed_at=follow_up["expires_at"])
        return follow_up

    def survey(
        self,
        *,
        customer: CustomerInfo,
        at: float,
        intervention: str,
        solved: bool,
        case_id: int | None = None,
        issuance_id: int | None = None,
    ) -> dict:
        """The follow-up "was it solved?" for a case resolved at `at`, or for an
        appeasement given outside a case and delivered at `at`: scheduled, sent (its
        delivery), answered with `solved` and a CSAT, or expired. Outside a case, one in
        ten is skipped (surveyed recently, SURVEY_QUIET_PERIOD)."""
        plan, rng = self.plan, self.rng
        follow_up = {
            "id": _uuid4(rng),
            "case_id": case_id,
            "issuance_id": issuance_id,
            "customer_id": customer.id,
            "status": FollowUp.Status.SCHEDULED,
            "intervention": intervention,
            "due_at": at + plan.follow_up_delay,
            "expires_at": at + plan.follow_up_delay + plan.survey_validity,
            "delivery_id": None,
            "skip_reason": "",
            "sent_at": None,
            "answered_at": None,
            "solved": None,
            "csat": None,
            "comment": "",
            "created_at": at,
        }
        self.rows["follow_ups"].append(follow_up)
        if case_id is None and rng.random() < 0.10:
            follow_up.update(status=FollowUp.Status.SKIPPED, skip_reason="quiet_period")
            return follow_up
        sent = follow_up["due_at"] + _delay(rng, 20, 0.8, 1, 300)
        if sent >= plan.now - 60:
            return follow_up  # scheduled, not due yet
        delivery = {
            "id": _uuid4(rng),
            "issuance_id": None,
            "customer_id": customer.id,
            "kind": Delivery.Kind.FOLLOW_UP,
            "channel": customer.channel,
            "address": customer.addresses[customer.channel],
            "language": customer.language,
            "status": Delivery.Status.SENT,
            "attempts": 1,
            "next_attempt_at": sent,
            "provider_message_id": f"msg_{rng.getrandbits(96):024x}",
            "failure_reason": "",
            "last_error": "",
            "requested_by_id": None,
            "request_id": "",
            "created_at": sent - 1,
            "sent_at": sent,
            "delivered_at": None,
            "failed_at": None,
        }
        self.rows["deliveries"].append(delivery)
        follow_up.update(
            status=FollowUp.Status.SENT,
            sent_at=sent,
            delivery_id=delivery["id"],
            expires_at=sent + plan.survey_validity,
        )
        answered = sent + _delay(rng, 5 * 3600, 1.2, 60, 8 * 86400)
        if rng.random() < P_ANSWERED and answered < follow_up["expires_at"] and answered < plan.now - 60:
            csat = rng.choice((4, 5, 5, 5, 4, 3)) if solved else rng.choice((1, 1, 2, 2, 3))
            comment = "" if rng.random() < 0.8 else ("Thanks!" if solved else "Still not fixed")
            follow_up.update(
                status=FollowUp.Status.ANSWERED, answered_at=answered, solved=solved, csat=csat, comment=comment
            )
        elif follow_up["expires_at"] < plan.now:
            follow_up["status"] = FollowUp.Status.EXPIRED
        return follow_up

    def reopen(self, case: dict, *, rep: int, at: float, intervention: str, solved_share: float) -> None:
        """Not solved: back in the queue at high priority, worked and resolved again."""
        plan, rng = self.plan, self.rng
        first_seconds, resolution_seconds = plan.priorities["high"]
        case.update(
            status=Case.Status.OPEN,
            reopened_count=1,
            assigned_to_id=None,
            claimed_at=None,
            first_response_at=None,
            priority="high" if case["priority"] != "critical" else "critical",
            priority_score=max(case["priority_score"], 55),
            resolved_at=None,
            resolved_by_id=None,
            resolution_note="",
            first_response_due_at=at + first_seconds,
            resolution_due_at=at + resolution_seconds,
            first_response_breached_at=None,
            resolution_breached_at=None,
            closed_at=None,
        )
        case["score_reasons"] = [
            *case["score_reasons"],
            {"factor": "reopened", "points": 10, "params": {}},
        ]
        claimed = at + _delay(rng, 2 * 3600, 1.0, 60, 3 * 86400)
        if claimed >= plan.now - 60:
            if case["first_response_due_at"] < plan.now:
                _breach(case, "first_response", case["first_response_due_at"])
            return
        self.work(case, rep=rep, claimed=claimed)
        self.resolve(
            case,
            rep=rep,
            at=claimed + _delay(rng, 4 * 3600, 1.0, 300, 5 * 86400),
            intervention=intervention,
            solved_share=min(0.95, solved_share + 0.1),
        )

    def _customer(self, customer_id: int) -> CustomerInfo:
        return self.plan.customers[customer_id - self.plan.customers[0].id]

    def case_for_issuance(
        self, index: int, row: dict, customer: CustomerInfo, incident: str, offer: OfferInfo, solved: bool
    ) -> tuple[int, dict | None]:
        """The case this issuance was given from: live (the complaint seconds ago) or
        queued; and the follow-up whose first answer is this appeasement's outcome."""
        plan, rng = self.plan, self.rng
        created = row["created_at"]
        if rng.random() < P_LIVE_CASE:
            opened = created - _complaint_delay(rng)
            source = Case.Source.CSR if rng.random() < 0.7 else Case.Source.API
            claimed = opened + _delay(rng, 4, 0.5, 1, 9)
        else:
            opened = created - _delay(rng, 4 * 3600, 1.0, 1800, 36 * 3600)
            source = rng.choice((Case.Source.WIDGET, Case.Source.WIDGET, Case.Source.API, Case.Source.SURVEY))
            claimed = opened + (created - opened) * (0.2 + 0.6 * rng.random())
        row["complaint_started_at"] = opened  # case_issue: the clock started when the case opened
        row["complaint_start_source"] = "case"
        case = self.new_case(plan.case_base + index + 1, customer, opened, incident, row["channel"], source)
        rep = row["csr_id"]
        self.work(case, rep=rep, claimed=claimed)
        if row["status"] == Issuance.Status.ISSUED:
            intervention = Intervention.for_offer_kind(offer.kind)
        elif row["status"] == Issuance.Status.PENDING_APPROVAL:
            intervention = ""  # still claimed, waiting for the approval
        else:
            intervention = Intervention.EXPLANATION
        follow_up = None
        if intervention:
            solved_share = true_solve(incident, offer.arm_class, customer.tier)
            if row["status"] != Issuance.Status.ISSUED:  # rejected: words instead
                solved_share, solved = self.solved_share(incident, intervention), None
            resolved = (row["issued_at"] or created) + _delay(rng, 3 * 3600, 1.0, 120, 4 * 86400)
            follow_up = self.resolve(
                case, rep=rep, at=resolved, intervention=intervention, solved_share=solved_share, solved=solved
            )
        self.rows["cases"].append(case)
        self.case_feedback(case, rep=rep)
        return case["id"], (follow_up if row["status"] == Issuance.Status.ISSUED else None)

    def case_without_issuance(self, index: int) -> None:
        """A case that got words, a callback or nothing yet."""
        plan, rng = self.plan, self.rng
        customer = _pick(rng, plan.customer_cum, plan.customers)
        opened = self.when(index)
        incident = self.incident(opened)
        source = rng.choice((Case.Source.WIDGET, Case.Source.API, Case.Source.SURVEY, Case.Source.CSR))
        case = self.new_case(
            plan.case_base + plan.issuances + index + 1, customer, opened, incident, self.channel(customer), source
        )
        rep = plan.pools[customer.language].pick(rng)
        claimed = opened + _delay(rng, 1800, 1.2, 5, 2 * 86400)
        if claimed < plan.now - 60:
            self.work(case, rep=rep, claimed=claimed)
            intervention = Intervention.EXPLANATION if rng.random() < 0.8 else Intervention.CALLBACK
            resolved = claimed + _delay(rng, 2 * 3600, 1.0, 120, 3 * 86400)
            self.resolve(
                case,
                rep=rep,
                at=resolved,
                intervention=intervention,
                solved_share=self.solved_share(incident, intervention),
            )
        elif case["first_response_due_at"] < plan.now:
            _breach(case, "first_response", case["first_response_due_at"])
        self.rows["cases"].append(case)
        self.case_feedback(case, rep=rep)

    @staticmethod
    def solved_share(incident: str, intervention: str) -> float:
        soft = intervention in Intervention.soft()
        if incident == "staff_attitude":
            return 0.80 if soft else 0.70  # respect and an apology first
        if incident in ("overcharge", "billing"):
            return 0.50 if soft else 0.88  # money back, not words
        return 0.66 if soft else 0.82

    def acknowledged_feedback(self, index: int) -> None:
        plan, rng = self.plan, self.rng
        customer = _pick(rng, plan.customer_cum, plan.customers) if rng.random() < 0.8 else None
        language = customer.language if customer else "en"
        source = Case.Source.SURVEY if rng.random() < 0.5 else Case.Source.WIDGET
        self.rows["feedback"].append(
            {
                "id": plan.feedback_base + 2 * plan.issuances + index + 1,
                "site_id": plan.site_id if source == Case.Source.WIDGET else None,
                "source": source,
                "customer_id": customer.id if customer else None,
                "case_id": None,
                "rating": rng.choice((3, 4, 4, 5, 5, 5)),
                "nps": _pick(rng, [0.12, 0.30, 1.0], [rng.randint(0, 6), rng.randint(7, 8), rng.randint(9, 10)]),
                "text": rng.choice(PRAISE[language]),
                "incident_type": "",
                "order_reference": "",
                "channel": customer.channel if customer else "",
                "page_url": "https://shop.example.com/" if source == Case.Source.WIDGET else "",
                "language": language,
                "sentiment": round(0.2 + 0.8 * rng.random(), 3),
                "anger": 0.0,
                "disposition": Feedback.Disposition.ACKNOWLEDGED,
                "created_by_id": None,
                "created_at": self.when(index),
            }
        )


def make_chunk(plan: Plan, chunk: int) -> dict[str, list[dict]]:
    maker = ChunkMaker(plan, chunk)
    for index in range(chunk * CHUNK, min((chunk + 1) * CHUNK, plan.issuances)):
        maker.issuance(index)
    return maker.rows


# --- Writing rows: COPY text, or model instances ---------------------------------------


def _text(value: str) -> str:
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


def _timestamp(value: float) -> str:
    return datetime.fromtimestamp(value, UTC).isoformat()


def _cents(value: int) -> str:
    return f"{value // 100}.{value % 100:02d}"


COPY_FORMAT: dict[str, Callable] = {
    "i": str,
    "s": _text,
    "t": _timestamp,
    "m": _cents,
    "u": lambda value: f"{value:032x}",
    "b": lambda value: "\\\\x" + value.hex(),
    "j": lambda value: _text(json.dumps(value)),
    "B": lambda value: "t" if value else "f",
    "f": repr,
}


def copy_text(table: Table, rows: list[dict]) -> bytes:
    formats = [(name, COPY_FORMAT[kind]) for name, kind in table.columns]
    lines = []
    for row in rows:
        lines.append("\t".join("\\N" if row[name] is None else fmt(row[name]) for name, fmt in formats))
    return ("\n".join(lines) + "\n").encode() if lines else b""


# SQLite: the values as Django's SQLite backend stores them (naive UTC timestamps, UUIDs
# as 32 hex digits, decimals as text, JSON as text), for an executemany of plain INSERTs.
SQLITE_VALUE: dict[str, Callable] = {
    "t": lambda value: str(datetime.fromtimestamp(value, UTC).replace(tzinfo=None)),
    "m": lambda value: _cents(value),
    "u": lambda value: f"{value:032x}",
    "j": json.dumps,
    "B": int,
}


def sqlite_insert(table: Table, rows: list[dict]) -> None:
    """The rows as plain INSERTs (bulk_create builds a model instance and prepares every
    field of every row, three times the time). The table's columns are the ones COPY
    writes on PostgreSQL: every column without a default is in them."""
    if not rows:
        return
    converters = [(name, SQLITE_VALUE.get(kind)) for name, kind in table.columns]
    columns = ", ".join(f'"{name}"' for name, _kind in table.columns)
    placeholders = ", ".join("%s" for _column in table.columns)
    values = [
        [(convert(row[name]) if convert and row[name] is not None else row[name]) for name, convert in converters]
        for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table.model._meta.db_table} ({columns}) VALUES ({placeholders})",  # noqa: S608  (the model's names)
            values,
        )


def _chunk_copy_text(chunk: int) -> tuple[dict[str, bytes], dict[str, int]]:
    """In a worker process: one chunk as COPY text per table. Touches no database."""
    rows = make_chunk(_PLAN, chunk)
    return {name: copy_text(TABLES[name], rows[name]) for name in CHUNK_TABLES}, {
        name: len(rows[name]) for name in CHUNK_TABLES
    }


# --- The command ----------------------------------------------------------------------


class Command(BaseCommand):
    @property
    def help(self) -> str:  # gettext at parser creation: argparse cannot format lazy strings
        return _(
            "Generate realistic history for the reports: reps in teams, customers, offers, reason codes, "
            "issuances over the last DAYS days with weekday and hour seasonality, cases, feedback, follow-ups, "
            "deliveries, codes and redemptions, each appeasement's outcome (its segment, the answer to its "
            "follow-up, its redemption, whether the customer ordered again) drawn from a known table of solve "
            "rates, customers' orders, an automatic rule, a running experiment, and a few planted anomalies. "
            "Fast on PostgreSQL (COPY, worker "
            "processes); SQLite falls back to plain INSERTs and takes at most %(max)d issuances. The same seed "
            "gives the same history (relative to now) on an empty database. History codes are never shown or "
            "sent: each has a random lookup hash and, as ciphertext, the same placeholder token (the encrypted "
            "dummy code %(code)s), so resending a history appeasement would send that dummy code. Code and case "
            "ledgers, delivery attempts and budget counters are not generated."
        ) % {"max": SQLITE_MAX_ISSUANCES, "code": PLACEHOLDER_CODE}

    def add_arguments(self, parser):
        parser.add_argument(
            "--issuances", type=int, default=1_000_000, help=_("Issuances to make (default 1,000,000).")
        )
        parser.add_argument("--reps", type=int, default=200, help=_("Reps (CSR group) to make (default 200)."))
        parser.add_argument("--customers", type=int, default=100_000, help=_("Customers to make (default 100,000)."))
        parser.add_argument("--days", type=int, default=365, help=_("Spread over the last this many days (365)."))
        parser.add_argument("--seed", type=int, default=1, help=_("Random seed: the same seed, the same history."))
        parser.add_argument("--yes", action="store_true", help=_("Add to a database that has issuances already."))
        parser.add_argument(
            "--processes", type=int, default=None, help=_("Worker processes on PostgreSQL (default: one per core).")
        )

    def handle(self, *args, issuances, reps, customers, days, seed, yes, processes, **options) -> None:
        if issuances < 1 or reps < 1 or customers < 1 or days < 1:
            raise CommandError(_("--issuances, --reps, --customers and --days must be at least 1."))
        postgres = connection.vendor == "postgresql"
        if not postgres and issuances > SQLITE_MAX_ISSUANCES:
            raise CommandError(
                _(
                    "On %(vendor)s this command falls back to bulk_create, for small numbers only (at most "
                    "%(max)d issuances). Use PostgreSQL for more."
                )
                % {"vendor": connection.vendor, "max": SQLITE_MAX_ISSUANCES}
            )
        if not yes and (Issuance.objects.exists() or Customer.objects.exists()):
            raise CommandError(_("The database has customers or issuances already. Pass --yes to add to them."))
        if processes is None:
            processes = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        self.started = time.perf_counter()
        self.seconds: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        mode = "COPY" if postgres else "INSERT"
        self.stdout.write(
            f"generate_history: {issuances:,} issuances, {reps:,} reps, {customers:,} customers, last {days} days, "
            f"seed {seed}, {mode} on {connection.vendor}"
        )
        with transaction.atomic():
            if postgres:
                with connection.cursor() as cursor:
                    # Foreign keys checked as each COPY ends (not all at commit): the time
                    # lands on its table, and the pending-check queue stays small.
                    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            step = time.perf_counter()
            plan, planted = self.set_up(issuances=issuances, reps=reps, customers=customers, days=days, seed=seed)
            self.seconds["set-up (reps, offers, reasons)"] = time.perf_counter() - step
            self.write_customers(plan, postgres=postgres)
            parallel = postgres and processes > 1 and issuances >= PARALLEL_MIN_ISSUANCES
            self.write_chunks(plan, postgres=postgres, processes=processes if parallel else 0)
            step = time.perf_counter()
            self.derive(plan)
            self.seconds["segments, repurchases, customers' orders"] = time.perf_counter() - step
            if postgres:
                self.move_sequences()
        if postgres:
            step = time.perf_counter()
            with connection.cursor() as cursor:
                for name in ("customers", *CHUNK_TABLES):
                    cursor.execute(f"ANALYZE {TABLES[name].model._meta.db_table}")
            self.seconds["ANALYZE"] = time.perf_counter() - step
        # The reports read the rollups: bring them up to the new history (beat would, nightly).
        step = time.perf_counter()
        rollups_refresh(restate=True)
        self.seconds["rollups"] = time.perf_counter() - step
        self.report(planted)

    # -- reference data, through the ORM --

    def set_up(self, *, issuances: int, reps: int, customers: int, days: int, seed: int) -> tuple[Plan, dict]:
        rng = random.Random(f"{seed}:set-up")  # noqa: S311  (test data, not secrets)
        now_dt = timezone.now().replace(microsecond=0)
        now = now_dt.timestamp()
        bases = {
            name: (TABLES[name].model.objects.aggregate(top=models.Max("id"))["top"] or 0)
            for name in ("customers", "codes", "cases", "feedback")
        }
        salt = ":".join(str(value) for value in bases.values())

        teams = self.make_teams(reps)
        rep_rows, supervisors = self.make_staff(rng, teams=teams, reps=reps)
        offers = self.make_offers()
        reasons = self.make_reasons()
        merchants = [
            Merchant.objects.get_or_create(name=name)[0].pk for name in ("History web shop", "History mobile app")
        ]
        site = FeedbackSite.objects.filter(name="History web shop").first() or FeedbackSite.objects.create(
            name="History web shop"
        )
        owner_teams = dict(
            OwnerTeam.objects.filter(incident_profiles__isnull=False).values_list(
                "incident_profiles__incident_type", "pk"
            )
        )
        priorities = {
            level.priority: (level.first_response_seconds, level.resolution_seconds)
            for level in PriorityLevel.objects.all()
        }
        for priority, default in (("critical", (60, 14400)), ("high", (900, 86400)), ("normal", (14400, 259200))):
            priorities.setdefault(priority, default)

        customer_rows = self.customer_rows(
            rng, count=customers, base=bases["customers"], now=now, start=now - days * 86400
        )
        self.customer_table = customer_rows
        infos = [
            CustomerInfo(
                id=row["id"],
                language=row["language"],
                currency=row["currency"],
                channel=row["preferred_channel"],
                tier=row["tier"],
                addresses={
                    channel: address
                    for channel, address in (
                        ("email", row["email"]),
                        ("sms", row["phone"]),
                        ("chat", row["channel_handle"] if row["preferred_channel"] == "chat" else ""),
                        ("social", row["channel_handle"] if row["preferred_channel"] == "social" else ""),
                    )
                    if address
                },
            )
            for row in customer_rows
        ]
        # Skewed: some customers complain far more often than others (the busiest ~10×
        # the average; a heavier tail buries the planted customer among natural ones).
        customer_cum = list(itertools.accumulate(rng.lognormvariate(0, 0.6) for _ in infos))

        pools, planted_reps, planted_cum, planted_share = self.pools(rng, rep_rows)
        offer_infos = {currency: [offer for offer, _weight in items] for currency, items in offers.items()}
        offer_cum = {currency: list(itertools.accumulate(w for _o, w in items)) for currency, items in offers.items()}
        habit_cum = {
            (currency, incident): list(
                itertools.accumulate(w * HABITS.get(incident, {}).get(o.arm_class, 1.0) for o, w in items)
            )
            for currency, items in offers.items()
            for incident in INCIDENT_SHARE
        }
        rule = self.make_rule(reasons)
        experiment = self.make_experiment(now=now, days=days)
        slot_start, slot_cum, outage = self.slots(now=now, days=days)
        planted_many = min(PLANTED_MANY_REPS, issuances // 40)
        planted_customer = infos[len(infos) // 2].id if planted_many >= 4 and len(rep_rows) >= 4 else None
        plan = Plan(
            seed=seed,
            salt=salt,
            issuances=issuances,
            now=now,
            start=now - days * 86400,
            slot_start=slot_start,
            slot_cum=slot_cum,
            outage=outage,
            customers=infos,
            customer_cum=customer_cum,
            pools=pools,
            planted_reps=planted_reps,
            planted_cum=planted_cum,
            planted_share=planted_share,
            all_reps=[row.pk for row, _team in rep_rows],
            supervisors=supervisors,
            offers=offer_infos,
            offer_cum=offer_cum,
            reasons=reasons,
            owner_teams=owner_teams,
            priorities=priorities,
            merchants=merchants,
            habit_cum=habit_cum,
            rule=rule,
            experiment=experiment,
            site_id=site.pk,
            code_base=bases["codes"],
            case_base=bases["cases"],
            feedback_base=bases["feedback"],
            ciphertext=codes.encrypt(PLACEHOLDER_CODE),
            planted_customer=planted_customer,
            planted_many=planted_many if planted_customer else 0,
            repurchase_window=settings.REPURCHASE_WINDOW.total_seconds(),
        )
        usernames = {row.pk: row.username for row, _team in rep_rows}
        low_offer = Offer.objects.filter(pk=offer_infos["USD"][4].id).values_list("name", flat=True).first()
        planted = {
            "rep_rate": [usernames[pk] for pk in planted_reps],
            "customer_many_reps": planted_customer,
            "offer_low_redemption": low_offer,
        }
        return plan, planted

    def make_teams(self, reps: int) -> list[tuple[Team, str]]:
        count = max(1, min(len(TEAMS), round(reps / 20) if reps >= 40 else reps // 2 or 1))
        chosen = TEAMS[:count]
        return [(Team.objects.get_or_create(name=name)[0], language) for name, language in chosen]

    def make_staff(self, rng: random.Random, *, teams, reps: int):
        """Reps (CSR group) spread over the teams, one supervisor per team; unusable passwords."""
        user_model = get_user_model()
        taken = set(user_model.objects.values_list("username", flat=True))
        people = []

        def username(first: str, last: str) -> str:
            base = f"{_ascii(first)}.{_ascii(last)}".lower()
            for n in itertools.count(1):
                candidate = base if n == 1 else f"{base}{n}"
                if candidate not in taken:
                    taken.add(candidate)
                    return candidate
            raise AssertionError  # unreachable

        now = timezone.now()
        for index in range(reps):
            team, language = teams[index % len(teams)]
            first_names, last_names = (part.split() for part in NAMES[language])
            first, last = rng.choice(first_names), rng.choice(last_names)
            people.append((username(first, last), first, last, team, language, CSR))
        for team, language in teams:
            first_names, last_names = (part.split() for part in NAMES[language])
            first, last = rng.choice(first_names), rng.choice(last_names)
            people.append((username(first, last), first, last, team, language, SUPERVISOR))
        users = user_model.objects.bulk_create(
            [
                user_model(
                    username=name,
                    first_name=first,
                    last_name=last,
                    email=f"{name}@staff.example.com",
                    password=make_password(None),
                    is_staff=role == SUPERVISOR,
                    date_joined=now - timedelta(days=400 + rng.randrange(900)),
                )
                for name, first, last, _team, _language, role in people
            ]
        )
        if any(user.pk is None for user in users):  # a backend that returns no ids
            by_name = dict(user_model.objects.filter(username__in=[p[0] for p in people]).values_list("username", "pk"))
            for user in users:
                user.pk = by_name[user.username]
        groups = {role: Group.objects.get_or_create(name=role)[0] for role in (CSR, SUPERVISOR)}
        through = user_model.groups.through
        through.objects.bulk_create(
            [through(user_id=user.pk, group_id=groups[p[5]].pk) for user, p in zip(users, people, strict=True)]
        )
        StaffProfile.objects.bulk_create(
            [StaffProfile(user_id=user.pk, team=p[3], language=p[4]) for user, p in zip(users, people, strict=True)]
        )
        rep_rows = [(user, p[4]) for user, p in zip(users, people, strict=True) if p[5] == CSR]
        supervisors = [user.pk for user, p in zip(users, people, strict=True) if p[5] == SUPERVISOR]
        self.counts["users (reps and supervisors)"] = len(users)
        return rep_rows, supervisors

    def pools(self, rng: random.Random, rep_rows) -> tuple[dict[str, Pool], list[int], list[float], float]:
        """Reps per language, each a little more or less busy; and the planted reps, who
        give PLANTED_RATE_FACTOR times as many issuances per handled case as their peers.

        A planted rep handles a normal share s of the cases and, on top of that, gives a
        share q of all issuances outside cases, to any customer: so every peer loses the
        same share and none of them stands out. With p = P_FROM_CASE, S the planted reps'
        summed s and k = factor − 1, a peer gives p + (1−p)(1−q) per unit of s, a planted
        rep (1−p)·q/S more; q = k·S / ((1−p)(1 + k·S)) makes that k times a peer's.
        """
        weights = {user.pk: _delay(rng, 1.0, 0.15, 0.6, 1.6) for user, _language in rep_rows}
        pools, shares = {}, {}
        for language, language_share in LANGUAGE_SHARE.items():
            members = [user.pk for user, lang in rep_rows if lang == language] or [user.pk for user, _l in rep_rows]
            pools[language] = Pool(reps=members, cum=list(itertools.accumulate(weights[pk] for pk in members)))
            total = sum(weights[pk] for pk in members)
            for pk in members:
                shares[pk] = shares.get(pk, 0.0) + language_share * weights[pk] / total
        planted_count = 2 if len(rep_rows) >= 10 else (1 if len(rep_rows) >= 6 else 0)
        english = [user.pk for user, language in rep_rows if language == "en"]
        planted = english[:planted_count]
        if not planted:
            return pools, [], [], 0.0
        summed = sum(shares[pk] for pk in planted)
        extra = PLANTED_RATE_FACTOR - 1
        planted_share = extra * summed / ((1 - P_FROM_CASE) * (1 + extra * summed))
        return pools, planted, list(itertools.accumulate(shares[pk] for pk in planted)), planted_share

    def slots(self, *, now: float, days: int) -> tuple[list[float], list[float], tuple[float, float]]:
        """Hourly slots over the period with their weights: weekday, hour, growth, season, an outage."""
        zone = ZoneInfo(settings.TIME_ZONE)
        end = math.floor(now / 3600) * 3600 - 3600  # nothing in the last hour: deliveries have all settled
        start = end - days * 86400
        outage_start = end - max(1, round(days * 0.11)) * 86400
        outage_start -= outage_start % 86400 - 13 * 3600  # 13:00 UTC that day
        outage = (outage_start, outage_start + 6 * 3600)
        starts, cum, total = [], [], 0.0
        hour = start
        while hour < end:
            local = datetime.fromtimestamp(hour, zone)
            weight = WEEKDAY_FACTOR[local.weekday()] * HOUR_FACTOR[local.hour]
            weight *= 0.85 + 0.3 * (hour - start) / (end - start)  # the business grows
            if local.month == 12 or (local.month == 11 and local.day >= 20):
                weight *= 1.3  # peak season
            if outage[0] <= hour < outage[1]:
                weight *= 4
            total += weight
            starts.append(float(hour))
            cum.append(total)
            hour += 3600
        return starts, cum, outage

    def make_offers(self) -> dict[str, list[tuple[OfferInfo, float]]]:
        made: dict[str, list[tuple[OfferInfo, float]]] = {}
        self.offer_named: dict[str, OfferInfo] = {}  # by the name in OFFERS
        for currency, specs in OFFERS.items():
            for name, kind, value, cost, percent, max_discount, min_order, validity, weight, used, arm_class in specs:
                fields = {
                    "kind": kind,
                    "currency": currency,
                    "value_amount": Decimal(value).scaleb(-2),
                    "cost_amount": Decimal(cost).scaleb(-2),
                    "percent": Decimal(percent) if percent else None,
                    "max_discount_amount": Decimal(max_discount).scaleb(-2) if max_discount else None,
                    "min_order_amount": Decimal(min_order).scaleb(-2),
                    "validity_days": validity,
                    "generate_on_demand": True,
                    "low_inventory_threshold": 0,
                    "description_en": name,
                    "description_es": name,
                    "description_pt_br": name,
                }
                spec_name = name
                offer = Offer.objects.filter(name=name).first()
                if offer is not None and (offer.kind != kind or offer.currency != currency):
                    name = f"{name} (history)"
                    offer = Offer.objects.filter(name=name).first()
                if offer is None:
                    offer = Offer(name=name, description=name, **fields)
                    offer.full_clean()
                    offer.save()
                info = OfferInfo(
                    id=offer.pk,
                    kind=kind,
                    currency=currency,
                    value=round(offer.value_amount * 100),
                    cost=round(offer.cost_amount * 100),
                    percent=int(offer.percent) if offer.percent else None,
                    max_discount=round(offer.max_discount_amount * 100) if offer.max_discount_amount else None,
                    min_order=round(offer.min_order_amount * 100),
                    validity_days=offer.validity_days,
                    used_share=used,
                    arm_class=arm_class,
                    arm=arm_key(offer),
                )
                made.setdefault(currency, []).append((info, weight))
                self.offer_named[spec_name] = info
        return made

    def make_rule(self, reasons: dict[str, list[int]]) -> tuple[int, OfferInfo, int]:
        """The automatic rule some late deliveries' appeasements come from (its counters
        are brought up to its issuances at the end: rules_count)."""
        offer = self.offer_named["$5 credit"]
        reason = ReasonCode.objects.filter(code="hist-late", incident_type="late_delivery").first()
        reason_id = reason.pk if reason else reasons["late_delivery"][0]
        rule = AutoRule.objects.filter(name=RULE_NAME).first() or AutoRule.objects.create(
            name=RULE_NAME,
            event_type="delivery_delayed",
            condition_field="delay_minutes",
            condition_operator=">=",
            condition_value="180",
            offer_id=offer.id,
            reason_code_id=reason_id,
            budget_amount=Decimal("0"),
            per_customer_cap=1,
        )
        return rule.pk, offer, reason_id

    def make_experiment(self, *, now: float, days: int) -> ExperimentInfo | None:
        """The running experiment (EXPERIMENT_NAME), started EXPERIMENT_DAYS ago (at most
        half the history); none when another one runs for its incident type."""
        running = Experiment.objects.filter(incident_type=EXPERIMENT_INCIDENT, is_active=True).first()
        if running is not None and running.name != EXPERIMENT_NAME:
            return None
        offers = [self.offer_named[name] for name in EXPERIMENT_OFFERS]
        started = now - 86400 * min(EXPERIMENT_DAYS, max(1, days // 2))
        if running is None:
            running = Experiment.objects.create(
                name=EXPERIMENT_NAME,
                incident_type=EXPERIMENT_INCIDENT,
                method=Experiment.Method.RANDOM,
                share_percent=EXPERIMENT_SHARE,
                apology_arm=True,
            )
            running.offers.set([offer.id for offer in offers])
            Experiment.objects.filter(pk=running.pk).update(started_at=datetime.fromtimestamp(started, UTC))
        else:
            started = max(started, running.started_at.timestamp())
        apology = next(o for o in self.offer_named.values() if o.currency == offers[0].currency and o.kind == "apology")
        return ExperimentInfo(
            id=running.pk,
            incident=EXPERIMENT_INCIDENT,
            currency=offers[0].currency,
            started=started,
            share=running.share_percent / 100,
            arms=[*offers, apology],
        )

    def make_reasons(self) -> dict[str, list[int]]:
        reasons: dict[str, list[int]] = {}
        for code, incident, en, es, pt in REASONS:
            reason, _created = ReasonCode.objects.get_or_create(
                code=code,
                defaults={"incident_type": incident, "label": en, "label_en": en, "label_es": es, "label_pt_br": pt},
            )
            if reason.incident_type == incident:
                reasons.setdefault(incident, []).append(reason.pk)
        for incident in IncidentType.values:
            if incident not in reasons:
                raise CommandError(_("No reason code for %(incident)s.") % {"incident": incident})
        return reasons

    def customer_rows(self, rng: random.Random, *, count: int, base: int, now: float, start: float) -> list[dict]:
        languages, tiers, channels = list(LANGUAGE_SHARE), list(TIER_SHARE), list(CHANNEL_SHARE)
        language_cum = list(itertools.accumulate(LANGUAGE_SHARE.values()))
        tier_cum = list(itertools.accumulate(TIER_SHARE.values()))
        channel_cum = list(itertools.accumulate(CHANNEL_SHARE.values()))
        names = {language: tuple(part.split() for part in NAMES[language]) for language in NAMES}
        fewest_most = ORDERS_BY_TIER
        self.order_table: list[dict] = []
        rows = []
        for n in range(1, count + 1):
            pk = base + n
            language = _pick(rng, language_cum, languages)
            first, last = (rng.choice(part) for part in names[language])
            tier = _pick(rng, tier_cum, tiers)
            channel = _pick(rng, channel_cum, channels)
            if language == "pt-br":
                currency = "BRL" if rng.random() < 0.8 else "USD"
                phone = f"+55119{rng.randrange(10**8):08d}"
            elif language == "es":
                currency = "EUR" if rng.random() < 0.45 else "USD"
                phone = f"+346{rng.randrange(10**8):08d}"
            else:
                currency = "USD"
                phone = f"+1{rng.choice((212, 312, 415, 617, 646, 702, 305))}{rng.randrange(2, 10)}{rng.randrange(10**6):06d}"  # noqa: E501
            if channel != "sms" and rng.random() < 0.15:
                phone = ""
            handle = ""
            if channel == "chat":
                handle = f"wa:{phone or '+1415' + str(rng.randrange(10**7)).zfill(7)}"
            elif channel == "social":
                handle = f"@{_ascii(first).lower()}_{_ascii(last).lower()}{rng.randrange(1000)}"
            created = now - 86400 * (400 + rng.randrange(1100))
            # Their orders before the history, from sign-up on (the history adds the orders
            # that used a code and the orders again after an appeasement, so ordering
            # again shows what the appeasement did); the customer's figures are theirs.
            count = rng.randint(*fewest_most[tier])
            before = max(start, created + 86400)
            placed = sorted(created + (before - created) * rng.random() for _ in range(count))
            totals = [rng.randrange(*ORDER_TOTAL[currency]) for _ in placed]
            self.order_table.extend(
                {
                    "customer_id": pk,
                    "reference": f"HO-{pk:09d}-{n:03d}",
                    "total_amount": total,
                    "currency": currency,
                    "placed_at": at,
                    "source": CustomerOrder.Source.EVENT,
                }
                for n, (at, total) in enumerate(zip(placed, totals, strict=True), start=1)
            )
            rows.append(
                {
                    "id": pk,
                    "external_id": f"C{pk:09d}",
                    "name": f"{first} {last}",
                    "email": f"{_ascii(first)}.{_ascii(last)}{pk}@{MAIL_DOMAIN[language]}".lower(),
                    "phone": phone,
                    "preferred_channel": channel,
                    "channel_handle": handle,
                    "language": language,
                    "tier": tier,
                    "currency": currency,
                    "lifetime_value_amount": sum(totals),  # lifetime value: what they spent, as orders_derive
                    "orders_count": len(placed),
                    "total_spend_amount": sum(totals),
                    "last_order_at": placed[-1] if placed else None,
                    "consent_email": channel == "email" or rng.random() < 0.97,
                    "consent_sms": channel == "sms" or rng.random() < 0.9,
                    "consent_chat": channel == "chat" or rng.random() < 0.95,
                    "consent_social": channel == "social" or rng.random() < 0.9,
                    "created_at": created,
                    "updated_at": created + 86400 * rng.randrange(300),
                }
            )
        return rows

    # -- the big tables --

    def write_customers(self, plan: Plan, *, postgres: bool) -> None:
        table = TABLES["customers"]
        step = time.perf_counter()
        rows = self.customer_table
        orders = TABLES["orders"]
        if postgres:
            for start in range(0, len(rows), CHUNK):
                self.copy(table, copy_text(table, rows[start : start + CHUNK]))
            for start in range(0, len(self.order_table), 5 * CHUNK):
                self.copy(orders, copy_text(orders, self.order_table[start : start + 5 * CHUNK]))
        else:
            sqlite_insert(table, rows)
            sqlite_insert(orders, self.order_table)
        self.counts["customers"] = len(rows)
        self.counts["orders"] = len(self.order_table)
        self.seconds["customers"] = time.perf_counter() - step
        self.stdout.write(
            f"  customers: {len(rows):,}, their orders: {len(self.order_table):,}, in {self.seconds['customers']:.1f} s"
        )
        del self.customer_table, self.order_table

    def copy(self, table: Table, data: bytes) -> None:
        if not data:
            return
        columns = ", ".join(f'"{name}"' for name, _kind in table.columns)
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(f"COPY {table.model._meta.db_table} ({columns}) FROM STDIN") as copy,
        ):
            copy.write(data)

    def write_chunks(self, plan: Plan, *, postgres: bool, processes: int) -> None:
        chunks = math.ceil(plan.issuances / CHUNK)
        self.generation = 0.0
        step = time.perf_counter()
        done = 0
        for chunk, texts, counts in self.made_chunks(plan, chunks=chunks, postgres=postgres, processes=processes):
            for name in CHUNK_TABLES:
                started = time.perf_counter()
                if postgres:
                    self.copy(TABLES[name], texts[name])
                else:
                    sqlite_insert(TABLES[name], texts[name])
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
                self.counts[name] = self.counts.get(name, 0) + counts[name]
            done += min(CHUNK, plan.issuances - chunk * CHUNK)
            if done == plan.issuances or (chunk + 1) % 10 == 0:
                elapsed = time.perf_counter() - step
                self.stdout.write(
                    f"  issuances: {done:,} of {plan.issuances:,} ({done / plan.issuances:.0%}) in {elapsed:.1f} s, "
                    f"{done / elapsed:,.0f}/s"
                )

    def made_chunks(self, plan: Plan, *, chunks: int, postgres: bool, processes: int) -> Iterator[tuple]:
        """(chunk, rows or COPY text per table, counts), in chunk order. With processes,
        forked workers make them while this process writes the previous ones."""
        global _PLAN
        if not processes:
            for chunk in range(chunks):
                started = time.perf_counter()
                rows = make_chunk(plan, chunk)
                counts = {name: len(rows[name]) for name in CHUNK_TABLES}
                if postgres:
                    rows = {name: copy_text(TABLES[name], rows[name]) for name in CHUNK_TABLES}
                self.generation += time.perf_counter() - started
                yield chunk, rows, counts
            return
        # billiard, as in coupons.services.inventory: forked workers that inherit the plan
        # and never use the database connection; at most two chunks per worker in flight.
        import billiard

        _PLAN = plan
        try:
            with billiard.get_context("fork").Pool(processes) as pool:
                pending: deque = deque()
                for chunk in range(chunks):
                    pending.append((chunk, pool.apply_async(_chunk_copy_text, (chunk,))))
                    while pending and (chunk == chunks - 1 or len(pending) >= 2 * processes):
                        number, result = pending.popleft()
                        started = time.perf_counter()
                        texts, counts = result.get(timeout=600)
                        self.generation += time.perf_counter() - started
                        yield number, texts, counts
        finally:
            _PLAN = None

    def derive(self, plan: Plan) -> None:
        """What each row's neighbours decide, made from the written rows the way the
        product makes it when it writes one (so it holds across chunks):

        - each customer's orders_count, total spend, lifetime value (what they spent)
          and last order, from their orders;
        - each appeasement's segment when it was given (feedback.services.outcomes
          customer_segment): the value band of what the customer had spent before it;
          the repeat band of their cases opened in the REPEAT_WINDOW before it (its own
          case counted once); and how their last appeasement in RECOVERY_HISTORY_DAYS
          ended as known then (an answer that came later was not known: "unknown");
        - repurchased_at: their first order within REPURCHASE_WINDOW after it;
        - the automatic rule's counters, from its issuances.
        """
        customer_base = plan.customers[0].id - 1
        epoch = {
            "postgresql": "extract(epoch from {})",
            "sqlite": "((julianday({}) - 2440587.5) * 86400.0)",
        }[connection.vendor]
        outcome, case, order, customer = (
            model._meta.db_table for model in (AppeasementOutcome, Case, CustomerOrder, Customer)
        )
        mid, high = settings.RECOVERY_VALUE_BANDS
        if connection.vendor == "postgresql":

            def seconds(value: float) -> str:  # an interval
                return f"{value:.0f} seconds"

        else:

            def seconds(value: float) -> float:
                return value

        o_given = epoch.format(f"{outcome}.given_at")
        # Table names are the models', the rest parameters.
        segments = f"""
            UPDATE {outcome} SET
              value_band = coalesce((
                SELECT CASE WHEN sum(r.total_amount) >= %(high)s THEN 'high'
                            WHEN sum(r.total_amount) >= %(mid)s THEN 'mid' ELSE 'low' END
                FROM {order} r WHERE r.customer_id = {outcome}.customer_id AND r.placed_at < {outcome}.given_at
              ), 'low'),
              repeat_band = CASE (
                SELECT count(*) FROM {case} c
                WHERE c.customer_id = {outcome}.customer_id AND c.created_at <= {outcome}.given_at
                  AND {epoch.format("c.created_at")} >= {o_given} - %(repeat)s
                  AND ({outcome}.case_id IS NULL OR c.id <> {outcome}.case_id)
              ) WHEN 0 THEN 'first' WHEN 1 THEN 'second' ELSE 'many' END,
              prior = coalesce((
                SELECT CASE WHEN p.answered_at IS NULL OR p.answered_at > {outcome}.given_at THEN 'unknown'
                            WHEN p.solved THEN 'solved' ELSE 'not_solved' END
                FROM {outcome} p
                WHERE p.customer_id = {outcome}.customer_id AND p.given_at < {outcome}.given_at
                  AND {epoch.format("p.given_at")} >= {o_given} - %(history)s
                ORDER BY p.given_at DESC LIMIT 1
              ), 'none'),
              repurchased_at = (
                SELECT min(r.placed_at) FROM {order} r
                WHERE r.customer_id = {outcome}.customer_id AND r.placed_at > {outcome}.given_at
                  AND {epoch.format("r.placed_at")} <= {o_given} + %(window)s
              )
            WHERE customer_id > %(base)s
        """  # noqa: S608
        if connection.vendor == "postgresql":
            # The same, set-based: one sort of the customers' outcomes, cases and orders by
            # time and moving windows over it, instead of four look-ups per outcome (a
            # million outcomes: minutes). Frames by time: "< given_at" is "up to one
            # microsecond before it", PostgreSQL's resolution.
            segments = f"""
                WITH events AS (
                  SELECT customer_id, given_at AS at, 0 AS kind, id AS outcome_id, NULL::numeric AS total
                  FROM {outcome} WHERE customer_id > %(base)s
                  UNION ALL
                  SELECT customer_id, created_at, 1, NULL, NULL FROM {case} WHERE customer_id > %(base)s
                  UNION ALL
                  SELECT customer_id, placed_at, 2, NULL, total_amount FROM {order} WHERE customer_id > %(base)s
                ), windowed AS (
                  SELECT * FROM (
                    SELECT outcome_id,
                      sum(total) FILTER (WHERE kind = 2) OVER (w RANGE BETWEEN UNBOUNDED PRECEDING
                                                                 AND '1 microsecond' PRECEDING) AS spent,
                      count(*) FILTER (WHERE kind = 1) OVER (w RANGE BETWEEN %(repeat)s::interval PRECEDING
                                                               AND CURRENT ROW) AS cases,
                      min(at) FILTER (WHERE kind = 2) OVER (w RANGE BETWEEN '1 microsecond' FOLLOWING
                                                              AND %(window)s::interval FOLLOWING) AS again
                    FROM events WINDOW w AS (PARTITION BY customer_id ORDER BY at)
                  ) all_events WHERE outcome_id IS NOT NULL
                ), earlier AS (
                  SELECT id, count(*) OVER x AS n, last_value(solved) OVER x AS solved,
                         last_value(answered_at) OVER x AS answered_at
                  FROM {outcome} WHERE customer_id > %(base)s
                  WINDOW x AS (PARTITION BY customer_id ORDER BY given_at
                               RANGE BETWEEN %(history)s::interval PRECEDING AND '1 microsecond' PRECEDING)
                ), own AS (  -- its own case, counted in `cases` (the product leaves it out, adds one)
                  SELECT o.id, CASE WHEN c.created_at >= o.given_at - %(repeat)s::interval
                                     AND c.created_at <= o.given_at THEN 1 ELSE 0 END AS counted
                  FROM {outcome} o LEFT JOIN {case} c ON c.id = o.case_id WHERE o.customer_id > %(base)s
                )
                UPDATE {outcome} o SET
                  value_band = CASE WHEN w.spent >= %(high)s THEN 'high' WHEN w.spent >= %(mid)s THEN 'mid'
                                    ELSE 'low' END,
                  repeat_band = CASE w.cases - own.counted WHEN 0 THEN 'first' WHEN 1 THEN 'second'
                                ELSE 'many' END,
                  prior = CASE WHEN e.n = 0 THEN 'none'
                               WHEN e.answered_at IS NULL OR e.answered_at > o.given_at THEN 'unknown'
                               WHEN e.solved THEN 'solved' ELSE 'not_solved' END,
                  repurchased_at = w.again
                FROM windowed w JOIN earlier e ON e.id = w.outcome_id JOIN own ON own.id = w.outcome_id
                WHERE o.id = w.outcome_id
            """  # noqa: S608
        customers = f"""
            UPDATE {customer} SET
              orders_count = (SELECT count(*) FROM {order} r WHERE r.customer_id = {customer}.id),
              total_spend_amount = coalesce((SELECT sum(r.total_amount) FROM {order} r
                                             WHERE r.customer_id = {customer}.id), 0),
              lifetime_value_amount = coalesce((SELECT sum(r.total_amount) FROM {order} r
                                                WHERE r.customer_id = {customer}.id), 0),
              last_order_at = (SELECT max(r.placed_at) FROM {order} r WHERE r.customer_id = {customer}.id)
            WHERE id > %(base)s
        """  # noqa: S608
        with connection.cursor() as cursor:
            cursor.execute(
                segments,
                {
                    "high": float(high),
                    "mid": float(mid),
                    "repeat": seconds(REPEAT_WINDOW.total_seconds()),
                    "history": seconds(settings.RECOVERY_HISTORY_DAYS * 86400.0),
                    "window": seconds(plan.repurchase_window),
                    "base": customer_base,
                },
            )
            cursor.execute(customers, {"base": customer_base})
        if plan.rule is not None:
            given = Issuance.objects.filter(auto_rule_id=plan.rule[0]).exclude(
                status__in=[Issuance.Status.PENDING_APPROVAL, Issuance.Status.REJECTED]
            )
            totals = given.aggregate(n=models.Count("pk"), cost=models.Sum("cost_amount"))
            spent = totals["cost"] or Decimal("0")
            AutoRule.objects.filter(pk=plan.rule[0]).update(
                issued_count=totals["n"],
                spent_amount=spent,
                budget_amount=Greatest(models.F("budget_amount"), spent),
            )

    def move_sequences(self) -> None:
        """Ids were made here: move each identity sequence past the largest."""
        with connection.cursor() as cursor:
            for name in ("customers", "codes", "cases", "feedback"):
                table = TABLES[name].model._meta.db_table
                cursor.execute(
                    # The table name is the model's, not input.
                    f"SELECT setval(pg_get_serial_sequence(%s, 'id'), GREATEST((SELECT max(id) FROM {table}), 1))",  # noqa: S608
                    [table],
                )

    def report(self, planted: dict) -> None:
        total = time.perf_counter() - self.started
        self.stdout.write("table                              rows     seconds      rows/s")
        for name in ("customers", *CHUNK_TABLES):
            rows, seconds = self.counts.get(name, 0), self.seconds.get(name, 0.0)
            rate = f"{rows / seconds:11,.0f}" if seconds else ""
            self.stdout.write(f"{name:<28} {rows:>10,} {seconds:>11.1f} {rate}")
        for name in ("set-up (reps, offers, reasons)", "segments, repurchases, customers' orders", "ANALYZE"):
            if name in self.seconds:
                self.stdout.write(f"{name:<39} {self.seconds[name]:>11.1f}")
        self.stdout.write(f"{'waiting for rows to be made':<39} {self.generation:>11.1f}")
        self.stdout.write(f"{'total':<39} {total:>11.1f}")
        self.stdout.write(
            "planted anomalies: rep_rate: {reps}; customer_many_reps: {customer}; offer_low_redemption: {offer}".format(
                reps=", ".join(planted["rep_rate"]) or "-",
                customer=planted["customer_many_reps"] or "-",
                offer=planted["offer_low_redemption"] or "-",
            )
        )
        self.stdout.write(self.style.SUCCESS(f"History generated in {total:.1f} s."))


def _ascii(text: str) -> str:
    return re.sub(r"[^A-Za-z]", "", unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode())
