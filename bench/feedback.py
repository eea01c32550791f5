"""Benchmark: the feedback app's intake, automatic appeasements and the case queue.

Run `bench/feedback` (it installs wrk if missing, then runs this) from a clone where
`make install` has been run. Needs PostgreSQL and Redis on loopback. The database in
DATABASE_URL (default postgres://postgres@127.0.0.1:5432/bench_feedback) is DROPPED
and re-created; the Redis database in REDIS_URL (default redis://127.0.0.1:6379/7) is
FLUSHED (it is the cache and the broker of the processes started here).

1. Seeds, through the services where it matters: --customers customers, one feedback
   site, a merchant with an API key, an amount-off offer with codes, a reason code, an
   automatic rule (delivery_delayed, delay_minutes >= 180 → the offer, budget that does
   not run out), --claim-clients reps (CSR group, staff tokens) and --cases open cases
   (bulk_create, varied priority_score and created_at: a seeding shortcut).
2. Claim-next: ceiling first, pgbench running the claim's SQL (the statements
   case_claim_next runs, FOR UPDATE SKIP LOCKED) with --claim-clients clients, then the
   queue is reset; --claims-inprocess sequential `case_claim_next` calls in this
   process; then POST /api/v1/cases/next from --claim-clients wrk connections (one rep
   each). Checks: no case claimed twice (one "claimed" CaseEvent per claimed case),
   claimed cases == claims answered.
3. Intake: POST /api/v1/feedback (bench/feedback.lua) and POST /api/v1/events
   (bench/events.lua) with wrk under gunicorn (DEBUG off, as bench/redeem), the intake
   throttles raised through FEEDBACK_RATE_PER_IP / FEEDBACK_RATE_PER_KEY so they do not
   cut the load. Events are below the rule's threshold and no worker runs: the intake
   alone (the queued messages are flushed afterwards).
4. Event → appeasement sent: a Celery worker (solo pool) and an SMTP server in this
   process (as bench/deliver); --auto-events events at --auto-rate per second, each for
   a new customer, delay_minutes 200. Latency: from the POST leaving the client to the
   Delivery row `sent` (and to the SMTP server having the message). Checks: one
   issuance per event, the rule's spent amount == the sum of its issuances' cost, every
   delivery sent and received exactly once.

Everything started here is stopped here; bench/feedback's trap is the backstop.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench.deliver import celery_worker, environment, receivers  # also adds the worker to the CPU kinds
from bench.redeem import HEADER, free_port, gunicorn, measured, row

BENCH = Path(__file__).resolve().parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_feedback"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/7"
COST = Decimal("3.00")
THRESHOLD_MINUTES = 180
# High enough that the intake throttles never refuse during the run (they still run).
UNTHROTTLED = 10_000_000

# The SQL of one case_claim_next, in one transaction, as the service runs it (printed
# from CaptureQueriesContext at the start of the claim section). pgbench variables:
# user_lo (rep00's id), reps.
CLAIM_SQL = """\
\\set uid :user_lo + (:client_id % :reps)
BEGIN;
SELECT id AS case_id FROM feedback_case WHERE status = 'open' ORDER BY priority_score DESC, created_at ASC
  LIMIT 1 FOR UPDATE SKIP LOCKED \\gset
UPDATE feedback_case SET status = 'claimed', assigned_to_id = :uid, claimed_at = now()
  WHERE id = :case_id AND status = 'open';
SELECT c.*, cu.* FROM feedback_case c LEFT OUTER JOIN appease_customer cu ON cu.id = c.customer_id WHERE c.id = :case_id
  LIMIT 21;
UPDATE feedback_case SET first_response_at = now() WHERE id = :case_id;
INSERT INTO feedback_caseevent (case_id, kind, actor_id, text, data, created_at)
  VALUES (:case_id, 'claimed', :uid, '', '{}', now());
