"""Benchmark: 20 concurrent reps issuing over POST /api/v1/issuances, against a ceiling.

Run `bench/issue` (it installs wrk if missing, then runs this) from a clone where
`make install` has been run. Needs PostgreSQL and Redis on loopback. The database in
DATABASE_URL (default postgres://postgres@127.0.0.1:5432/appease_bench) is DROPPED
and re-created.

1. Seeds --reps reps, each with a staff API key and a daily cost budget that runs out
   during the run (so both paths are measured: issued at once, and sent for approval),
   --customers customers, one offer with a pre-generated inventory of codes and a
   reason code.
2. Ceiling: pgbench runs the SQL at the heart of an issuance in one transaction (lock
   the customer, count their recent issuances, spend the day/week/month counters with
   conditional UPDATEs, claim a code with SKIP LOCKED, insert the issuance, the ledger
   and the audit rows), one pgbench client per rep.
3. The real API under gunicorn (DEBUG off, several workers), driven by wrk with one
   connection per rep, every request its own Idempotency-Key and a random customer.
4. Checks: no rep's spend exceeds their budget, every counter equals the sum of its
   rep's issued costs, no code belongs to two issuances, the codes issued equal the
   issuances that got one, and the 201s match the issuances made.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench.redeem import HEADER, gunicorn, measured, row

BENCH = Path(__file__).resolve().parent
AIM_P95_MS = 100
COST = Decimal("3.00")


def seed(*, reps: int, customers: int, codes: int, budget_issuances: int, run_dir: Path) -> dict:
    from django.contrib.auth.models import Group, User

    from appease.core.models import StaffAPIKey
    from appease.issuance.models import Customer, LimitBudget, LimitPolicy, ReasonCode, StaffProfile
    from coupons.models import Offer
    from coupons.services.inventory import code_batch_generate, code_batch_request

    offer = Offer(
        name="Bench: 5 off",
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
    batch = code_batch_request(offer=offer, quantity=codes)
    started = time.perf_counter()
    code_batch_generate(batch_id=batch.pk)
    print(f"generated {codes:,} codes in {time.perf_counter() - started:.1f} s")
    reason = ReasonCode.objects.create(code="late-delivery", label="Late delivery", incident_type="late_delivery")
    budget = COST * budget_issuances
    policy = LimitPolicy.objects.create(name="Bench reps", over_limit="approval", max_issuances_per_customer=1000)
    LimitBudget.objects.create(policy=policy, currency="USD", day_cost_amount=budget)
    group, _created = Group.objects.get_or_create(name="CSR")
    tokens = []
    for n in range(reps):
        user = User.objects.create_user(f"rep{n:02d}", password=None)
        user.groups.add(group)
        StaffProfile.objects.create(user=user, policy=policy)
        _key, token = StaffAPIKey.objects.create_key(name="bench", user=user)
        tokens.append(token)
    Customer.objects.bulk_create(
        Customer(name=f"Customer {n}", email=f"customer{n}@example.com", external_id=f"c{n}") for n in range(customers)
    )
    ids = list(Customer.objects.order_by("pk").values_list("pk", flat=True))
    tokens_path = run_dir / "tokens.txt"
    tokens_path.write_text("\n".join(tokens) + "\n")
    with common_connection() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return {
        "offer_id": offer.pk,
        "reason": reason.code,
        "budget": budget,
        "tokens_path": tokens_path,
        "customer_lo": ids[0],
        "customer_hi": ids[-1],
        "batch_id": batch.pk,
        "policy_id": policy.pk,
    }


def common_connection():
    from django.db import connection

    return connection.cursor()


def run_wrk(*, port: int, seeded: dict, args, think_ms: int = 0) -> dict:
    command = [
        "wrk",
        f"-t{args.reps}",
        f"-c{args.reps}",
        f"-d{args.duration}s",
        "--timeout=10s",
        "-s",
        str(BENCH / "issue.lua"),
        f"http://127.0.0.1:{port}/api/v1/issuances",
        "--",
        str(seeded["tokens_path"]),
        str(seeded["offer_id"]),
        seeded["reason"],
        str(seeded["customer_lo"]),
        str(seeded["customer_hi"]),
        str(think_ms),
        f"think{think_ms}",
    ]
    out = subprocess.run(command, check=True, capture_output=True, text=True, timeout=args.duration + 120)
    line = next(line for line in out.stdout.splitlines() if line.startswith("RESULT "))
    result = {key: int(value) for key, value in (item.split("=") for item in line.split()[1:])}
    seconds = result["duration_us"] / 1e6
    return {
        **result,
        "rps": result["requests"] / seconds,
        "p50": result["p50_us"] / 1000,
        "p95": result["p95_us"] / 1000,
        "p99": result["p99_us"] / 1000,
        "in_flight": result["sent"] - result["requests"],
    }


def run_pgbench(*, seeded: dict, args, run_dir: Path) -> dict:
    """The issuance's SQL alone: one pgbench client per rep, each spending its own counters."""
    from django.contrib.auth.models import User

    first_user = User.objects.filter(username="rep00").values_list("pk", flat=True).get()
    return common.pgbench(
        script=BENCH / "issue_core.sql",
        defines={
            "user_lo": first_user,
            "offer": seeded["offer_id"],
            "customer_lo": seeded["customer_lo"],
            "customer_hi": seeded["customer_hi"],
            "budget": seeded["budget"],
        },
        clients=args.reps,
        jobs=min(args.reps, 4),
        duration=args.duration,
        run_dir=run_dir,
    )


