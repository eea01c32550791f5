"""Soak: the production processes under a steady mixed load, then the books are checked.

Run `bench/soak` from a clone where `make install` has been run. Needs PostgreSQL and
Redis on loopback. The database in DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/bench_soak) is DROPPED and re-created; the Redis
database in REDIS_URL (default redis://127.0.0.1:6379/10: the cache AND the Celery
broker of the processes started here) is FLUSHED.

1. Seeds through the services: reps with staff tokens under three limit policies
   (generous; a daily budget that runs out, then approval; the same, then refusal),
   customers, a coupon offer and a gift-card offer with generated codes, a pool of
   issued codes (`code_issue`, no issuance rows: a seeding shortcut) for the first
   minutes of redemptions, checkout merchants with API keys (each with its own client
   IP), a guessing merchant, feedback sites, and two automatic rules (one whose budget
   runs out during the run).
2. Starts the Procfile's own `web`, `worker` (twice) and `beat` commands with a
   production environment: DEBUG=0, fresh secrets, gunicorn through
   deploy/gunicorn.conf.py, PROMETHEUS_MULTIPROC_DIR, METRICS_TOKEN, NUM_PROXIES=1
   (requests carry X-Forwarded-For / X-Forwarded-Proto as a TLS proxy would send
   them), email over SMTP to a sink in this process (aiosmtpd).
3. An open-loop load at a fixed total rate (--rate per second; every request leaves
   at its scheduled time whatever the earlier answers took, and its latency counts
   from that time), for --warmup seconds (not reported), then --minutes:
   issuances 15 % (some replaying an Idempotency-Key), validations 30 %, redemptions
   25 % (replays, codes already used, two checkouts racing for one code, typos, a
   guesser who meets the guessing guard's 429, gift-card debits, reversals),
   feedback 20 %, events 10 % (duplicate ids, a reused id, some qualifying for an
   automatic rule). Codes the issuances send are fed back into the redemption pool.
4. RSS (and private memory) of every process at the start (after the warm-up) and at
   the end, sampled every 5 s in between; CPU of everything (bench/common.CpuMeter).
5. After the load: waits (bounded) for the outbox and the events to drain, scrapes
   /metrics once (prints the appease_* lines), then checks the books: every issuance
   delivered or dead, every event processed, no coupon with two active redemptions,
   every gift card's balance = initial − its active redemptions = the ledger's sum,
   every rep's counters within their limits and equal to their issuances, every
   automatic rule within its budget and equal to its issuances, every message received
   once; and no ERROR or CRITICAL line in the processes' logs. Exit status 1 if a check
   fails, or if any answer was a 5xx, an unexpected status or none at all (requests the
   generator could not send because too many were in flight are a warning: that is the
   machine's share, not the application's answer).

Everything started here is stopped here; bench/soak's trap is the backstop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter, defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench.deliver import environment, process, receivers  # also adds "celery worker" to the CPU kinds
from bench.redeem import free_port

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_soak"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/10"
VENV_BIN = common.ROOT / ".venv" / "bin"

# The mix, in percent of all requests (the brief's shares; reversals are taken from
# the redemptions' share and reported as their own endpoint).
MIX = {"issue": 15, "validate": 30, "redeem": 25, "feedback": 20, "events": 10}
ENDPOINTS = ["issue", "validate", "redeem", "reverse", "feedback", "events"]
PATHS = {
    "issue": "POST /api/v1/issuances",
    "validate": "POST /api/v1/codes/validate",
    "redeem": "POST /api/v1/redemptions",
    "reverse": "POST /api/v1/redemptions/{id}/reverse",
    "feedback": "POST /api/v1/feedback",
    "events": "POST /api/v1/events",
}
COUPON_COST, COUPON_VALUE = Decimal("3.00"), Decimal("5.00")
CARD_COST, CARD_VALUE = Decimal("20.00"), Decimal("25.00")
TIGHT_DAY_BUDGET = Decimal("600.00")  # the tight reps' daily cost budget: runs out mid-run
FLIGHT_RULE_BUDGET = Decimal("60.00")  # 20 coupons: the flight rule runs out early
DELAY_THRESHOLD = 180  # delivery_delayed delay_minutes >= this → the delivery rule gives a coupon
FLIGHT_THRESHOLD = 120
CHECKOUT_MERCHANTS = 8
FEEDBACK_SITES = 12  # 20 % of the load spread so no site key nears its 120/min throttle
TYPO_CAP = 6  # a checkout merchant's typos per guard window: below the guard's 10
MAX_IN_FLIGHT = 256
RSS_EVERY = 5.0


# --- Seeding ---------------------------------------------------------------------------


def seed(args) -> dict:
    from django.contrib.auth.models import Group, User
    from django.db import connection, transaction

    from appease.core.models import StaffAPIKey
    from appease.core.roles import CSR
    from appease.issuance.models import Customer, LimitBudget, LimitPolicy, ReasonCode, StaffProfile
    from coupons.models import Merchant, MerchantAPIKey, Offer
    from coupons.services.inventory import code_batch_generate, code_batch_request, code_issue
    from feedback.models import AutoRule, FeedbackSite

    started = time.perf_counter()
    total_seconds = args.minutes * 60 + args.warmup
    # Fresh coupons the load redeems (incl. races) before the issuances' own codes arrive.
    pool_coupons = max(500, math.ceil(args.rate * 0.14 * total_seconds * 0.8))
    pool_cards = max(100, math.ceil(args.rate * 0.02 * total_seconds))
    inventory = math.ceil(args.rate * 0.2 * total_seconds) + 1000

    def offer(**fields) -> Offer:
        made = Offer(currency="USD", validity_days=30, low_inventory_threshold=0, **fields)
        made.full_clean()
        made.save()
        return made

    coupon = offer(
        name="Soak: 5 off",
        kind=Offer.Kind.AMOUNT_OFF,
        description="5 off your next order",
        value_amount=COUPON_VALUE,
        cost_amount=COUPON_COST,
    )
    card = offer(
        name="Soak: 25 gift card",
        kind=Offer.Kind.GIFT_CARD,
        description="A 25 gift card",
        value_amount=CARD_VALUE,
        cost_amount=CARD_COST,
    )
    for made, count in ((coupon, inventory + pool_coupons), (card, inventory // 3 + pool_cards)):
        code_batch_generate(batch_id=code_batch_request(offer=made, quantity=count).pk)
    reason = ReasonCode.objects.create(code="late-delivery", label="Late delivery", incident_type="late_delivery")

    policies = {
        "generous": LimitPolicy.objects.create(name="Soak: generous", over_limit="approval"),
        "approval": LimitPolicy.objects.create(name="Soak: tight, then approval", over_limit="approval"),
        "refuse": LimitPolicy.objects.create(name="Soak: tight, then refused", over_limit="refuse"),
    }
    LimitBudget.objects.create(policy=policies["generous"], currency="USD", day_cost_amount=Decimal("1000000"))
    for name in ("approval", "refuse"):
        LimitBudget.objects.create(policy=policies[name], currency="USD", day_cost_amount=TIGHT_DAY_BUDGET)
    group, _created = Group.objects.get_or_create(name=CSR)
    reps = []
    for n in range(args.reps):
        kind = "generous" if n < args.reps * 0.6 else "approval" if n < args.reps * 0.8 else "refuse"
        user = User.objects.create_user(f"soak-rep{n:02d}", password=None, email=f"rep{n:02d}@soak.example")
        user.groups.add(group)
        StaffProfile.objects.create(user=user, policy=policies[kind])
        reps.append({"token": StaffAPIKey.objects.create_key(name="soak", user=user)[1], "policy": kind})

    Customer.objects.bulk_create(
        (
            Customer(
                name=f"Soak customer {n}",
                email=f"soak-c{n}@example.com",
                phone=f"+3462{n:07d}",
                external_id=f"soak-c{n}",
            )
            for n in range(args.customers)
        ),
        batch_size=5000,
    )
    customer_ids = list(Customer.objects.order_by("pk").values_list("pk", flat=True))

    merchants = []
    for n in range(CHECKOUT_MERCHANTS):
        merchant = Merchant.objects.create(name=f"Soak shop {n}")
        merchants.append(
            {
                "key": MerchantAPIKey.objects.create_key(name="checkout", merchant=merchant)[1],
                "ip": f"198.51.100.{n + 1}",
            }
        )
    guesser = Merchant.objects.create(name="Soak: leaked key")
    guesser_key = MerchantAPIKey.objects.create_key(name="checkout", merchant=guesser)[1]
    systems = Merchant.objects.create(name="Soak shop systems")
    events_key = MerchantAPIKey.objects.create_key(name="events", merchant=systems)[1]
    sites = [FeedbackSite.objects.create(name=f"Soak site {n}").public_key for n in range(FEEDBACK_SITES)]
    rules = [
        AutoRule.objects.create(
            name="Soak: delivery 3 h late",
            event_type="delivery_delayed",
            condition_field="delay_minutes",
            condition_operator=AutoRule.Operator.GTE,
            condition_value=str(DELAY_THRESHOLD),
            offer=coupon,
            reason_code=reason,
            budget_amount=Decimal("1000000"),
            per_customer_cap=1,
        ),
        AutoRule.objects.create(
            name="Soak: flight 2 h late",
            event_type="flight_delayed",
            condition_field="delay_minutes",
            condition_operator=AutoRule.Operator.GTE,
            condition_value=str(FLIGHT_THRESHOLD),
            offer=coupon,
            reason_code=reason,
            budget_amount=FLIGHT_RULE_BUDGET,
            per_customer_cap=1,
        ),
    ]

    # Codes already in customers' hands when the load starts (no issuance rows).
    coupons, cards = [], []
    for made, count, into in ((coupon, pool_coupons, coupons), (card, pool_cards, cards)):
        for _ in range(count):
            with transaction.atomic():
                into.append(code_issue(offer=made, reason="soak: issued before the run").plaintext)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    policies_count = Counter(rep["policy"] for rep in reps)
    print(
        f"seeded in {time.perf_counter() - started:.0f} s: {args.reps} reps ({policies_count['generous']} "
        f"generous, {policies_count['approval']} tight → approval, {policies_count['refuse']} tight → refused; "
        f"tight = {TIGHT_DAY_BUDGET} USD cost a day), "
        f"{args.customers:,} customers, {inventory + pool_coupons:,} coupon and {inventory // 3 + pool_cards:,} "
        f"gift-card codes, of which {pool_coupons:,} coupons and {pool_cards:,} gift cards issued up front; "
        f"{CHECKOUT_MERCHANTS} checkout merchants, a guessing one, {FEEDBACK_SITES} feedback sites, 2 automatic rules"
    )
    return {
        "coupon_offer": coupon.pk,
        "card_offer": card.pk,
        "reason": reason.code,
        "reps": reps,
        "customers": customer_ids,
        "merchants": merchants,
        "guesser": {"key": guesser_key, "ip": "203.0.113.66"},
        "events_key": events_key,
        "sites": sites,
        "coupons": coupons,
        "cards": cards,
        "rules": [rule.pk for rule in rules],
    }


# --- The load ----------------------------------------------------------------------------


@dataclass
class Sample:
    endpoint: str
    scenario: str
    status: int  # 0: no answer (transport error)
    outcome: str  # ok | expected | error
    latency_ms: float
    at: float  # scheduled time, seconds from the start of the phase
    note: str = ""


@dataclass
class Recorder:
    started: float
    samples: list[Sample] = field(default_factory=list)
    examples: dict[tuple, list[str]] = field(default_factory=lambda: defaultdict(list))
    shed: int = 0
    lateness_ms: list[float] = field(default_factory=list)
    loop_cpu: float = 0.0  # CPU seconds of the thread running the load (httpx, scenarios)
    process_cpu: float = 0.0  # CPU seconds of this whole process (+ SMTP sink, feeder, meters)

    def add(self, sample: Sample, detail: str = "") -> None:
        self.samples.append(sample)
        if sample.outcome == "error":
            key = (sample.endpoint, sample.scenario, sample.status, sample.note)
            if len(self.examples[key]) < 3:
                self.examples[key].append(detail[:300])


class CodePool:
    """Plaintexts handed out once (fresh codes), readable at random without taking."""

    def __init__(self, codes: list[str]) -> None:
        self.codes = list(codes)
        self.next = 0

    def take(self) -> str | None:
        if self.next >= len(self.codes):
            return None
        self.next += 1
        return self.codes[self.next - 1]

    def peek(self, rng: random.Random) -> str | None:
        if self.next >= len(self.codes):
            return None
        return self.codes[rng.randrange(self.next, len(self.codes))]

    def add(self, code: str) -> None:
        self.codes.append(code)  # list.append: safe from the feeder thread

    def left(self) -> int:
        return len(self.codes) - self.next


def pick(rng: random.Random, weighted: list[tuple[float, object]]):
    total = sum(weight for weight, _ in weighted)
    point = rng.random() * total
    for weight, item in weighted:
        point -= weight
        if point < 0:
            return item
    return weighted[-1][1]


def wrong_code(rng: random.Random) -> str:
    alphabet = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
    return "-".join("".join(rng.choice(alphabet) for _ in range(4)) for _ in range(4))


class Answer:
    """What one request got back."""

    def __init__(self, status_code: int, headers: dict[str, str], body: bytes) -> None:
        self.status_code = status_code
        self._headers = headers
        self.body = body

    @property
    def headers(self) -> dict[str, str]:
        return _Headers(self._headers)

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")

    def json(self):
        return json.loads(self.body)


class _Headers(dict):
    def get(self, key, default=None):
        return super().get(key.lower(), default)


class HttpClient:
    """A keep-alive HTTP/1.1 client on asyncio streams, for loopback only.

    httpx's pool costs several ms of CPU per request once many requests queue for its
    connections (measured here: 8 ms a request when the server answered slowly), on the
    same two cores as the server; this costs a fraction of a millisecond. A request that
    meets a kept-alive connection the server has just closed (gunicorn's keepalive, a
    worker recycled) before any byte of the answer is sent again on a new connection:
    the server never read it.
    """

    def __init__(self, port: int, *, max_connections: int, timeout: float) -> None:
        self.port = port
        self.timeout = timeout
        self.slots = asyncio.Semaphore(max_connections)
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.resent = 0
        self.opened = 0

    async def post(self, path: str, *, json: dict, headers: dict[str, str]) -> Answer:
        body = _json_dumps(json).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        ).encode()
        async with self.slots:
            return await asyncio.wait_for(self._send(head + body), self.timeout)

    async def _send(self, request: bytes) -> Answer:
        while True:
            reused = bool(self.idle)
            if reused:
                reader, writer = self.idle.pop()
            else:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                self.opened += 1
            try:
                writer.write(request)
                status_line = await reader.readline()
                if not status_line:
                    raise ConnectionResetError("closed before the answer")
            except (ConnectionError, OSError):
                writer.close()
                if reused:
                    self.resent += 1
                    continue
                raise
            try:
                answer, keep = await self._read(reader, status_line)
            except BaseException:
                writer.close()
                raise
            if keep:
                self.idle.append((reader, writer))
            else:
                writer.close()
            return answer

    @staticmethod
    async def _read(reader: asyncio.StreamReader, status_line: bytes) -> tuple[Answer, bool]:
        status = int(status_line.split()[1])
        headers = {}
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                if size == 0:
                    await reader.readline()
                    break
                body += await reader.readexactly(size)
                await reader.readline()
        else:
            body = await reader.read()
            return Answer(status, headers, body), False
        return Answer(status, headers, body), headers.get("connection", "").lower() != "close"

    async def close(self) -> None:
        for _reader, writer in self.idle:
            writer.close()
        self.idle.clear()


_json_dumps = json.dumps


class Load:
    """The scenarios. Runs in one asyncio loop (no locks needed) except the pools, which
    the feeder thread only appends to."""

    def __init__(self, *, client, seeded: dict, rng: random.Random) -> None:
        self.client = client
        self.seeded = seeded
        self.rng = rng
        self.recorder: Recorder | None = None
        self.coupons = CodePool(seeded["coupons"])
        self.cards = CodePool(seeded["cards"])
        self.cards_in_use: list[str] = []  # debited, balance left, not in flight
        self.cards_spent: list[str] = []
        self.redeemed: list[str] = []  # coupons redeemed and not reversed
        self.redemptions: list[dict] = []  # for replays and reversals
        self.issuances: list[dict] = []  # for replays
        self.events: list[dict] = []  # for duplicates
        self.typos: Counter = Counter()  # (merchant, window) → typos sent
        self.counter = 0
        self.tally: Counter = Counter()  # informational: what the answers said
        self.in_flight = 0

    # -- plumbing ----------------------------------------------------------------------

    def _id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter}-{uuid.uuid4().hex[:8]}"

    async def post(
        self,
        endpoint: str,
        scenario: str,
        path: str,
        body: dict,
        *,
        scheduled: float,
        ip: str,
        ok: set[int],
        expected: set[int] = frozenset(),
        headers: dict | None = None,
        check=None,
    ):
        recorder = self.recorder
        sent_headers = {"X-Forwarded-For": ip, "X-Forwarded-Proto": "https", **(headers or {})}
        try:
            response = await self.client.post(path, json=body, headers=sent_headers)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as error:  # no answer
            latency = (time.perf_counter() - scheduled) * 1000
            note = type(error).__name__
            recorder.add(
                Sample(endpoint, scenario, 0, "error", latency, scheduled - recorder.started, note), str(error)
            )
            return None
        latency = (time.perf_counter() - scheduled) * 1000
        status = response.status_code
        outcome, note = ("ok" if status in ok else "expected" if status in expected else "error"), ""
        if outcome == "ok" and check is not None:
            problem = check(response)
            if problem:
                outcome, note = "error", problem
        recorder.add(
            Sample(endpoint, scenario, status, outcome, latency, scheduled - recorder.started, note),
            response.text,
        )
        return response

    @staticmethod
    def _json(response) -> dict:
        try:
            return response.json()
        except ValueError:
            return {}

    def _merchant(self) -> tuple[int, dict]:
        n = self.rng.randrange(len(self.seeded["merchants"]))
        return n, self.seeded["merchants"][n]

    def _typo_merchant(self) -> tuple[int, dict] | None:
        """A checkout merchant that may still make a typo in this guard window."""
        window = int(time.time() // 60)
        for n in self.rng.sample(range(len(self.seeded["merchants"])), len(self.seeded["merchants"])):
            if self.typos[(n, window)] < TYPO_CAP:
                self.typos[(n, window)] += 1
                return n, self.seeded["merchants"][n]
        return None

    def _customer_email(self) -> str:
        return f"soak-c{self.rng.randrange(len(self.seeded['customers']))}@example.com"

    # -- one tick ----------------------------------------------------------------------

    async def tick(self, scheduled: float) -> None:
        self.in_flight += 1
        try:
            endpoint = pick(self.rng, [(share, name) for name, share in MIX.items()])
            await getattr(self, f"do_{endpoint}")(scheduled)
        finally:
            self.in_flight -= 1

    # -- issuances -------------------------------------------------------------------------

    async def do_issue(self, scheduled: float) -> None:
        rng = self.rng
        if self.issuances and rng.random() < 0.15:
            done = rng.choice(self.issuances)
            await self.post(
                "issue",
                "replay",
                "/api/v1/issuances",
                done["body"],
                scheduled=scheduled,
                ip="192.0.2.10",
                ok={201},
                headers={"Authorization": f"Token {done['token']}", "Idempotency-Key": done["key"]},
                check=lambda r, done=done: self._replayed(r, done["id"]),
            )
            return
        rep = rng.choice(self.seeded["reps"])
        offer = self.seeded["card_offer"] if rng.random() < 0.2 else self.seeded["coupon_offer"]
        body = {"offer_id": offer, "reason_code": self.seeded["reason"], "channel": "email", "note": "soak"}
        scenario = "new customer inline" if rng.random() < 0.12 else "customer_id"
        if scenario == "customer_id":
            body["customer_id"] = rng.choice(self.seeded["customers"])
        else:
            name = self._id("new")
            body["customer"] = {"name": f"Walk-in {name}", "email": f"{name}@example.com"}
        key = str(uuid.uuid4())
        response = await self.post(
            "issue",
            scenario,
            "/api/v1/issuances",
            body,
            scheduled=scheduled,
            ip="192.0.2.10",
            ok={201},
            # 403 limit_exceeded: a rep whose policy refuses once the day's budget is spent.
            expected={403} if rep["policy"] == "refuse" else set(),
            headers={"Authorization": f"Token {rep['token']}", "Idempotency-Key": key},
        )
        if response is not None and response.status_code == 201:
            answer = self._json(response)
            self.tally[f"issuance {answer.get('status')}"] += 1
            self.issuances.append({"token": rep["token"], "key": key, "body": body, "id": answer.get("id")})
            if len(self.issuances) > 2000:
                del self.issuances[:500]
        elif response is not None and response.status_code == 403:
            self.tally["issuance refused (limit)"] += 1

    @staticmethod
    def _replayed(response, first_id) -> str:
        if response.headers.get("Idempotent-Replayed") != "true":
            return "replay not marked Idempotent-Replayed"
        if Load._json(response).get("id") != first_id:
            return "replay answered another id"
        return ""

    # -- validations -----------------------------------------------------------------------

    async def do_validate(self, scheduled: float) -> None:
        rng = self.rng
        scenario = pick(
            rng, [(60, "issued code"), (22, "redeemed code"), (8, "gift card"), (5, "typo"), (5, "guesser")]
        )
        code = None
        if scenario == "issued code":
            code = self.coupons.peek(rng)
        elif scenario == "redeemed code" and self.redeemed:
            code = rng.choice(self.redeemed)
        elif scenario == "gift card":
            code = rng.choice(self.cards_in_use) if self.cards_in_use else self.cards.peek(rng)
        merchant = self._merchant()[1]
        ok, expected = {200}, set()
        if scenario == "guesser":
            merchant, code, expected = self.seeded["guesser"], wrong_code(rng), {429}
        elif scenario == "typo" or code is None:
            chosen = self._typo_merchant()
            if chosen is None:
                merchant, code, scenario, expected = self.seeded["guesser"], wrong_code(rng), "guesser", {429}
            else:
                merchant, code, scenario = chosen[1], wrong_code(rng), "typo"
        body = {"code": code, "order_total": "40.00", "currency": "USD"}
        response = await self.post(
            "validate",
            scenario,
            "/api/v1/codes/validate",
            body,
            scheduled=scheduled,
            ip=merchant["ip"],
            ok=ok,
            expected=expected,
            headers={"Authorization": f"Api-Key {merchant['key']}"},
            check=lambda r, scenario=scenario, code=code: self._validation(r, scenario, code),
        )
        if response is not None and response.status_code == 200:
            answer = self._json(response)
            self.tally[f"validation valid={answer.get('valid')} {answer.get('reason', '')}".strip()] += 1

    def _validation(self, response, scenario: str, code: str) -> str:
        answer = self._json(response)
        if scenario in ("typo", "guesser") and answer.get("reason") != "unknown":
            return "a wrong code did not answer unknown"
        # (unless its redemption was reversed meanwhile: reversal takes it off the list first)
        if scenario == "redeemed code" and answer.get("valid") and code in self.redeemed:
            return "a redeemed code answered valid"
        return ""

    # -- redemptions -----------------------------------------------------------------------

    async def do_redeem(self, scheduled: float) -> None:
        scenario = pick(
            self.rng,
            [
                (50, "fresh coupon"),
                (15, "gift card debit"),
                (12, "replay"),
                (8, "code already used"),
                (5, "race for one code"),
                (3, "typo"),
                (3, "guesser"),
                (4, "reverse"),
            ],
        )
        if scenario == "replay" and not self.redemptions:
            scenario = "fresh coupon"
        if scenario == "code already used" and not self.redeemed:
            scenario = "fresh coupon"
        if scenario == "reverse":
            await self.reverse(scheduled)
        elif scenario == "fresh coupon":
            code = self.coupons.take()
            if code is None:
                self.tally["coupon pool empty"] += 1
                code = self.redeemed[-1] if self.redeemed else wrong_code(self.rng)
                await self.redeem_once("pool empty: code already used", code, scheduled, ok={409})
                return
            await self.redeem_once("fresh coupon", code, scheduled, ok={201})
        elif scenario == "gift card debit":
            await self.debit(scheduled)
        elif scenario == "replay":
            done = self.rng.choice(self.redemptions)
            await self.post(
                "redeem",
                "replay",
                "/api/v1/redemptions",
                done["body"],
                scheduled=scheduled,
                ip=self.seeded["merchants"][done["merchant"]]["ip"],
                ok={201},
                headers={
                    "Authorization": f"Api-Key {self.seeded['merchants'][done['merchant']]['key']}",
                    "Idempotency-Key": done["key"],
                },
                check=lambda r, done=done: self._replayed(r, done["id"]),
            )
        elif scenario == "code already used":
            await self.redeem_once(
                "code already used", self.rng.choice(self.redeemed), scheduled, ok=set(), expected={409}
            )
        elif scenario == "race for one code":
            await self.race(scheduled)
        elif scenario == "typo":
            chosen = self._typo_merchant()
            if chosen is None:
                await self.guess(scheduled)
            else:
                await self.redeem_once(
                    "typo", wrong_code(self.rng), scheduled, ok=set(), expected={422}, merchant=chosen
                )
        else:
            await self.guess(scheduled)

    def _redeem_body(self, code: str, total: str = "40.00") -> dict:
        return {"code": code, "order_id": self._id("order"), "order_total": total, "currency": "USD"}

    async def redeem_once(
        self,
        scenario: str,
        code: str,
        scheduled: float,
        *,
        ok: set[int],
        expected: set[int] = frozenset(),
        merchant=None,
    ):
        n, chosen = merchant or self._merchant()
        body, key = self._redeem_body(code), str(uuid.uuid4())
        response = await self.post(
            "redeem",
            scenario,
            "/api/v1/redemptions",
            body,
            scheduled=scheduled,
            ip=chosen["ip"],
            ok=ok,
            expected=expected,
            headers={"Authorization": f"Api-Key {chosen['key']}", "Idempotency-Key": key},
        )
        if response is not None and response.status_code == 201:
            self._redeemed(code=code, merchant=n, key=key, body=body, answer=self._json(response), card=False)
        return response

    def _redeemed(self, *, code: str, merchant: int, key: str, body: dict, answer: dict, card: bool) -> None:
        if not card:
            self.redeemed.append(code)
            if len(self.redeemed) > 5000:
                del self.redeemed[:1000]
        self.redemptions.append(
            {"merchant": merchant, "key": key, "body": body, "id": answer.get("id"), "code": code, "card": card}
        )
        if len(self.redemptions) > 5000:
            del self.redemptions[:1000]

    async def debit(self, scheduled: float) -> None:
        """A part of a gift card's balance. The card is out of the list while in flight."""
        rng = self.rng
        if self.cards_in_use and rng.random() < 0.7:
            code = self.cards_in_use.pop(rng.randrange(len(self.cards_in_use)))
        else:
            code = self.cards.take()
            if code is None:
                self.tally["gift-card pool empty"] += 1
                await self.redeem_once("fresh coupon", self.coupons.take() or wrong_code(rng), scheduled, ok={201})
                return
        n, merchant = self._merchant()
        body, key = self._redeem_body(code, f"{rng.randint(500, 1500) / 100:.2f}"), str(uuid.uuid4())
        response = await self.post(
            "redeem",
            "gift card debit",
            "/api/v1/redemptions",
            body,
            scheduled=scheduled,
            ip=merchant["ip"],
            ok={201},
            headers={"Authorization": f"Api-Key {merchant['key']}", "Idempotency-Key": key},
        )
        self._after_debit(code, n, key, body, response)

    def _after_debit(self, code, merchant, key, body, response) -> None:
        if response is not None and response.status_code == 201:
            answer = self._json(response)
            self._redeemed(code=code, merchant=merchant, key=key, body=body, answer=answer, card=True)
            if answer.get("balance_remaining") in ("0.00", "0", None):
                self.cards_spent.append(code)
            else:
                self.cards_in_use.append(code)
        elif response is not None and response.status_code == 409:
            self.cards_spent.append(code)

    async def race(self, scheduled: float) -> None:
        """Two checkouts submit the same code at the same moment, with their own keys."""
        if self.rng.random() < 0.5:
            code = self.coupons.take()
            if code is None:
                return await self.redeem_once("pool empty: code already used", self.redeemed[-1], scheduled, ok={409})
            one, two = await asyncio.gather(
                self.redeem_once("race for one code", code, scheduled, ok={201}, expected={409}),
                self.redeem_once("race for one code", code, scheduled, ok={201}, expected={409}),
            )
            statuses = sorted(r.status_code if r is not None else 0 for r in (one, two))
            self.tally[f"coupon race answered {statuses}"] += 1
            if statuses == [201, 201]:
                self.recorder.add(
                    Sample(
                        "redeem",
                        "race for one code",
                        201,
                        "error",
                        0.0,
                        scheduled - self.recorder.started,
                        "one coupon redeemed twice",
                    ),
                    code[-4:],
                )
            return None
        code = self.cards.take()
        if code is None:
            return None
        results = []
        for _ in range(2):
            n, merchant = self._merchant()
            body, key = self._redeem_body(code, "15.00"), str(uuid.uuid4())
            results.append((n, key, body, merchant))
        responses = await asyncio.gather(
            *(
                self.post(
                    "redeem",
                    "race for one gift card",
                    "/api/v1/redemptions",
                    body,
                    scheduled=scheduled,
                    ip=merchant["ip"],
                    ok={201},
                    expected={409},
                    headers={"Authorization": f"Api-Key {merchant['key']}", "Idempotency-Key": key},
                )
                for _n, key, body, merchant in results
            )
        )
        spent = False
        for (n, key, body, _merchant), response in zip(results, responses, strict=True):
            if response is not None and response.status_code == 201:
                answer = self._json(response)
                self._redeemed(code=code, merchant=n, key=key, body=body, answer=answer, card=True)
                spent |= answer.get("balance_remaining") in ("0.00", "0")
        (self.cards_spent if spent else self.cards_in_use).append(code)
        return None

    async def guess(self, scheduled: float) -> None:
        guesser = self.seeded["guesser"]
        await self.post(
            "redeem",
            "guesser",
            "/api/v1/redemptions",
            self._redeem_body(wrong_code(self.rng)),
            scheduled=scheduled,
            ip=guesser["ip"],
            ok=set(),
            expected={422, 429},
            headers={"Authorization": f"Api-Key {guesser['key']}", "Idempotency-Key": str(uuid.uuid4())},
        )

    async def reverse(self, scheduled: float) -> None:
        """The order was cancelled. A reversed coupon can be redeemed again: back to the pool."""
        candidates = [item for item in self.redemptions[-500:] if not item.get("reversed") and item["id"]]
        if not candidates:
            return await self.redeem_once(
                "fresh coupon", self.coupons.take() or wrong_code(self.rng), scheduled, ok={201}
            )
        done = self.rng.choice(candidates)
        done["reversed"] = True
        if not done["card"] and done["code"] in self.redeemed:
            self.redeemed.remove(done["code"])  # before the request: never sent as "already used" meanwhile
        merchant = self.seeded["merchants"][done["merchant"]]
        response = await self.post(
            "reverse",
            "gift card" if done["card"] else "coupon",
            f"/api/v1/redemptions/{done['id']}/reverse",
            {"reason": "order cancelled"},
            scheduled=scheduled,
            ip=merchant["ip"],
            ok={200},
            headers={"Authorization": f"Api-Key {merchant['key']}"},
            check=lambda r: "" if self._json(r).get("status") == "reversed" else "not reversed",
        )
        if response is not None and response.status_code == 200 and not done["card"]:
            self.coupons.add(done["code"])
        return None

    # -- feedback --------------------------------------------------------------------------

    TEXTS = [
        "My order is late, still waiting after a week.",
        "The box arrived crushed and the mug inside was broken!!",
        "The courier was rude and hung up on me. Unacceptable!",
        "I was charged twice for the same order, please refund me.",
        "Wrong size again, not what I ordered.",
        "Great service, thanks a lot.",
        "Everything arrived on time, very happy.",
        "",
    ]
    INCIDENTS = ["late_delivery", "damaged_item", "wrong_item", "overcharge", "staff_attitude", "other"]

    async def do_feedback(self, scheduled: float) -> None:
        rng = self.rng
        found = rng.random() < 0.5
        email = self._customer_email() if found else f"soak-fresh-{rng.randrange(5000)}@example.com"
        body = {
            "site_key": rng.choice(self.seeded["sites"]),
            "rating": rng.randint(1, 5),
            "text": rng.choice(self.TEXTS),
            "email": email,
            "incident_type": rng.choice(self.INCIDENTS) if rng.random() < 0.5 else "",
        }
        ip = f"10.{rng.randrange(20)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        response = await self.post(
            "feedback",
            "known customer" if found else "new or returning address",
            "/api/v1/feedback",
            body,
            scheduled=scheduled,
            ip=ip,
            ok={201},
        )
        if response is not None and response.status_code == 201:
            answer = self._json(response)
            self.tally[f"feedback {answer.get('disposition')}"] += 1

    # -- events ----------------------------------------------------------------------------

    async def do_events(self, scheduled: float) -> None:
        rng = self.rng
        scenario = pick(
            rng,
            [
                (50, "below the threshold"),
                (20, "qualifies (delivery)"),
                (10, "qualifies (flight, small budget)"),
                (15, "duplicate id"),
                (5, "id reused for another type"),
            ],
        )
        if scenario in ("duplicate id", "id reused for another type") and not self.events:
            scenario = "below the threshold"
        ok, expected = {202}, set()
        if scenario == "duplicate id":
            body, ok = rng.choice(self.events), {200}
        elif scenario == "id reused for another type":
            body = {**rng.choice(self.events), "event_type": "order_cancelled"}
            ok, expected = set(), {409}
        else:
            event_id = self._id("evt")
            email = self._customer_email() if rng.random() < 0.3 else f"{event_id}@example.com"
            if scenario == "below the threshold":
                kind, delay = "delivery_delayed", rng.randint(10, DELAY_THRESHOLD - 10)
            elif scenario == "qualifies (delivery)":
                kind, delay = "delivery_delayed", rng.randint(DELAY_THRESHOLD, 600)
            else:
                kind, delay = "flight_delayed", rng.randint(FLIGHT_THRESHOLD, 400)
            body = {
                "event_id": event_id,
                "event_type": kind,
                "data": {
                    "delay_minutes": delay,
                    "order_reference": f"ORD-{event_id}",
                    "customer": {"email": email, "name": "Event customer"},
                },
            }
        response = await self.post(
            "events",
            scenario,
            "/api/v1/events",
            body,
            scheduled=scheduled,
            ip="198.51.100.200",
            ok=ok,
            expected=expected,
            headers={"Authorization": f"Api-Key {self.seeded['events_key']}"},
            check=(lambda r: "" if self._json(r).get("duplicate") is True else "not marked duplicate")
            if scenario == "duplicate id"
            else None,
        )
        if response is not None and response.status_code == 202:
            self.events.append(body)
            if len(self.events) > 2000:
                del self.events[:500]