COMMIT;
"""


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] if ordered else float("nan")


def cursor():
    from django.db import connection

    return connection.cursor()


def scalar(sql: str, params=()) -> int:
    with cursor() as c:
        c.execute(sql, params)
        return c.fetchone()[0]


def vacuum() -> None:
    with cursor() as c:
        c.execute("VACUUM ANALYZE")


def flush_redis() -> None:
    """Empty the benchmark's Redis database: throttle counters, cached rules, and the
    messages the server queued while no worker ran."""
    import redis

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    client.flushdb()
    client.close()


# --- Seeding ---------------------------------------------------------------------------


def seed(args, run_dir: Path) -> dict:
    from django.contrib.auth.models import Group, User

    from appease.core.models import StaffAPIKey
    from appease.core.roles import CSR
    from appease.issuance.models import Customer, ReasonCode
    from coupons.models import Merchant, MerchantAPIKey, Offer
    from coupons.services.inventory import code_batch_generate, code_batch_request
    from feedback.models import AutoRule, Case, FeedbackSite, Priority

    started = time.perf_counter()
    offer = Offer(
        name="Bench: 5 off (late delivery)",
        kind=Offer.Kind.AMOUNT_OFF,
        description="5 off your next order",
        value_amount=Decimal("5.00"),
        cost_amount=COST,
        currency="USD",
        validity_days=30,
        low_inventory_threshold=0,
    )
    offer.full_clean()
    offer.save()
    code_batch_generate(batch_id=code_batch_request(offer=offer, quantity=args.auto_events + 200).pk)
    reason = ReasonCode.objects.create(code="late-delivery", label="Late delivery", incident_type="late_delivery")
    rule = AutoRule.objects.create(
        name="Bench: delivery 3 h late",
        event_type="delivery_delayed",
        condition_field="delay_minutes",
        condition_operator=AutoRule.Operator.GTE,
        condition_value=str(THRESHOLD_MINUTES),
        offer=offer,
        reason_code=reason,
        budget_amount=Decimal("1000000"),
        per_customer_cap=1,
    )
    site = FeedbackSite.objects.create(name="Bench shop", default_language="en")
    merchant = Merchant.objects.create(name="Bench shop")
    _key, api_key = MerchantAPIKey.objects.create_key(name="bench events", merchant=merchant)

    group, _created = Group.objects.get_or_create(name=CSR)
    reps, tokens = [], []
    for n in range(args.claim_clients):
        user = User.objects.create_user(f"rep{n:02d}", password=None, email=f"rep{n:02d}@bench.local")
        user.groups.add(group)
        reps.append(user)
        tokens.append(StaffAPIKey.objects.create_key(name="bench", user=user)[1])
    ids = [user.pk for user in reps]
    if ids != list(range(ids[0], ids[0] + len(ids))):
        raise SystemExit("the reps' ids are not contiguous; pgbench's uid arithmetic would be wrong")
    tokens_path = run_dir / "tokens.txt"
    tokens_path.write_text("\n".join(tokens) + "\n")

    Customer.objects.bulk_create(
        (
            Customer(name=f"Customer {n}", email=f"customer{n}@example.com", external_id=f"c{n}")
            for n in range(args.customers)
        ),
        batch_size=5000,
    )
    customer_ids = list(Customer.objects.order_by("pk").values_list("pk", flat=True)[: args.cases])

    # The queue: open cases with scores spread like triage's (most middling, a few high),
    # created over the last week. bulk_create sets created_at to now (auto_now_add), so
    # one UPDATE spreads them afterwards.
    rng = random.Random(7)
    incidents = ["late_delivery", "damaged_item", "wrong_item", "overcharge", "staff_attitude", "other"]

    def level(score: int) -> str:
        return (
            Priority.CRITICAL if score >= 70 else Priority.HIGH if score >= 45 else Priority.NORMAL
        )  # the default bands

    cases = []
    for n in range(args.cases):
        score = min(100, max(25, int(rng.gauss(45, 12))))
        cases.append(
            Case(
                customer_id=customer_ids[n % len(customer_ids)],
                source=Case.Source.WIDGET,
                status=Case.Status.OPEN,
                subject=f"Bench case {n}",
                incident_type=rng.choice(incidents),
                language="en",
                priority=level(score),
                priority_score=score,
                score_reasons=[],
            )
        )
    Case.objects.bulk_create(cases, batch_size=5000)
    with cursor() as c:
        c.execute("UPDATE feedback_case SET created_at = now() - random() * interval '7 days'")
    vacuum()
    print(
        f"seeded in {time.perf_counter() - started:.1f} s: {args.customers:,} customers, {args.cases:,} open cases, "
        f"{len(reps)} reps with staff tokens, a feedback site, a merchant key, an offer with "
        f"{args.auto_events + 200} codes, the rule delivery_delayed delay_minutes >= {THRESHOLD_MINUTES}"
    )
    return {
        "site_key": site.public_key,
        "api_key": api_key,
        "tokens_path": tokens_path,
        "user_lo": ids[0],
        "reps": reps,
        "rule_id": rule.pk,
    }


# --- wrk -------------------------------------------------------------------------------


def run_wrk(
    *,
    script: str,
    path: str,
    port: int,
    threads: int,
    connections: int,
    duration: int,
    script_args: list,
    env: dict | None = None,
) -> dict:
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout=10s",
        "-s",
        str(BENCH / script),
        f"http://127.0.0.1:{port}{path}",
        "--",
        *(str(arg) for arg in script_args),
    ]
    out = subprocess.run(
        command, check=True, capture_output=True, text=True, timeout=duration + 120, env={**os.environ, **(env or {})}
    )
    if out.stderr.strip():
        print(f"wrk stderr: {out.stderr.strip()[:600]}")
    line = next(line for line in out.stdout.splitlines() if line.startswith("RESULT "))
    result = {key: int(value) for key, value in (item.split("=") for item in line.split()[1:])}
    seconds = result["duration_us"] / 1e6
    socket_errors = sum(result[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))
    return {
        **result,
        "rps": result["requests"] / seconds,
        "p50": result["p50_us"] / 1000,
        "p95": result["p95_us"] / 1000,
        "p99": result["p99_us"] / 1000,
        "in_flight": result["sent"] - result["requests"],
        "errors": result["s4xx"] + result["s5xx"] + result["other"] + socket_errors,
    }


def statuses(result: dict) -> str:
    extra = f", 204 {result['s204']:,}" if "s204" in result else ""
    return (
        f"responses: 2xx {result['s2xx']:,}{extra}, 4xx {result['s4xx']:,}, 5xx {result['s5xx']:,}, "
        f"other {result['other']:,}; socket errors: connect {result['connect_errors']}, read {result['read_errors']}, "
        f"write {result['write_errors']}, timeout {result['timeouts']}"
    )


# --- Claim-next ------------------------------------------------------------------------


def claim_probe(rep) -> list[str]:
    """One case_claim_next in this process, its SQL captured (it claims a case)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from appease.core.context import Actor
    from feedback.services.cases import case_claim_next

    with CaptureQueriesContext(connection) as captured:
        case = case_claim_next(actor=Actor(user=rep))
    if case is None:
        raise SystemExit("the probe claim found an empty queue")
    return [query["sql"] for query in captured.captured_queries]


