"""Benchmark: generate 1,000,000 codes for one offer through the real service.

Run `bench/generate` from a clone where `make install` has been run. Needs PostgreSQL
(DATABASE_URL, default postgres://postgres@127.0.0.1:5432/appease_bench): that
database is DROPPED and re-created, then migrated with `manage.py migrate`.

Measures, in one run:
1. the pure-Python cost per code of what the service does before COPY (generate,
   format, HMAC, Fernet, the row), on one core;
2. what PostgreSQL alone costs: the same number of rows COPYed into an identical
   scratch table (same columns, indexes, constraints and foreign keys) from a
   pre-formatted buffer of random bytes, then again without the foreign keys (what
   their checks cost);
3. the service: `code_batch_request` then `code_batch_generate(batch_id=...)`,
   in-process (not through Celery), all codes in one transaction;
then checks the count and the uniqueness of lookup_hash, the constant columns, and
that a sample of the stored codes decrypts to a code whose HMAC is its lookup_hash.

Options: --codes N (default 1,000,000), --sample N (Python-only sample, default
100,000), --profile (cProfile the service on --sample codes and print the top),
--sequential (the service with its worker processes off, for comparison).
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import io
import os
import pstats
import sys
import time
from collections import deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

TARGET_SECONDS = 60
SCRATCH = "bench_code_scratch"


def python_only(*, offer, batch, sample: int) -> dict[str, float]:
    """Seconds per code of each step the service runs in Python, on one core."""
    from django.utils import timezone

    from coupons import codes
    from coupons.services import inventory

    seconds: dict[str, float] = {}
    with common.timed(seconds, "generate"):
        new_codes = [inventory._new_generated(prefix=offer.code_prefix, balance=None) for _ in range(sample)]
    with common.timed(seconds, "hmac"):
        for new in new_codes:
            codes.lookup_hash(new.normalised)
    with common.timed(seconds, "fernet"):
        for new in new_codes:
            codes.encrypt(new.display)
    with common.timed(seconds, "row tuple (sequential path)"):
        fresh = (inventory._new_generated(prefix=offer.code_prefix, balance=None) for _ in range(sample))
        deque(inventory._rows(offer=offer, batch=batch, new_codes=fresh), maxlen=0)
    with common.timed(seconds, "COPY text row (worker path)"):
        job = (offer, batch, None, timezone.now(), inventory.PARALLEL_CHUNK)
        for _ in range(sample // inventory.PARALLEL_CHUNK):
            inventory._generated_copy_text(job)
    seconds["COPY text row (worker path)"] *= sample / (sample // inventory.PARALLEL_CHUNK * inventory.PARALLEL_CHUNK)
    return {name: value / sample for name, value in seconds.items()}


def scratch_copy_text(*, offer, batch, count: int) -> list[bytes]:
    """Rows shaped like the service's, from precomputed random bytes, in COPY text format (8 MB chunks)."""
    from django.utils import timezone

    now = timezone.now()
    chunks, lines, size = [], [], 0
    for _ in range(count):
        digest = os.urandom(32)
        token = base64.urlsafe_b64encode(os.urandom(89)).decode()  # 89 bytes: a Fernet token for a 21-char code
        line = f"{offer.pk}\t{batch.pk}\t\\\\x{digest.hex()}\t{token}\t{token[-4:]}\tavailable\tUSD\t\\N\t\\N\t{now}\n"
        lines.append(line)
        size += len(line)
        if size > 8_000_000:
            chunks.append("".join(lines).encode())
            lines, size = [], 0
    if lines:
        chunks.append("".join(lines).encode())
    return chunks


def create_scratch(*, foreign_keys: bool) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {SCRATCH}")
        cursor.execute(f"CREATE TABLE {SCRATCH} (LIKE coupons_code INCLUDING ALL)")
        if foreign_keys:
            # The same foreign keys as coupons_code (Django makes them deferred).
            cursor.execute(
                f"ALTER TABLE {SCRATCH} "
                "ADD FOREIGN KEY (offer_id) REFERENCES coupons_offer (id) DEFERRABLE INITIALLY DEFERRED, "
                "ADD FOREIGN KEY (batch_id) REFERENCES coupons_codebatch (id) DEFERRABLE INITIALLY DEFERRED"
            )


def checkpoint() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")


def copy_scratch(chunks: list[bytes], *, foreign_keys: bool) -> float:
    """Seconds to COPY the chunks into a fresh scratch table and commit."""
    from django.db import connection, transaction

    from coupons.services.inventory import _COPY_COLUMNS

    create_scratch(foreign_keys=foreign_keys)
    checkpoint()
    sql = f"COPY {SCRATCH} ({', '.join(_COPY_COLUMNS)}) FROM STDIN"
    start = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for chunk in chunks:
            copy.write(chunk)
    seconds = time.perf_counter() - start
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {SCRATCH}")
    return seconds