async def drive(load: Load, *, rate: float, seconds: float, recorder: Recorder, wait: bool) -> None:
    """One request every 1/rate s, whatever the answers take (open loop)."""
    load.recorder = recorder
    tasks: set[asyncio.Task] = set()
    start = recorder.started
    n = 0
    while True:
        scheduled = start + n / rate
        if scheduled - start >= seconds:
            break
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        recorder.lateness_ms.append((time.perf_counter() - scheduled) * 1000)
        n += 1
        if load.in_flight >= MAX_IN_FLIGHT:
            recorder.shed += 1
            continue
        task = asyncio.create_task(load.tick(scheduled))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks and wait:
        await asyncio.wait(tasks, timeout=60)


def feeder(load: Load, stop: threading.Event) -> threading.Thread:
    """Codes the issuances (and the rules) give reach the redemption pool: as customers
    receive their emails, they come to the checkout with them."""

    def run() -> None:
        from datetime import timedelta

        from django.db import connection
        from django.utils import timezone

        from coupons import codes
        from coupons.models import Code, Offer

        seen: set[int] = set()
        while not stop.wait(3):
            since = timezone.now() - timedelta(seconds=60)
            rows = Code.objects.filter(issuance__isnull=False, issued_at__gte=since).values_list(
                "pk", "ciphertext", "offer__kind"
            )
            for pk, ciphertext, kind in rows:
                if pk in seen:
                    continue
                seen.add(pk)
                (load.cards if kind == Offer.Kind.GIFT_CARD else load.coupons).add(codes.decrypt(ciphertext))
        connection.close()

    thread = threading.Thread(target=run, name="feeder", daemon=True)
    thread.start()
    return thread