def pgbench_claims(*, seeded: dict, clients: int, per_client: int, run_dir: Path) -> dict:
    """The claim's SQL alone, a fixed number of transactions per client (a timed run
    could empty the queue, and pgbench aborts a client whose \\gset finds no row)."""
    script = run_dir / "claim.sql"
    script.write_text(CLAIM_SQL)
    url = urlparse(os.environ["DATABASE_URL"])
    command = [
        "pgbench",
        f"--host={url.hostname or '127.0.0.1'}",
        f"--port={url.port or 5432}",
        f"--username={url.username or 'postgres'}",
        "--no-vacuum",
        f"--client={clients}",
        f"--jobs={min(clients, 4)}",
        f"--transactions={per_client}",
        f"--define=user_lo={seeded['user_lo']}",
        f"--define=reps={len(seeded['reps'])}",
        f"--file={script}",
        "--log",
        f"--log-prefix={run_dir / 'pgbench'}",
        common.database_name(os.environ["DATABASE_URL"]),
    ]
    env = os.environ.copy()
    if url.password:
        env["PGPASSWORD"] = url.password
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=env, timeout=600, cwd=run_dir)
    transactions = int(re.search(r"number of transactions actually processed: (\d+)", out.stdout).group(1))
    tps = float(re.search(r"tps = ([\d.]+) \(without initial connection time\)", out.stdout).group(1))
    failed = re.search(r"number of failed transactions: (\d+)", out.stdout)
    latencies = []
    for log in run_dir.glob("pgbench.*"):
        latencies.extend(int(line.split()[2]) / 1000 for line in log.read_text().splitlines())
        log.unlink()
    return {
        "transactions": transactions,
        "failed": int(failed.group(1)) if failed else 0,
        "rps": tps,
        "p50": percentile(latencies, 50),
        "p95": percentile(latencies, 95),
        "p99": percentile(latencies, 99),
    }


def reset_queue() -> None:
    """Undo the ceiling's claims: every case open again, its timeline emptied."""
    with cursor() as c:
        # The timeline is append-only by a trigger, when the migrations install it.
        c.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'feedback_caseevent'::regclass "
            "AND tgname = 'feedback_caseevent_append_only'"
        )
        guarded = c.fetchone()[0] > 0
        if guarded:
            c.execute("ALTER TABLE feedback_caseevent DISABLE TRIGGER feedback_caseevent_append_only")
        c.execute("DELETE FROM feedback_caseevent")
        if guarded:
            c.execute("ALTER TABLE feedback_caseevent ENABLE TRIGGER feedback_caseevent_append_only")
        else:
            print("note: feedback_caseevent has no append-only trigger in this database")
        c.execute(
            "UPDATE feedback_case SET status = 'open', assigned_to_id = NULL, claimed_at = NULL, "
            "first_response_at = NULL WHERE status <> 'open'"
        )
    vacuum()


def claims_in_process(*, rep, count: int) -> dict:
    from appease.core.context import Actor
    from feedback.services.cases import case_claim_next

    actor = Actor(user=rep)
    latencies, empty = [], 0
    started = time.perf_counter()
    for _ in range(count):
        start = time.perf_counter()
        case = case_claim_next(actor=actor)
        latencies.append((time.perf_counter() - start) * 1000)
        empty += case is None
    seconds = time.perf_counter() - started
    return {
        "requests": count,
        "claimed": count - empty,
        "rps": count / seconds,
        "p50": percentile(latencies, 50),
        "p95": percentile(latencies, 95),
        "p99": percentile(latencies, 99),
        "max": max(latencies),
    }


def check_claims(*, expected_lo: int, expected_hi: int, wrk_result: dict) -> bool:
    claimed = scalar("SELECT count(*) FROM feedback_case WHERE status = 'claimed'")
    not_once = scalar(
        "SELECT count(*) FROM feedback_case c WHERE c.status = 'claimed' AND "
        "(SELECT count(*) FROM feedback_caseevent e WHERE e.case_id = c.id AND e.kind = 'claimed') <> 1"
    )
    stray = scalar(
        "SELECT count(*) FROM feedback_caseevent e JOIN feedback_case c ON c.id = e.case_id "
        "WHERE e.kind = 'claimed' AND c.status <> 'claimed'"
    )
    events = scalar("SELECT count(*) FROM feedback_caseevent WHERE kind = 'claimed'")
    print(f"claimed cases: {claimed:,}; 'claimed' timeline lines: {events:,}")
    checks = [
        ("every claimed case has exactly one 'claimed' line (no case claimed twice)", not_once == 0, f"{not_once}"),
        ("no 'claimed' line on a case that is not claimed", stray == 0, f"{stray}"),
        (
            "claimed cases == claims answered (in-process + 200s, up to the requests wrk cut off in flight)",
            expected_lo <= claimed <= expected_hi,
            f"{claimed:,} claimed, expected {expected_lo:,}..{expected_hi:,}",
        ),
        ("no errors from the claim API", wrk_result["errors"] == 0, statuses(wrk_result)),
        ("the queue never ran dry during the run", wrk_result["s204"] == 0, f"{wrk_result['s204']} answers 204"),
    ]
    return report(checks)