def verify(*, batch_id: int, expected: int, sample: int = 1000) -> None:
    from django.db import connection

    from coupons import codes
    from coupons.models import Code, CodeBatch

    batch = CodeBatch.objects.get(pk=batch_id)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), count(DISTINCT lookup_hash) FROM coupons_code WHERE batch_id = %s", [batch_id])
        total, distinct = cursor.fetchone()
        cursor.execute("SELECT count(*), count(DISTINCT lookup_hash) FROM coupons_code")
        all_total, all_distinct = cursor.fetchone()
        cursor.execute(
            "SELECT count(*) FROM coupons_code WHERE batch_id = %s AND (offer_id <> %s OR status <> 'available' "
            "OR currency <> %s OR balance_amount IS NOT NULL OR created_at IS NULL OR length(last4) <> 4)",
            [batch_id, batch.offer_id, batch.offer.currency],
        )
        malformed = cursor.fetchone()[0]
    print(f"batch status: {batch.status}; codes in batch: {total:,}; distinct lookup_hash: {distinct:,}")
    print(f"whole table: {all_total:,} codes, {all_distinct:,} distinct lookup_hash")
    print(f"rows with a wrong offer, status, currency, balance, created_at or last4: {malformed}")
    checked = 0
    for code in Code.objects.filter(batch_id=batch_id).order_by("?")[:sample]:
        plaintext = codes.decrypt(code.ciphertext)
        normalised = codes.normalise(plaintext)
        assert bytes(code.lookup_hash) == codes.lookup_hash(normalised), code.pk
        assert code.last4 == codes.last4(normalised), code.pk
        assert plaintext == codes.format_for_reading(normalised), code.pk
        checked += 1
    print(f"sample of {checked:,} codes: ciphertext decrypts to a code whose HMAC is its lookup_hash")
    ok = (
        batch.status == CodeBatch.Status.DONE
        and total == distinct == expected
        and all_total == all_distinct
        and malformed == 0
    )
    print("CHECK:", "OK" if ok else "FAILED")
    if not ok:
        raise SystemExit(1)


def profile_service(*, offer, count: int) -> None:
    from coupons.services.inventory import code_batch_generate, code_batch_request

    batch = code_batch_request(offer=offer, quantity=count)
    profiler = cProfile.Profile()
    profiler.runcall(code_batch_generate, batch_id=batch.pk)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
    print(out.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codes", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=100_000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--sequential", action="store_true", help="the service without its worker processes (one core, as before)"
    )
    # Smoke: the parallel path (PARALLEL_MIN_CODES) and one chunk of the pure-Python ceiling.
    args = common.parse_args(parser, smoke={"codes": 50_000, "sample": 10_000})

    env = common.apply_environment()
    common.rule("set-up")
    print(f"database: {common.database_name(env['DATABASE_URL'])} (dropped, re-created, migrated)")
    common.recreate_database(env["DATABASE_URL"])
    common.migrate()
    common.django_setup()

    from decimal import Decimal

    from django.db import connection

    from coupons.models import Offer
    from coupons.services.inventory import code_batch_generate, code_batch_request

    offer = Offer(
        name="Bench: 5 off",
        kind=Offer.Kind.AMOUNT_OFF,
        description="5 off your next order",
        value_amount=Decimal("5.00"),
        currency="USD",
        validity_days=30,
    )
    offer.full_clean()
    offer.save()
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        print(cursor.fetchone()[0])
    print(f"CPU: {common.cpu_model()}, {len(os.sched_getaffinity(0))} cores; load average: {common.loadavg()}")

    if args.profile:
        common.rule(f"cProfile of code_batch_generate, {args.sample:,} codes")
        profile_service(offer=offer, count=args.sample)

    batch = code_batch_request(offer=offer, quantity=args.codes)

    common.rule(f"ceiling: pure Python per code ({args.sample:,} codes, one core)")
    per_code = python_only(offer=offer, batch=batch, sample=args.sample)
    for name, seconds in per_code.items():
        print(f"{name:<30} {seconds * 1e6:7.2f} µs/code  ({1 / seconds:>9,.0f} codes/s)")
    python_all = per_code["COPY text row (worker path)"]

    common.rule(f"ceiling: PostgreSQL alone, COPY of {args.codes:,} precomputed rows into {SCRATCH}")
    chunks = scratch_copy_text(offer=offer, batch=batch, count=args.codes)
    pg_seconds = copy_scratch(chunks, foreign_keys=True)
    print(f"identical table (indexes, constraints, foreign keys): {pg_seconds:6.2f} s")
    pg_no_fk_seconds = copy_scratch(chunks, foreign_keys=False)
    print(f"same, without the two foreign keys:                  {pg_no_fk_seconds:6.2f} s")
    del chunks
    checkpoint()

    common.rule(f"the service: code_batch_generate, {args.codes:,} codes in one transaction")
    database = common.database_name(env["DATABASE_URL"])
    if args.sequential:
        from coupons.services import inventory

        inventory.PARALLEL_MIN_CODES = args.codes + 1
        print("(sequential: worker processes off)")
    with common.CpuMeter(database) as meter:
        code_batch_generate(batch_id=batch.pk)
    seconds = meter.wall
    print(f"total: {seconds:.2f} s ({args.codes / seconds:,.0f} codes/s)")
    print(meter.summary())

    common.rule("verify")
    verify(batch_id=batch.pk, expected=args.codes)

    cores = len(os.sched_getaffinity(0))
    common.rule("summary")
    table = [
        ("service: code_batch_generate", seconds),
        ("ceiling: PostgreSQL alone (COPY, identical table)", pg_seconds),
        ("  of which foreign-key checks", pg_seconds - pg_no_fk_seconds),
        ("ceiling: Python alone, one core", python_all * args.codes),
        (f"ceiling: Python alone, {cores} cores", python_all * args.codes / cores),
    ]
    print(f"{'':<52} {'seconds':>8} {'codes/s':>10}")
    for name, value in table:
        print(f"{name:<52} {value:8.2f} {args.codes / value if value > 0 else 0:>10,.0f}")
    print(f"service / PostgreSQL alone: {seconds / pg_seconds:.2f}x")
    print(f"service: {meter.summary()}")
    print(f"load average at the end: {common.loadavg()}")
    print("TARGET:", "met" if seconds < TARGET_SECONDS else "MISSED", f"({seconds:.1f} s vs < {TARGET_SECONDS} s)")


if __name__ == "__main__":
    main()