async def run_load(*, port: int, seeded: dict, args, phases: list[tuple[str, float, Recorder]], on_load, on_phase_end):
    """The phases back to back, one Load (its pools and memories carry over)."""
    client = HttpClient(port, max_connections=64, timeout=30)
    try:
        load = Load(client=client, seeded=seeded, rng=random.Random(args.seed))
        on_load(load)
        for name, seconds, recorder in phases:
            loop_cpu, process_cpu = time.thread_time(), time.process_time()
            recorder.started = time.perf_counter()
            await drive(load, rate=args.rate, seconds=seconds, recorder=recorder, wait=name == phases[-1][0])
            recorder.loop_cpu = time.thread_time() - loop_cpu
            recorder.process_cpu = time.process_time() - process_cpu
            on_phase_end(name)
        return load
    finally:
        await client.close()


# --- Memory ------------------------------------------------------------------------------


def _memory(pid: int) -> tuple[int, int] | None:
    """(RSS, private) in kB: VmRSS, and Private_Clean + Private_Dirty (USS)."""
    try:
        rss = next(
            int(line.split()[1])
            for line in Path(f"/proc/{pid}/status").read_text().splitlines()
            if line.startswith("VmRSS:")
        )
        private = 0
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                private += int(line.split()[1])
        return rss, private
    except (OSError, StopIteration, ValueError):
        return None