def report(checks) -> bool:
    for label, ok, detail in checks:
        print(f"CHECK {'OK    ' if ok else 'FAILED'} {label}{'' if ok else ': ' + detail}")
    return all(ok for _, ok, _ in checks)


# --- Intake ----------------------------------------------------------------------------


def throttle_counts(site_key: str, *, since: float) -> dict[str, int]:
    """How many requests each intake throttle counted since `since`, read from the
    limiter's own counters (appease.core.ratelimit: atomic INCRs per 60 s window) under the
    identities the throttles use (the key throttle hashes the site key)."""
    from types import SimpleNamespace

    from feedback.apis import FeedbackIpThrottle, FeedbackKeyThrottle

    request = SimpleNamespace(data={"site_key": site_key}, META={"REMOTE_ADDR": "127.0.0.1"}, headers={})
    found = {}
    for name, throttle_class in (("key", FeedbackKeyThrottle), ("ip", FeedbackIpThrottle)):
        throttle = throttle_class()
        ident = throttle.ident(request)
        found[name] = throttle.limiter().counted(ident, since=since) if ident else 0
    return found


def duplicate_customers() -> int:
    """Emails held by more than one customer: two intakes creating the same new customer."""
    return scalar(
        "SELECT count(*) FROM (SELECT upper(email) FROM appease_customer WHERE email <> '' "
        "GROUP BY upper(email) HAVING count(*) > 1) AS twice"
    )


def probe_api(*, path: str, body: dict | None, headers: dict, expect: int) -> list[str]:
    """One request through the whole Django stack in this process, its SQL captured."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1")
    with CaptureQueriesContext(connection) as captured:
        response = client.post(
            path, data=json.dumps(body) if body is not None else "", content_type="application/json", **headers
        )
    if response.status_code != expect:
        raise SystemExit(f"probe {path} answered {response.status_code}: {response.content[:300]!r}")
    return [query["sql"] for query in captured.captured_queries]


def print_queries(what: str, queries: list[str]) -> None:
    print(f"{what} runs {len(queries)} SQL statements (CaptureQueriesContext, this process):")
    for sql in queries:
        print(f"  {sql[:140]}{'…' if len(sql) > 140 else ''}")


def explain_customer_lookup(email: str) -> str:
    """EXPLAIN ANALYZE of customer_find_or_create's look-up by email."""
    from appease.issuance.models import Customer

    return Customer.objects.filter(email__iexact=email).order_by("pk")[:1].explain(analyze=True)


# --- Event → appeasement sent ----------------------------------------------------------