def reset_ceiling(*, seeded: dict) -> None:
    """Undo what the pgbench ceiling wrote, so the real run starts from the same state."""
    with common_connection() as cursor:
        cursor.execute("ALTER TABLE coupons_codeevent DISABLE TRIGGER coupons_codeevent_append_only")
        cursor.execute("ALTER TABLE appease_auditevent DISABLE TRIGGER appease_auditevent_append_only")
        cursor.execute("DELETE FROM appease_auditevent")
        cursor.execute("DELETE FROM appease_issuance")
        cursor.execute("DELETE FROM coupons_codeevent")
        cursor.execute("ALTER TABLE coupons_codeevent ENABLE TRIGGER coupons_codeevent_append_only")
        cursor.execute("ALTER TABLE appease_auditevent ENABLE TRIGGER appease_auditevent_append_only")
        cursor.execute(
            "UPDATE coupons_code SET status = 'available', issued_at = NULL, expires_at = NULL WHERE batch_id = %s",
            [seeded["batch_id"]],
        )
        cursor.execute("DELETE FROM appease_budgetcounter")
        cursor.execute("VACUUM ANALYZE")


def check(*, seeded: dict, real: dict) -> bool:
    with common_connection() as cursor:
        cursor.execute(
            "SELECT csr_id, coalesce(sum(cost_amount), 0) FROM appease_issuance WHERE status = 'issued' GROUP BY csr_id"
        )
        spent = dict(cursor.fetchall())
        cursor.execute("SELECT user_id, spent_cost_amount FROM appease_budgetcounter WHERE period = 'day'")
        counters = dict(cursor.fetchall())
        cursor.execute("SELECT count(*) FROM appease_issuance")
        issuances = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM appease_issuance WHERE status = 'issued'")
        issued = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM appease_issuance WHERE status = 'pending_approval'")
        pending = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM (SELECT code_id FROM appease_issuance WHERE code_id IS NOT NULL "
            "GROUP BY code_id HAVING count(*) > 1) AS twice"
        )
        twice = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM coupons_code WHERE batch_id = %s AND status = 'issued'", [seeded["batch_id"]]
        )
        codes_issued = cursor.fetchone()[0]
    budget = seeded["budget"]
    over = {user: amount for user, amount in spent.items() if amount > budget}
    mismatched = {user for user in set(spent) | set(counters) if spent.get(user, 0) != counters.get(user, 0)}
    received = real["s201"]
    checks = [
        ("no rep spent more than their budget", not over, f"{len(over)} over"),
        ("every day counter equals its rep's issued cost", not mismatched, f"{len(mismatched)} differ"),
        ("no code belongs to two issuances", twice == 0, f"{twice}"),
        ("codes issued == issuances issued", codes_issued == issued, f"{codes_issued:,} vs {issued:,}"),
        (
            "201s received == issuances (up to those cut off in flight when wrk stopped)",
            received <= issuances <= received + real["in_flight"],
            f"201s {received:,}, issuances {issuances:,}",
        ),
        ("no errors under load", real["s4xx"] + real["s5xx"] + real["other"] == 0, ""),
    ]
    print(
        f"issuances: {issuances:,} ({issued:,} issued at once, {pending:,} sent for approval once the budgets ran out)"
    )
    print(f"responses: 201 {received:,}, 4xx {real['s4xx']:,}, 5xx {real['s5xx']:,}")
    for name, ok, detail in checks:
        print(f"CHECK {'OK    ' if ok else 'FAILED'} {name}{': ' + detail if detail else ''}")
    return all(ok for _, ok, _ in checks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20, help="concurrent reps (wrk connections, pgbench clients)")
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--codes", type=int, default=100_000, help="codes in the offer's inventory")
    parser.add_argument("--budget-issuances", type=int, default=25, help="each rep's daily budget, in issuances")
    parser.add_argument("--duration", type=int, default=20, help="seconds per run")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--worker-class", default="gthread")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--think-ms", type=int, default=1000, help="mean pause between a rep's issuances in the realistic run"
    )
    args = common.parse_args(
        parser,
        smoke={
            "reps": 2,
            "customers": 50,
            "codes": 10_000,  # pgbench runs for the duration: enough codes for a quiet machine too
            "budget_issuances": 5,
            "duration": 2,
            "workers": 1,
            "think_ms": 100,
        },
    )

    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/1")
    env = common.apply_environment()
    database = common.database_name(env["DATABASE_URL"])
    run_dir = Path(os.environ.get("BENCH_RUN_DIR") or tempfile.mkdtemp(prefix="appease-bench-"))

    common.rule("set-up")
    print(f"CPU: {common.cpu_model()}, {len(os.sched_getaffinity(0))} cores; load average: {common.loadavg()}")
    print(
        f"gunicorn: {args.workers} workers, {args.worker_class}, {args.threads} threads; "
        f"{args.reps} reps, {args.duration} s per run; each rep's budget: {args.budget_issuances} issuances"
    )
    common.recreate_database(env["DATABASE_URL"])
    common.migrate()
    common.django_setup()
    seeded = seed(
        reps=args.reps,
        customers=args.customers,
        codes=args.codes,
        budget_issuances=args.budget_issuances,
        run_dir=run_dir,
    )

    results, meters = {}, {}
    common.rule("ceiling: pgbench, the issuance's SQL alone")
    with common.CpuMeter(database) as meters["pgbench"]:
        results["pgbench"] = run_pgbench(seeded=seeded, args=args, run_dir=run_dir)
    results["pgbench"] = measured(results["pgbench"], meters["pgbench"])
    print(HEADER, row("pgbench", results["pgbench"]), meters["pgbench"].summary(), sep="\n")
    reset_ceiling(seeded=seeded)

    args.connections, args.wrk_threads = args.reps, args.reps
    with gunicorn(settings_module="appease.settings", args=args, run_dir=run_dir) as (port, _server):
        common.rule(f"the real API, reps pausing ~{args.think_ms} ms between issuances")
        with common.CpuMeter(database) as meters["paced"]:
            results["paced"] = run_wrk(port=port, seeded=seeded, args=args, think_ms=args.think_ms)
        results["paced"] = measured(results["paced"], meters["paced"])
        print(HEADER, row("paced", results["paced"]), meters["paced"].summary(), sep="\n")

        common.rule("the real API, back to back (saturation)")
        with common.CpuMeter(database) as meters["real"]:
            results["real"] = run_wrk(port=port, seeded=seeded, args=args)
        time.sleep(1)
    results["real"] = measured(results["real"], meters["real"])
    print(HEADER, row("real", results["real"]), meters["real"].summary(), sep="\n")
    results["real"]["s201"] += results["paced"]["s201"]
    results["real"]["s4xx"] += results["paced"]["s4xx"]
    results["real"]["s5xx"] += results["paced"]["s5xx"]
    results["real"]["other"] += results["paced"]["other"]
    results["real"]["in_flight"] += results["paced"]["in_flight"]

    common.rule("checks")
    ok = check(seeded=seeded, real=results["real"])

    common.rule("summary")
    print(HEADER)
    print(row(f"real API, reps pausing ~{args.think_ms} ms", results["paced"]))
    print(row("real API, back to back", results["real"]))
    print(row("ceiling: pgbench, the issuance's SQL", results["pgbench"]))
    ratio = results["real"]["rps"] / results["pgbench"]["rps"]
    print(f"throughput real / pgbench: {ratio:.2f}")
    for key, name in (("paced", "with reps pausing"), ("real", "back to back")):
        p95 = results[key]["p95"]
        print(f"AIM p95 < {AIM_P95_MS} ms, {name}: {'met' if p95 < AIM_P95_MS else 'MISSED'} ({p95:.1f} ms)")
    print("CHECKS:", "OK" if ok else "FAILED")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