class MemoryWatch:
    """Every process of the roots' trees, sampled every few seconds."""

    def __init__(self, roots: dict[str, int], database: str) -> None:
        self.roots = roots
        self.database = database
        self.seen: dict[int, dict] = {}
        self.snapshots: dict[str, dict[int, tuple[int, int]]] = {}
        # (seconds since t0, RSS by role, machine busy CPU s since the last sample, ours since the last sample)
        self.timeline: list[tuple[float, dict[str, int], float, float]] = []
        self.t0 = time.monotonic()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._busy = common._machine_busy_seconds()
        self._cpu: dict[int, float] = {}

    def _ours_cpu(self, processes) -> float:
        """CPU seconds our processes (this tree, the database's backends) used since the
        last sample, process by process, so processes that come and go add up."""
        used, now = 0.0, {}
        for pid in common._ours(processes, self.database):
            cpu = processes[pid][1]
            now[pid] = cpu
            used += cpu - self._cpu.get(pid, 0.0 if self._cpu else cpu)
        self._cpu = now
        return used

    def _tree(self, processes) -> dict[int, str]:
        roles = {}
        for name, root in self.roots.items():
            if root in processes:
                roles[root] = {"web": "gunicorn master"}.get(name, name if name == "beat" else f"celery {name} (main)")
            for pid, (ppid, _cpu, _cmd) in processes.items():
                if ppid == root:
                    roles[pid] = "gunicorn worker" if name == "web" else f"celery {name} (pool child)"
        return roles

    def sample(self, snapshot: str | None = None) -> None:
        now = time.monotonic() - self.t0
        taken = {}
        totals: Counter = Counter()
        processes = common._processes()
        busy = common._machine_busy_seconds()
        machine, self._busy = busy - self._busy, busy
        ours = self._ours_cpu(processes)
        for pid, role in self._tree(processes).items():
            memory = _memory(pid)
            if memory is None:
                continue
            taken[pid] = memory
            totals[role.split(" (")[0] if role.startswith("celery") else role] += memory[0]
            with self._lock:
                entry = self.seen.setdefault(pid, {"role": role, "first": now, "max": 0})
                entry["last"] = now
                entry["last_memory"] = memory
                entry["max"] = max(entry["max"], memory[0])
        self.timeline.append((now, dict(totals), machine, ours))
        if snapshot:
            self.snapshots[snapshot] = taken

    def start(self) -> None:
        def run() -> None:
            while not self._stop.wait(RSS_EVERY):
                self.sample()

        self._thread = threading.Thread(target=run, name="rss", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


# --- Processes -----------------------------------------------------------------------------


def procfile() -> dict[str, str]:
    lines = (common.ROOT / "Procfile").read_text().splitlines()
    return {
        name.strip(): command.strip()
        for name, _, command in (line.partition(":") for line in lines)
        if command and not name.startswith("#")
    }


def http_get(port: int, path: str, headers: dict | None = None, timeout: float = 5) -> tuple[int, str]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={"X-Forwarded-Proto": "https", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (loopback)
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def ready(port: int) -> bool:
    try:
        return http_get(port, "/readyz", timeout=2)[0] == 200
    except OSError:
        return False


# --- Report ------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] if ordered else float("nan")


def endpoint_table(samples: list[Sample], seconds: float) -> list[str]:
    lines = [
        "| endpoint | requests | /s | ok | expected 4xx | errors | error rate | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for endpoint in [*ENDPOINTS, "all"]:
        mine = [s for s in samples if endpoint in ("all", s.endpoint)]
        if not mine:
            continue
        latencies = [s.latency_ms for s in mine if s.status]
        ok = sum(s.outcome == "ok" for s in mine)
        expected = sum(s.outcome == "expected" for s in mine)
        errors = sum(s.outcome == "error" for s in mine)
        lines.append(
            f"| {PATHS.get(endpoint, '**all**')} | {len(mine):,} | {len(mine) / seconds:.1f} | {ok:,} | {expected:,} "
            f"| {errors:,} | {errors / len(mine):.2%} | {percentile(latencies, 50):.0f} "
            f"| {percentile(latencies, 95):.0f} | {percentile(latencies, 99):.0f} "
            f"| {max(latencies, default=float('nan')):.0f} |"
        )
    return lines


def status_lines(samples: list[Sample]) -> list[str]:
    lines = []
    for endpoint in ENDPOINTS:
        by = Counter((s.scenario, s.status, s.outcome) for s in samples if s.endpoint == endpoint)
        if not by:
            continue
        marks = {"ok": "", "expected": " (expected)", "error": " (ERROR)"}
        parts = [
            f"{scenario} {status or 'no answer'}{marks[outcome]} ×{n:,}"
            for (scenario, status, outcome), n in sorted(by.items(), key=lambda item: (item[0][0], item[0][1]))
        ]
        lines.append(f"  {endpoint}: " + "; ".join(parts))
    return lines


def minute_table(samples: list[Sample], seconds: float, watch: MemoryWatch, start: float) -> list[str]:
    """Latency per minute, beside the CPU share of the two cores the soak's processes and
    every other process took in that minute (the machine is shared)."""
    cores = len(os.sched_getaffinity(0))
    lines = [
        "| minute | requests | errors | p50 ms | p95 ms | p99 ms | soak's CPU | other processes' CPU |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for minute in range(math.ceil(seconds / 60)):
        mine = [s for s in samples if minute * 60 <= s.at < (minute + 1) * 60]
        latencies = [s.latency_ms for s in mine if s.status]
        window = [
            (machine, ours)
            for at, _totals, machine, ours in watch.timeline
            if start + minute * 60 < at <= start + (minute + 1) * 60
        ]
        span = cores * RSS_EVERY * max(1, len(window))
        ours = sum(o for _m, o in window)
        others = max(0.0, sum(m for m, _o in window) - ours)
        lines.append(
            f"| {minute + 1} | {len(mine):,} | {sum(s.outcome == 'error' for s in mine)} "
            f"| {percentile(latencies, 50):.0f} | {percentile(latencies, 95):.0f} | {percentile(latencies, 99):.0f} "
            f"| {ours / span:.0%} | {others / span:.0%} |"
        )
    return lines


def memory_table(watch: MemoryWatch, start: float, end: float) -> tuple[list[str], dict]:
    """Per process: RSS and private memory at the start and the end (or when it exited /
    when it was started), and the growth."""
    before, after = watch.snapshots.get("start", {}), watch.snapshots.get("end", {})
    lines = [
        "| process | pid | RSS start MB | RSS end MB | growth MB | private start → end MB | max RSS MB | note |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    order = [
        "gunicorn master",
        "gunicorn worker",
        "celery worker1 (main)",
        "celery worker1 (pool child)",
        "celery worker2 (main)",
        "celery worker2 (pool child)",
        "beat",
    ]
    growth_by_role: dict[str, list[float]] = defaultdict(list)
    for pid, entry in sorted(
        watch.seen.items(),
        key=lambda item: (order.index(item[1]["role"]) if item[1]["role"] in order else 99, item[1]["first"]),
    ):
        if entry["last"] < start - RSS_EVERY:  # gone before the measured run
            continue
        first = before.get(pid)
        last = after.get(pid)
        note = ""
        if first is None:
            note = f"started at {entry['first'] - start:+.0f} s"
            first = None
        if last is None:
            last = entry["last_memory"]
            note = (note + "; " if note else "") + f"exited at {entry['last'] - start:+.0f} s (last sample)"
        mb = lambda kb: kb / 1024  # noqa: E731
        if first is not None:
            growth = mb(last[0] - first[0])
            growth_by_role[entry["role"]].append(growth)
            lines.append(
                f"| {entry['role']} | {pid} | {mb(first[0]):.1f} | {mb(last[0]):.1f} | {growth:+.1f} "
                f"| {mb(first[1]):.1f} → {mb(last[1]):.1f} | {mb(entry['max']):.1f} | {note} |"
            )
        else:
            lines.append(
                f"| {entry['role']} | {pid} | – | {mb(last[0]):.1f} | – | – → {mb(last[1]):.1f} "
                f"| {mb(entry['max']):.1f} | {note} |"
            )
    return lines, growth_by_role


def timeline_table(watch: MemoryWatch, start: float) -> list[str]:
    roles = ["gunicorn master", "gunicorn worker", "celery worker1", "celery worker2", "beat"]
    lines = ["| minute | " + " | ".join(f"{role} MB" for role in roles) + " |", "|---:|" + "---:|" * len(roles)]
    minute = 0
    for at, totals, _machine, _ours in watch.timeline:
        if at >= start + minute * 60:
            lines.append(f"| {minute} | " + " | ".join(f"{totals.get(role, 0) / 1024:.0f}" for role in roles) + " |")
            minute += 1
    return lines


# --- Drain and checks -----------------------------------------------------------------------


def scalar(sql: str, params=()) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def rows(sql: str, params=()) -> list[tuple]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def drain(timeout: float) -> float:
    """Wait until no delivery is pending or sending and every event is processed."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        left = scalar("SELECT count(*) FROM appease_delivery WHERE status IN ('pending', 'sending')")
        unprocessed = scalar("SELECT count(*) FROM feedback_merchantevent WHERE processed_at IS NULL")
        if left == 0 and unprocessed == 0:
            return time.monotonic() - started
        time.sleep(2)
    return float("nan")


def consistency(received) -> tuple[list[tuple[str, bool, str]], list[str]]:
    checks, notes = [], []
    # Deliveries: every issuance given (not waiting for approval) delivered or given up on.
    by_status = dict(rows("SELECT status, count(*) FROM appease_issuance GROUP BY status"))
    deliveries = dict(rows("SELECT status, count(*) FROM appease_delivery GROUP BY status"))
    notes.append(f"issuances by status: {by_status}; deliveries by status: {deliveries}")
    stuck = scalar("SELECT count(*) FROM appease_delivery WHERE status IN ('pending', 'sending')")
    checks.append(("no delivery pending or sending after the drain", stuck == 0, f"{stuck} left"))
    undelivered = scalar(
        "SELECT count(*) FROM appease_issuance i WHERE i.status NOT IN ('pending_approval', 'rejected', 'voided') "
        "AND NOT (i.status = 'delivered' OR EXISTS (SELECT 1 FROM appease_delivery d WHERE d.issuance_id = i.id "
        "AND d.status IN ('dead', 'failed')))"
    )
    checks.append(("every issuance given is delivered or dead", undelivered == 0, f"{undelivered} neither"))
    no_delivery = scalar(
        "SELECT count(*) FROM appease_issuance i WHERE i.status NOT IN ('pending_approval', 'rejected') "
        "AND NOT EXISTS (SELECT 1 FROM appease_delivery d WHERE d.issuance_id = i.id)"
    )
    checks.append(("every issuance given has a delivery row", no_delivery == 0, f"{no_delivery} without"))
    sent_keys = [
        f"delivery-{pk}" for (pk,) in rows("SELECT id FROM appease_delivery WHERE status IN ('sent', 'delivered')")
    ]
    missing = sum(received.first(key) is None for key in sent_keys)
    twice = sum(len(times) > 1 for key, times in received.times.items() if key.startswith("delivery-"))
    checks.append(("every delivery sent reached the SMTP sink", missing == 0, f"{missing} of {len(sent_keys):,} not"))
    checks.append(("no message reached the SMTP sink twice", twice == 0, f"{twice} twice"))
    others = sum(1 for key in received.times if not key.startswith("delivery-"))
    notes.append(f"SMTP sink: {len(received.times):,} messages ({others} not deliveries: alerts/escalations)")
    unprocessed = scalar("SELECT count(*) FROM feedback_merchantevent WHERE processed_at IS NULL")
    checks.append(("every event processed", unprocessed == 0, f"{unprocessed} not"))

    # Coupons: at most one active redemption each, and the code's status agrees.
    twice_redeemed = scalar(
        "SELECT count(*) FROM (SELECT code_id FROM coupons_redemption WHERE status = 'active' AND single_use "
        "GROUP BY code_id HAVING count(*) > 1) AS twice"
    )
    checks.append(("no coupon has two active redemptions", twice_redeemed == 0, f"{twice_redeemed} coupons"))
    disagree = scalar(
        "SELECT count(*) FROM coupons_code c JOIN coupons_offer o ON o.id = c.offer_id WHERE o.kind <> 'gift_card' "
        "AND (c.status = 'redeemed') <> EXISTS (SELECT 1 FROM coupons_redemption r WHERE r.code_id = c.id "
        "AND r.status = 'active')"
    )
    checks.append(
        ("a coupon is 'redeemed' exactly when it has an active redemption", disagree == 0, f"{disagree} differ")
    )
    ledger = scalar(
        "SELECT count(*) FROM coupons_redemption r WHERE (SELECT count(*) FROM coupons_codeevent e WHERE "
        "e.redemption_id = r.id AND e.kind = 'redeemed') <> 1 OR (SELECT count(*) FROM coupons_codeevent e WHERE "
        "e.redemption_id = r.id AND e.kind = 'redemption_reversed') "
        "<> (CASE WHEN r.status = 'reversed' THEN 1 ELSE 0 END)"
    )
    checks.append(("one ledger row per redemption (and per reversal)", ledger == 0, f"{ledger} redemptions differ"))

    # Gift cards: balance = initial − active redemptions = initial + the ledger's amounts.
    cards = rows(
        "SELECT c.id, c.initial_balance_amount, c.balance_amount, "
        "coalesce((SELECT sum(r.discount_amount) FROM coupons_redemption r WHERE r.code_id = c.id "
        "AND r.status = 'active'), 0), "
        "coalesce((SELECT sum(e.amount) FROM coupons_codeevent e WHERE e.code_id = c.id "
        "AND e.kind IN ('redeemed', 'redemption_reversed')), 0), c.status "
        "FROM coupons_code c JOIN coupons_offer o ON o.id = c.offer_id "
        "WHERE o.kind = 'gift_card' AND c.status <> 'available'"
    )
    wrong = [row for row in cards if row[2] != row[1] - row[3] or row[2] != row[1] + row[4] or row[2] < 0]
    spent = [row for row in cards if (row[2] == 0) != (row[5] == "redeemed")]
    touched = sum(row[3] != 0 or row[4] != 0 for row in cards)
    checks.append(
        (
            "every gift card's balance = initial − active redemptions = initial + ledger amounts",
            not wrong,
            f"{len(wrong)} of {len(cards)} differ, e.g. {wrong[:3]}",
        )
    )
    checks.append(("a gift card is 'redeemed' exactly when its balance is 0", not spent, f"{len(spent)} differ"))
    notes.append(f"gift cards in customers' hands: {len(cards):,}, of which {touched:,} debited at least once")

    # Reps' budgets: every counter within its limit and equal to the rep's issuances.
    over = rows(
        "SELECT bc.user_id, bc.period, bc.spent_cost_amount, b.day_cost_amount FROM appease_budgetcounter bc "
        "JOIN appease_staffprofile sp ON sp.user_id = bc.user_id "
        "JOIN appease_limitbudget b ON b.policy_id = sp.policy_id "
        "AND b.currency = bc.currency WHERE (bc.period = 'day' AND b.day_cost_amount IS NOT NULL "
        "AND bc.spent_cost_amount > b.day_cost_amount) OR (bc.period = 'week' AND b.week_cost_amount IS NOT NULL "
        "AND bc.spent_cost_amount > b.week_cost_amount) OR (bc.period = 'month' AND b.month_cost_amount IS NOT NULL "
        "AND bc.spent_cost_amount > b.month_cost_amount)"
    )
    checks.append(("every rep's budget counter within its limit", not over, f"{len(over)} over: {over[:3]}"))
    mismatched = rows(
        "SELECT bc.user_id, bc.period_start, bc.spent_cost_amount, coalesce(sum(i.cost_amount), 0), "
        "bc.issuances_count, count(i.id) FROM appease_budgetcounter bc LEFT JOIN appease_issuance i "
        "ON i.csr_id = bc.user_id AND i.status IN ('issued', 'delivered', 'failed') "
        "AND (i.issued_at AT TIME ZONE 'UTC')::date = bc.period_start "
        "WHERE bc.period = 'day' GROUP BY bc.id HAVING bc.spent_cost_amount <> coalesce(sum(i.cost_amount), 0) "
        "OR bc.issuances_count <> count(i.id)"
    )
    checks.append(
        (
            "every rep's day counter = the cost and number of their issuances that day",
            not mismatched,
            f"{len(mismatched)} differ: {mismatched[:3]}",
        )
    )
    tight = rows(
        "SELECT p.name, count(DISTINCT bc.user_id), max(bc.spent_cost_amount), min(bc.spent_cost_amount) "
        "FROM appease_budgetcounter bc JOIN appease_staffprofile sp ON sp.user_id = bc.user_id "
        "JOIN appease_limitpolicy p ON p.id = sp.policy_id WHERE bc.period = 'day' GROUP BY p.name ORDER BY p.name"
    )
    notes.append(
        "day counters by policy (reps, max spent, min spent): "
        + "; ".join(f"{r[0]}: {r[1]}, {r[2]}, {r[3]}" for r in tight)
    )

    # Automatic rules: within budget, and equal to their issuances.
    for _rule_id, name, budget, spent_amount, issued_count, cost, count in rows(
        "SELECT r.id, r.name, r.budget_amount, r.spent_amount, r.issued_count, coalesce(sum(i.cost_amount), 0), "
        "count(i.id) FROM feedback_autorule r LEFT JOIN appease_issuance i ON i.auto_rule_id = r.id "
        "AND i.status NOT IN ('rejected', 'voided') GROUP BY r.id ORDER BY r.id"
    ):
        checks.append(
            (
                f"rule {name!r}: spent within budget and = its issuances",
                spent_amount <= budget and spent_amount == cost and issued_count == count,
                f"budget {budget}, spent {spent_amount} (issuances' cost {cost}), count {issued_count} vs {count}",
            )
        )
        notes.append(f"rule {name!r}: budget {budget}, spent {spent_amount}, {issued_count} issuances")
    skipped = rows(
        "SELECT s->>'reason', count(*) FROM feedback_merchantevent e, jsonb_array_elements(e.result->'skipped') s "
        "GROUP BY 1 ORDER BY 2 DESC"
    )
    notes.append("rule matches skipped, by reason: " + (", ".join(f"{r} {n}" for r, n in skipped) or "none"))
    dup_customers = scalar(
        "SELECT count(*) FROM (SELECT upper(email) FROM appease_customer WHERE email <> '' "
        "GROUP BY upper(email) HAVING count(*) > 1) AS twice"
    )
    notes.append(
        f"email addresses held by more than one customer (concurrent intake creating the same one): {dup_customers}"
    )
    return checks, notes


def log_errors(run_dir: Path) -> dict[str, Counter]:
    """ERROR and CRITICAL lines in the processes' logs (JSON from Django's logging, plain
    from gunicorn and Celery's own start-up), by their first words."""
    found: dict[str, Counter] = {}
    for name in ("web", "worker1", "worker2", "beat"):
        counted: Counter = Counter()
        path = run_dir / f"{name}.log"
        for line in path.read_text(errors="replace").splitlines() if path.exists() else []:
            if line.startswith("{"):
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if record.get("level") in ("ERROR", "CRITICAL"):
                    counted[f"{record.get('logger')}: {str(record.get('message'))[:110]}"] += 1
            elif "[ERROR]" in line or "[CRITICAL]" in line or "WORKER TIMEOUT" in line:
                counted[line.split("] ", 3)[-1][:120]] += 1
        if counted:
            found[name] = counted
    return found


# --- Main --------------------------------------------------------------------------------


def _kind(cmdline: str) -> str:
    if "/celery " in cmdline and " beat" in cmdline:
        return "celery beat"
    return _kind_before(cmdline)


_kind_before = common._kind
common._kind = _kind


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10, help="length of the measured load")
    parser.add_argument("--rate", type=float, default=50, help="requests per second, all endpoints together")
    parser.add_argument("--warmup", type=float, default=60, help="seconds of load before the measured run")
    parser.add_argument("--drain", type=float, default=180, help="most seconds to wait for the outbox after the load")
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--web-concurrency", type=int, help="WEB_CONCURRENCY (gunicorn.conf.py's default: 4)")
    parser.add_argument("--worker-concurrency", type=int, help="WORKER_CONCURRENCY (the Procfile's default: 4)")
    parser.add_argument("--seed", type=int, default=7, help="random seed of the load")
    args = common.parse_args(
        parser, smoke={"minutes": 0.25, "rate": 10, "warmup": 5, "drain": 90, "reps": 3, "customers": 200}
    )

    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    os.environ.setdefault("REDIS_URL", DEFAULT_REDIS_URL)
    env = common.apply_environment()
    database = common.database_name(env["DATABASE_URL"])
    redis_url = os.environ["REDIS_URL"]
    run_dir = Path(os.environ.get("BENCH_RUN_DIR") or tempfile.mkdtemp(prefix="appease-soak-"))
    smtp_port, sms_port, port = free_port(), free_port(), free_port()
    metrics_token = uuid.uuid4().hex + uuid.uuid4().hex
    commands = procfile()

    common.rule("set-up")
    print(f"CPU: {common.cpu_model()}, {len(os.sched_getaffinity(0))} cores; load average: {common.loadavg()}")
    print(f"database: {database} (dropped, re-created, migrated); Redis (cache and broker): {redis_url} (flushed)")
    print(
        f"load: {args.rate:g} requests/s open loop, {args.warmup:g} s warm-up + {args.minutes:g} min measured; "
        f"mix {', '.join(f'{k} {v} %' for k, v in MIX.items())}"
    )
    common.recreate_database(env["DATABASE_URL"])
    common.migrate()
    common.django_setup()
    seeded = seed(args)
    import redis

    redis.Redis.from_url(redis_url).flushdb()

    children = {
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "1",  # DEBUG off's default; the load sends X-Forwarded-Proto: https
        "LOG_LEVEL": "INFO",
        "NUM_PROXIES": "1",
        "CELERY_BROKER_URL": redis_url,
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_port),
        "DEFAULT_FROM_EMAIL": "Appease <care@soak.example>",
        "PUBLIC_URL": "https://soak.example",
        "METRICS_TOKEN": metrics_token,
        "PROMETHEUS_MULTIPROC_DIR": str(run_dir / "metrics"),
        "APPEASE_VAR_DIR": str(run_dir / "var"),
        "BIND": f"127.0.0.1:{port}",
        "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}",
    }
    if args.web_concurrency:
        children["WEB_CONCURRENCY"] = str(args.web_concurrency)
    if args.worker_concurrency:
        children["WORKER_CONCURRENCY"] = str(args.worker_concurrency)
    (run_dir / "var").mkdir(exist_ok=True)
    print("processes (the Procfile's commands):")
    for name in ("web", "worker", "beat"):
        print(f"  {name}: {commands[name]}")
    print(
        f"  environment: WEB_CONCURRENCY={children.get('WEB_CONCURRENCY', '(conf default 4)')}, "
        "WEB_THREADS=(conf default 2), "
        f"WORKER_CONCURRENCY={children.get('WORKER_CONCURRENCY', '(Procfile default 4)')}, "
        "2 workers, 1 beat; DEBUG=0, fresh secrets, NUM_PROXIES=1, email: SMTP to a sink in this process (aiosmtpd)"
    )

    ok = True
    with ExitStack() as running:
        received = running.enter_context(receivers(smtp_port=smtp_port, sms_port=sms_port))
        with environment(**children):
            web = running.enter_context(
                process(
                    ["bash", "-c", f"exec {commands['web']}"],
                    name="web",
                    run_dir=run_dir,
                    ready=lambda _log: ready(port),
                )
            )
            started = [" ready." for _ in range(2)]
            workers = [
                running.enter_context(
                    process(
                        ["bash", "-c", f"exec {commands['worker']}"],
                        name=f"worker{n}",
                        run_dir=run_dir,
                        ready=lambda log, marker=started[n - 1]: marker in log.read_text(),
                    )
                )
                for n in (1, 2)
            ]
            beat = running.enter_context(
                process(
                    ["bash", "-c", f"exec {commands['beat']}"],
                    name="beat",
                    run_dir=run_dir,
                    ready=lambda log: "beat: Starting" in log.read_text(),
                )
            )
        roots = {"web": web.pid, "worker1": workers[0].pid, "worker2": workers[1].pid, "beat": beat.pid}
        print(
            f"started: gunicorn master {web.pid}, workers {workers[0].pid} and {workers[1].pid}, beat {beat.pid}; "
            f"gunicorn on 127.0.0.1:{port}"
        )

        watch = MemoryWatch(roots, database)
        watch.start()
        stop_feeder = threading.Event()
        warm = Recorder(started=0.0)
        measured = Recorder(started=0.0)
        meter = common.CpuMeter(database)
        marks = {}

        common.rule(f"load: {args.warmup:g} s warm-up, then {args.minutes:g} min at {args.rate:g}/s")

        def on_phase_end(name: str) -> None:
            if name == "warm-up":
                # The memory "start" snapshot and the CPU meter, between the phases.
                watch.sample(snapshot="start")
                marks["start"] = time.monotonic() - watch.t0
                marks["wall_start"] = time.strftime("%H:%M:%S")
                meter.__enter__()

        phases = [("warm-up", args.warmup, warm), ("measured", args.minutes * 60, measured)]
        load = asyncio.run(
            run_load(
                port=port,
                seeded=seeded,
                args=args,
                phases=phases,
                on_load=lambda made: feeder(made, stop_feeder),
                on_phase_end=on_phase_end,
            )
        )
        watch.sample(snapshot="end")
        marks["end"] = time.monotonic() - watch.t0
        meter.__exit__(None, None, None)
        stop_feeder.set()
        seconds = args.minutes * 60
        print(
            f"warm-up: {len(warm.samples):,} requests, {sum(s.outcome == 'error' for s in warm.samples)} errors; "
            f"measured: {len(measured.samples):,} requests in {seconds:.0f} s, {marks['wall_start']} to "
            f"{time.strftime('%H:%M:%S')} (local time)"
        )

        common.rule("drain")
        drained = drain(args.drain)
        print(
            f"outbox and events drained {drained:.0f} s after the load stopped"
            if drained == drained
            else f"NOT drained within {args.drain:g} s"
        )
        watch.sample()
        metrics_status, body = http_get(port, "/metrics", headers={"Authorization": f"Bearer {metrics_token}"})
        metrics = [line for line in body.splitlines() if line.startswith("appease_")]
        unauthorised = http_get(port, "/metrics")[0]
        watch.stop()
        checks, notes = consistency(received)
        # Stop the processes (ExitStack) before the report: nothing else runs after this.

    common.rule("results: per endpoint (measured run)")
    samples = measured.samples
    table = endpoint_table(samples, seconds)
    print("\n".join(table))
    print("answers by scenario (status ×count; 'expected' = an expected 4xx):")
    print("\n".join(status_lines(samples)))
    if measured.examples:
        print("unexpected answers (up to 3 examples each):")
        for (endpoint, scenario, answered, note), examples in measured.examples.items():
            print(f"  {endpoint} / {scenario} / {answered or 'no answer'} {note}: {examples}")
    print("what the answers said: " + ", ".join(f"{k} {v:,}" for k, v in sorted(load.tally.items())))
    lateness = measured.lateness_ms
    print(
        f"generator: CPU {measured.loop_cpu:.1f} s in the load's thread "
        f"({measured.loop_cpu * 1000 / max(1, len(samples)):.1f} ms a request), {measured.process_cpu:.1f} s in "
        "this whole process (with the SMTP sink, the code feeder and the meters); "
        f"{measured.shed} requests not sent (more than {MAX_IN_FLIGHT} in flight); "
        f"send lateness p99 {percentile(lateness, 99):.1f} ms, max {max(lateness, default=0):.1f} ms; "
        f"pools left: {load.coupons.left():,} coupons, {load.cards.left():,} gift cards; connections opened "
        f"{load.client.opened}, requests sent again after the server closed a kept-alive connection "
        f"{load.client.resent}"
    )
    common.rule("per minute (measured run, all endpoints)")
    minutes = minute_table(samples, seconds, watch, marks["start"])
    print("\n".join(minutes))

    common.rule("memory: every process, start (after the warm-up) → end of the load")
    memory, growth = memory_table(watch, marks["start"], marks["end"])
    print("\n".join(memory))
    for role, values in growth.items():
        print(
            f"  {role}: {len(values)} processes, growth mean {statistics.mean(values):+.1f} MB, "
            f"max {max(values):+.1f} MB"
        )
    print("RSS by role, per minute of the measured run (sum over the role's processes):")
    timeline = timeline_table(watch, marks["start"])
    print("\n".join(timeline))
    recycled = sum(
        1 for e in watch.seen.values() if e["role"] == "gunicorn worker" and marks["start"] < e["first"] <= marks["end"]
    )
    print(f"gunicorn workers started during the measured run (max_requests recycling): {recycled}")

    common.rule("CPU")
    print(meter.summary())
    print(f"load average at the end: {common.loadavg()}")

    common.rule("/metrics (one scrape after the drain)")
    print(f"GET /metrics with the token: {metrics_status}; without it: {unauthorised}")
    print("\n".join(metrics))

    common.rule("the processes' logs")
    logged = log_errors(run_dir)
    for name, counted in logged.items():
        for message, n in counted.most_common(10):
            print(f"  {name}: {n} × {message}")
    if not logged:
        print("  no ERROR or CRITICAL line in the web, worker and beat logs")

    common.rule("checks")
    errors = [s for s in samples if s.outcome == "error"]
    load_checks = [
        ("no 5xx answers", not any(s.status >= 500 for s in errors), f"{sum(s.status >= 500 for s in errors)}"),
        (
            "no unexpected statuses or answers",
            not any(0 < s.status < 500 for s in errors),
            f"{sum(0 < s.status < 500 for s in errors)}",
        ),
        (
            "no request without an answer",
            not any(s.status == 0 for s in errors),
            f"{sum(s.status == 0 for s in errors)}",
        ),
        (
            "/metrics answers the token and refuses without it",
            metrics_status == 200 and unauthorised == 403 and bool(metrics),
            f"{metrics_status}/{unauthorised}",
        ),
    ]
    load_checks.append(
        (
            "no ERROR or CRITICAL line in the processes' logs",
            not logged,
            ", ".join(f"{name} {sum(counted.values())}" for name, counted in logged.items()),
        )
    )
    for note in notes:
        print(note)
    if measured.shed:
        # The machine's share, not the application's answer: reported, not failed.
        print(f"WARNING: the generator did not send {measured.shed} requests (more than {MAX_IN_FLIGHT} in flight)")
    for label, passed, detail in load_checks + checks:
        print(f"CHECK {'OK    ' if passed else 'FAILED'} {label}{'' if passed else ': ' + detail}")
        ok &= passed
    print("CHECKS:", "OK" if ok else "FAILED")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