def post_event(*, port: int, api_key: str, body: dict) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/events",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Api-Key {api_key}"},
        method="POST",
    )
    posted = {"sent_at": time.time(), "status": 0, "id": None}
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (http://127.0.0.1 only)
            posted["status"] = response.status
            posted["id"] = json.load(response)["id"]
    except urllib.error.HTTPError as error:
        posted["status"] = error.code
    posted["answered_at"] = time.time()
    return posted


def post_events(*, port: int, api_key: str, tag: str, count: int, rate: float, delay: int) -> list[dict]:
    """`count` events at `rate` per second (one every 1/rate s whatever the answers take),
    each naming one new customer."""
    bodies = [
        {
            "event_id": f"{tag}-{n}",
            "event_type": "delivery_delayed",
            "data": {
                "delay_minutes": delay,
                "order_reference": f"ORD-{tag}-{n}",
                "customer": {"email": f"{tag}-{n}@example.com", "name": f"Late {n}"},
            },
        }
        for n in range(count)
    ]
    start = time.monotonic()
    futures = []
    with ThreadPoolExecutor(max_workers=16) as pool:
        for n, body in enumerate(bodies):
            time.sleep(max(0.0, start + n / rate - time.monotonic()))
            futures.append(pool.submit(post_event, port=port, api_key=api_key, body=body))
    return [future.result() for future in futures]


def wait_sent(event_ids: list[int], timeout: float) -> int:
    from appease.delivery.models import Delivery

    sent = Delivery.objects.filter(issuance__event_id__in=event_ids, status=Delivery.Status.SENT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sent.count() >= len(event_ids):
            break
        time.sleep(0.2)
    return sent.count()


def measure_auto(*, posted: list[dict], received, timeout: float) -> dict:
    from appease.delivery.models import Delivery
    from feedback.models import MerchantEvent

    by_id = {item["id"]: item for item in posted if item["id"] is not None}
    ids = list(by_id)
    sent = wait_sent(ids, timeout)
    events = {
        pk: (received_at, processed_at)
        for pk, received_at, processed_at in MerchantEvent.objects.filter(pk__in=ids).values_list(
            "pk", "received_at", "processed_at"
        )
    }
    rows = list(Delivery.objects.filter(issuance__event_id__in=ids).values_list("pk", "issuance__event_id", "sent_at"))
    total, server, sink, processing, after = [], [], [], [], []
    missing = 0
    for pk, event_id, sent_at in rows:
        if sent_at is None:
            continue
        client = by_id[event_id]
        received_at, processed_at = events[event_id]
        total.append((sent_at.timestamp() - client["sent_at"]) * 1000)
        server.append((sent_at.timestamp() - received_at.timestamp()) * 1000)
        if processed_at is not None:
            processing.append((processed_at.timestamp() - received_at.timestamp()) * 1000)
            after.append((sent_at.timestamp() - processed_at.timestamp()) * 1000)
        at = received.first(f"delivery-{pk}")
        if at is None:
            missing += 1
        else:
            sink.append((at - client["sent_at"]) * 1000)
    return {
        "events": len(posted),
        "errors": sum(item["status"] != 202 for item in posted),
        "api": [(item["answered_at"] - item["sent_at"]) * 1000 for item in posted],
        "total": total,
        "server": server,
        "sink": sink,
        "processing": processing,
        "after": after,
        "deliveries": len(rows),
        "sent": sent,
        "missing": missing,
        "ids": ids,
    }


def check_auto(*, result: dict, received, rule_id: int) -> bool:
    from django.db.models import Count, Sum

    from appease.delivery.models import Delivery, DeliveryAttempt
    from appease.issuance.models import Issuance
    from feedback.models import AutoRule, MerchantEvent

    ids = result["ids"]
    per_event = dict(
        Issuance.objects.filter(event_id__in=ids)
        .values("event_id")
        .annotate(n=Count("id"))
        .values_list("event_id", "n")
    )
    not_one = sum(per_event.get(pk, 0) != 1 for pk in ids)
    rule = AutoRule.objects.get(pk=rule_id)
    given = Issuance.objects.filter(auto_rule=rule).exclude(
        status__in=[Issuance.Status.REJECTED, Issuance.Status.VOIDED]
    )
    spent = given.aggregate(total=Sum("cost_amount"))["total"] or Decimal("0")
    deliveries = list(Delivery.objects.filter(issuance__event_id__in=ids).values_list("pk", flat=True))
    twice = sum(len(received.times.get(f"delivery-{pk}", [])) > 1 for pk in deliveries)
    attempts_twice = (
        DeliveryAttempt.objects.filter(delivery_id__in=deliveries)
        .values("delivery_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )
    unprocessed = MerchantEvent.objects.filter(pk__in=ids, processed_at__isnull=True).count()
    print(
        f"rule: spent {rule.spent_amount} for {rule.issued_count} issuances; its issuances' cost {spent} "
        f"({given.count()} issuances)"
    )
    checks = [
        ("every event answered 202", result["errors"] == 0, f"{result['errors']} not"),
        ("every event processed", unprocessed == 0, f"{unprocessed} not"),
        ("exactly one issuance per event", not_one == 0 and len(per_event) == len(ids), f"{not_one} events differ"),
        (
            "rule spent_amount == sum of its issuances' cost, issued_count == their number",
            rule.spent_amount == spent and rule.issued_count == given.count(),
            f"spent {rule.spent_amount} vs {spent}, count {rule.issued_count} vs {given.count()}",
        ),
        (
            "every delivery sent and received",
            result["sent"] == result["deliveries"] == len(ids) and result["missing"] == 0,
            f"{result['sent']} sent of {result['deliveries']} deliveries for {len(ids)} events, "
            f"{result['missing']} never received",
        ),
        (
            "no delivery sent twice (SMTP server and attempt log)",
            twice == 0 and attempts_twice == 0,
            f"{twice} received twice, {attempts_twice} with more than one attempt",
        ),
    ]
    return report(checks)


def latency_row(name: str, values: list[float]) -> str:
    return (
        f"| {name} | {len(values)} | {percentile(values, 50):.0f} | {percentile(values, 95):.0f} "
        f"| {percentile(values, 99):.0f} | {max(values, default=float('nan')):.0f} |"
    )


LATENCY_HEADER = "| from → to | events | p50 ms | p95 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|---:|"


# --- Main --------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=20, help="seconds per intake run")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections for the intake runs")
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--worker-class", default="gthread")
    parser.add_argument("--threads", type=int, default=2, help="threads per gunicorn worker (gthread)")
    parser.add_argument("--customers", type=int, default=50_000, help="seeded customers")
    parser.add_argument("--fresh", type=int, default=10_000, help="pool of new email addresses for the intake run")
    parser.add_argument("--cases", type=int, default=10_000, help="open cases in the queue")
    parser.add_argument("--claims-inprocess", type=int, default=500)
    parser.add_argument("--claim-clients", type=int, default=8, help="reps claiming at once (wrk, pgbench)")
    parser.add_argument("--claim-duration", type=int, default=15, help="seconds of the claim API run")
    parser.add_argument("--pgbench-per-client", type=int, default=900, help="claims per pgbench client")
    parser.add_argument("--below-minutes", type=int, default=30, help="delay_minutes in the events intake run")
    parser.add_argument("--auto-events", type=int, default=200, help="events in the event → sent run")
    parser.add_argument("--auto-rate", type=float, default=10, help="events per second in that run")
    parser.add_argument("--pool", default="solo", help="the Celery worker's pool")
    parser.add_argument("--concurrency", type=int, default=1, help="the Celery worker's concurrency")
    args = common.parse_args(
        parser,
        smoke={
            "duration": 2,
            "connections": 2,
            "wrk_threads": 1,
            "workers": 1,
            "customers": 200,
            "fresh": 100,
            "cases": 1000,  # 2 s of claims at a few hundred a second must not empty the queue
            "claims_inprocess": 10,
            "claim_clients": 2,
            "claim_duration": 2,
            "pgbench_per_client": 20,
            "auto_events": 10,
            "auto_rate": 5,
        },
    )
    if args.pgbench_per_client * args.claim_clients >= args.cases:
        raise SystemExit("--pgbench-per-client × --claim-clients must stay below --cases")

    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    os.environ.setdefault("REDIS_URL", DEFAULT_REDIS_URL)
    env = common.apply_environment()
    database = common.database_name(env["DATABASE_URL"])
    run_dir = Path(os.environ.get("BENCH_RUN_DIR") or tempfile.mkdtemp(prefix="appease-bench-"))
    smtp_port, sms_port = free_port(), free_port()
    os.environ.update(
        {
            "FEEDBACK_RATE_PER_IP": str(UNTHROTTLED),
            "FEEDBACK_RATE_PER_KEY": str(UNTHROTTLED),
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(smtp_port),
            "DEFAULT_FROM_EMAIL": "Appease <no-reply@appease.example>",
        }
    )
    broker = os.environ["REDIS_URL"]

    common.rule("set-up")
    print(f"CPU: {common.cpu_model()}, {len(os.sched_getaffinity(0))} cores; load average: {common.loadavg()}")
    print(
        f"gunicorn: {args.workers} workers, {args.worker_class}, {args.threads} threads; intake: wrk "
        f"{args.wrk_threads} threads, {args.connections} connections, {args.duration} s per run; claims: "
        f"{args.claim_clients} reps; Celery: ONE worker, pool {args.pool}, concurrency {args.concurrency}"
    )
    print(f"database: {database} (dropped, re-created, migrated); cache and broker: {broker} (flushed)")
    common.recreate_database(env["DATABASE_URL"])
    common.migrate()
    common.django_setup()
    flush_redis()
    seeded = seed(args, run_dir)

    ok = True
    results: dict[str, dict] = {}
    meters: dict[str, common.CpuMeter] = {}

    # --- Claim-next ---------------------------------------------------------------------
    common.rule(f"claim-next: ceiling, pgbench running the claim's SQL, {args.claim_clients} clients")
    queries = claim_probe(seeded["reps"][0])
    claim_queries = len(queries)
    print(f"one case_claim_next runs {len(queries)} SQL statements (CaptureQueriesContext):")
    for sql in queries:
        print(f"  {sql[:160]}{'…' if len(sql) > 160 else ''}")
    reset_queue()
    with common.CpuMeter(database) as meters["pgbench"]:
        results["pgbench"] = pgbench_claims(
            seeded=seeded, clients=args.claim_clients, per_client=args.pgbench_per_client, run_dir=run_dir
        )
    results["pgbench"] = measured(results["pgbench"], meters["pgbench"])
    print(HEADER, row("pgbench: claim SQL", results["pgbench"]), meters["pgbench"].summary(), sep="\n")
    print(f"pgbench: {results['pgbench']['transactions']:,} claims, {results['pgbench']['failed']} failed")
    reset_queue()

    common.rule(f"claim-next: in-process, sequential, {args.claims_inprocess} claims")
    with common.CpuMeter(database) as meters["inprocess"]:
        results["inprocess"] = claims_in_process(rep=seeded["reps"][0], count=args.claims_inprocess)
    results["inprocess"] = measured(results["inprocess"], meters["inprocess"])
    results["inprocess"]["queries"] = claim_queries
    print(HEADER, row("case_claim_next in-process", results["inprocess"]), meters["inprocess"].summary(), sep="\n")
    print(f"max {results['inprocess']['max']:.1f} ms; {results['inprocess']['claimed']} claimed")
    vacuum()

    with ExitStack() as running:
        with environment(CELERY_BROKER_URL=broker):
            port, _server = running.enter_context(
                gunicorn(settings_module="appease.settings", args=args, run_dir=run_dir)
            )

        common.rule(f"claim-next: POST /api/v1/cases/next, {args.claim_clients} reps at once")
        # Warm-up: every worker authenticates and reads the queue (GET lists, claims nothing).
        subprocess.run(
            [
                "wrk",
                f"-t{args.claim_clients}",
                f"-c{args.claim_clients}",
                "-d2s",
                "-H",
                f"Authorization: Token {(seeded['tokens_path']).read_text().split()[0]}",
                f"http://127.0.0.1:{port}/api/v1/cases",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        with common.CpuMeter(database) as meters["claims"]:
            results["claims"] = run_wrk(
                script="claims.lua",
                path="/api/v1/cases/next",
                port=port,
                threads=args.claim_clients,
                connections=args.claim_clients,
                duration=args.claim_duration,
                script_args=[seeded["tokens_path"]],
            )
        time.sleep(1)  # the requests cut off in flight finish on the server
        results["claims"] = measured(results["claims"], meters["claims"])
        print(HEADER, row("POST /api/v1/cases/next", results["claims"]), meters["claims"].summary(), sep="\n")
        print(statuses(results["claims"]))
        # The probe's claim is not counted: reset_queue() reopened it before the pgbench run.
        inprocess_claimed = results["inprocess"]["claimed"]
        ok &= check_claims(
            expected_lo=inprocess_claimed + results["claims"]["s2xx"],
            expected_hi=inprocess_claimed + results["claims"]["s2xx"] + results["claims"]["in_flight"],
            wrk_result=results["claims"],
        )
        token = seeded["tokens_path"].read_text().split()[0]
        queries = probe_api(
            path="/api/v1/cases/next", body=None, headers={"HTTP_AUTHORIZATION": f"Token {token}"}, expect=200
        )
        print_queries("one POST /api/v1/cases/next", queries)
        results["claims"]["queries"] = len(queries)

        # --- Feedback intake ------------------------------------------------------------
        common.rule(f"intake: POST /api/v1/feedback, {args.connections} connections, {args.duration} s")
        feedback_args = [seeded["site_key"], args.customers, args.fresh]
        run_wrk(
            script="feedback.lua",
            path="/api/v1/feedback",
            port=port,
            threads=args.wrk_threads,
            connections=args.connections,
            duration=3,
            script_args=[*feedback_args, "warm"],
        )
        time.sleep(3)  # the warm-up's requests cut off in flight finish before the counts
        customers_before = scalar("SELECT count(*) FROM appease_customer")
        feedback_before = scalar("SELECT count(*) FROM feedback_feedback")
        cases_before = scalar("SELECT count(*) FROM feedback_case")
        flush_redis()  # the throttle counters start empty: what they hold afterwards is this run
        counting_since = time.time()
        with common.CpuMeter(database) as meters["feedback"]:
            results["feedback"] = run_wrk(
                script="feedback.lua",
                path="/api/v1/feedback",
                port=port,
                threads=args.wrk_threads,
                connections=args.connections,
                duration=args.duration,
                script_args=[*feedback_args, "run"],
            )
        time.sleep(1)
        results["feedback"] = measured(results["feedback"], meters["feedback"])
        fb = results["feedback"]
        print(HEADER, row("POST /api/v1/feedback", fb), meters["feedback"].summary(), sep="\n")
        print(statuses(fb))
        made = {
            "feedback": scalar("SELECT count(*) FROM feedback_feedback") - feedback_before,
            "customers": scalar("SELECT count(*) FROM appease_customer") - customers_before,
            "cases": scalar("SELECT count(*) FROM feedback_case") - cases_before,
        }
        print(f"saved: {made['feedback']:,} feedback, {made['cases']:,} new cases, {made['customers']:,} new customers")
        counted = throttle_counts(seeded["site_key"], since=counting_since)
        fb["counted_key"], fb["counted_ip"] = counted["key"], counted["ip"]
        fb["made"] = made
        fb["duplicates"] = duplicate_customers()
        # Both throttles count every request that reaches them (atomic INCRs), so each
        # counter holds at least one per feedback saved (more: requests cut off in flight,
        # refused ones). A counter lives one 60 s window past its first count, so a run
        # much longer than that has lost its first windows: not checked then.
        counters_complete = time.time() - counting_since < 60
        fb["uncounted_key"] = max(0, made["feedback"] - fb["counted_key"])
        fb["uncounted_ip"] = max(0, made["feedback"] - fb["counted_ip"])
        print(
            f"intake throttle counters after the run: per key {fb['counted_key']:,}, per IP {fb['counted_ip']:,}, "
            f"for {made['feedback']:,} feedback saved: {fb['uncounted_key']:,} / {fb['uncounted_ip']:,} not counted"
            + ("" if counters_complete else " (run longer than a counter lives: not checked)")
        )
        print(f"emails held by more than one customer: {fb['duplicates']}")
        body = {
            "site_key": seeded["site_key"],
            "rating": 1,
            "text": "My order is late, still waiting after a week.",
            "email": "probe-new@example.com",
            "incident_type": "",
        }
        queries = probe_api(path="/api/v1/feedback", body=body, headers={}, expect=201)
        print_queries("one POST /api/v1/feedback (a new customer, a new case, the incident type inferred)", queries)
        fb["queries"] = len(queries)
        for label, email in (
            ("an email not in the table (a new customer)", "nobody@example.com"),
            ("the last seeded customer's email", f"customer{args.customers - 1}@example.com"),
        ):
            print(f"the intake's customer look-up by email, {label} (EXPLAIN ANALYZE):")
            print("  " + explain_customer_lookup(email).replace("\n", "\n  "))
        ok &= report(
            [
                ("no non-2xx answers from the feedback intake", fb["errors"] == 0, statuses(fb)),
                (
                    "every feedback saved was counted by both intake throttles",
                    not counters_complete or fb["uncounted_key"] == fb["uncounted_ip"] == 0,
                    f"{fb['uncounted_key']:,} / {fb['uncounted_ip']:,} not counted",
                ),
                (
                    "feedback saved == 201s (up to the requests cut off in flight)",
                    fb["s2xx"] <= made["feedback"] <= fb["s2xx"] + fb["in_flight"],
                    f"{made['feedback']:,} saved for {fb['s2xx']:,} 201s",
                ),
            ]
        )

        # --- Events intake --------------------------------------------------------------
        common.rule(f"intake: POST /api/v1/events, {args.connections} connections, {args.duration} s")
        events_env = {"BENCH_API_KEY": seeded["api_key"]}
        run_wrk(
            script="events.lua",
            path="/api/v1/events",
            port=port,
            threads=args.wrk_threads,
            connections=args.connections,
            duration=3,
            script_args=["warm", args.below_minutes],
            env=events_env,
        )
        time.sleep(3)
        events_before = scalar("SELECT count(*) FROM feedback_merchantevent")
        with common.CpuMeter(database) as meters["events"]:
            results["events"] = run_wrk(
                script="events.lua",
                path="/api/v1/events",
                port=port,
                threads=args.wrk_threads,
                connections=args.connections,
                duration=args.duration,
                script_args=["run", args.below_minutes],
                env=events_env,
            )
        time.sleep(1)
        results["events"] = measured(results["events"], meters["events"])
        ev = results["events"]
        print(HEADER, row("POST /api/v1/events", ev), meters["events"].summary(), sep="\n")
        print(statuses(ev))
        ev["made"] = scalar("SELECT count(*) FROM feedback_merchantevent") - events_before
        import redis

        ev["queued"] = redis.Redis.from_url(broker).llen("celery")
        body = {
            "event_id": "probe",
            "event_type": "delivery_delayed",
            "data": {"delay_minutes": args.below_minutes, "customer": {"email": "probe-event@example.com"}},
        }
        queries = probe_api(
            path="/api/v1/events", body=body, headers={"HTTP_AUTHORIZATION": f"Api-Key {seeded['api_key']}"}, expect=202
        )
        print_queries("one POST /api/v1/events", queries)
        ev["queries"] = len(queries)
        print(
            f"events saved: {ev['made']:,}; messages waiting in the broker (no worker runs; with the warm-up's): "
            f"{ev['queued']:,}"
        )
        ok &= report(
            [
                ("no non-2xx answers from the events intake", ev["errors"] == 0, statuses(ev)),
                (
                    "events saved == 202s (up to the requests cut off in flight)",
                    ev["s2xx"] <= ev["made"] <= ev["s2xx"] + ev["in_flight"],
                    f"{ev['made']:,} saved for {ev['s2xx']:,} 202s",
                ),
            ]
        )

        # --- Event → appeasement sent ----------------------------------------------------
        common.rule(
            f"event → appeasement sent: {args.auto_events} events at {args.auto_rate:g}/s, "
            f"delay_minutes 200, ONE Celery worker"
        )
        # The intake runs queued thousands of events nobody processes here (and the
        # sweeper would, in production): drop their messages so the worker sees only these.
        flush_redis()
        received = running.enter_context(receivers(smtp_port=smtp_port, sms_port=sms_port))
        with environment(CELERY_BROKER_URL=broker):
            running.enter_context(celery_worker(args, run_dir))
        warm = post_events(
            port=port, api_key=seeded["api_key"], tag="auto-warm", count=10, rate=args.auto_rate, delay=200
        )
        wait_sent([item["id"] for item in warm if item["id"]], 60)
        with common.CpuMeter(database) as meters["auto"]:
            posted = post_events(
                port=port,
                api_key=seeded["api_key"],
                tag="auto",
                count=args.auto_events,
                rate=args.auto_rate,
                delay=200,
            )
            auto = measure_auto(posted=posted, received=received, timeout=180)
        results["auto"] = auto
        print(LATENCY_HEADER)
        print(latency_row("POST leaves the client → Delivery row sent", auto["total"]))
        print(latency_row("POST leaves the client → SMTP server has the message", auto["sink"]))
        print(latency_row("event received_at → Delivery sent_at (rows)", auto["server"]))
        print(latency_row("API answer (202)", auto["api"]))
        print(latency_row("event received_at → processed_at", auto["processing"]))
        print(latency_row("event processed_at → delivery sent_at", auto["after"]))
        print(meters["auto"].summary())
        worker_ms = meters["auto"].by_kind.get("celery worker", 0.0) * 1000 / max(1, len(posted))
        auto["worker_ms"] = worker_ms
        print(f"the worker's CPU per event (processing it, then sending its delivery): {worker_ms:.1f} ms")
        ok &= check_auto(result=auto, received=received, rule_id=seeded["rule_id"])

    # --- Summary ------------------------------------------------------------------------
    common.rule("summary")
    print(HEADER)
    print(row(f"POST /api/v1/feedback, {args.connections} connections", results["feedback"]))
    print(row(f"POST /api/v1/events, {args.connections} connections", results["events"]))
    print(row(f"POST /api/v1/cases/next, {args.claim_clients} reps", results["claims"]))
    print(row(f"case_claim_next in-process, sequential, {args.claims_inprocess}", results["inprocess"]))
    print(row(f"ceiling: pgbench claim SQL, {args.claim_clients} clients", results["pgbench"]))
    print(f"claims/s API / pgbench: {results['claims']['rps'] / results['pgbench']['rps']:.3f}")
    print(
        f"errors (non-2xx + socket): feedback {results['feedback']['errors']}, events {results['events']['errors']}, "
        f"claims {results['claims']['errors']}"
    )
    print(LATENCY_HEADER)
    print(latency_row(f"event POST → delivery sent, {args.auto_rate:g}/s", results["auto"]["total"]))
    print(latency_row("event POST → SMTP server has it", results["auto"]["sink"]))
    fb = results["feedback"]
    print(
        f"feedback intake: requests not counted by the throttles {fb['uncounted_key']:,} (per key) / "
        f"{fb['uncounted_ip']:,} (per IP) "
        f"of {fb['made']['feedback']:,}; emails held by two customers: {fb['duplicates']}"
    )
    print(
        f"SQL statements per request: feedback {fb['queries']}, events {results['events']['queries']}, "
        f"claim over the API {results['claims']['queries']} (the service alone: {results['inprocess']['queries']})"
    )
    for name, meter in meters.items():
        print(f"{name}: {meter.summary()}")
    print(f"load average at the end: {common.loadavg()}")
    print("CHECKS:", "OK" if ok else "FAILED")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
