"""Idempotency keys: a retried write returns the first answer and has no second effect.

The key row is claimed before the work starts with one `INSERT … ON CONFLICT DO
NOTHING` (autocommitted): exactly one of any number of concurrent requests inserts it,
and the others find the row without a failed statement (no unique-violation ERROR in
the database's log per replay). A request that finds the key still in progress waits
for it, polling, up to IDEMPOTENCY_WAIT, then replays the first answer; only past that
wait is it told 409. The service that does the work completes the key *inside its own
transaction*: the effect and the stored answer commit together or not at all.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext as _

from appease.core.exceptions import ApplicationError
from appease.core.models import IdempotencyKey

MAX_KEY_LENGTH = 255


def request_fingerprint(data: Any) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotency_key_begin(*, scope: str, owner: str, key: str, fingerprint: str) -> IdempotencyKey:
    """Claim `key` for this request, or return the completed key to replay.

    Raises ApplicationError: 422 `idempotency_key_reused` when the key came with
    another body, 409 `idempotency_key_in_use` while the first request still runs.
    """
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ApplicationError(
            "invalid_idempotency_key",
            _("The Idempotency-Key header must be 1 to %(max)d characters.") % {"max": MAX_KEY_LENGTH},
            status=400,
        )
    deadline = time.monotonic() + settings.IDEMPOTENCY_WAIT.total_seconds()
    while True:
        now = timezone.now()
        record = _claim(scope=scope, owner=owner, key=key, fingerprint=fingerprint, now=now)
        if record is not None:
            return record
        record = IdempotencyKey.objects.filter(scope=scope, owner=owner, key=key).first()
        if record is None:
            continue  # released (or purged) since the INSERT: claim it again
        if record.fingerprint != fingerprint:
            raise ApplicationError(
                "idempotency_key_reused",
                _("This Idempotency-Key was used with a different request body."),
                status=422,
            )
        if record.is_completed:
            return record
        # A holder that has not finished within the lock timeout is presumed crashed; one
        # retry (and only one: the update is conditional on the old lock time) takes over.
        stale_before = now - settings.IDEMPOTENCY_LOCK_TIMEOUT
        taken = IdempotencyKey.objects.filter(
            pk=record.pk,
            status=IdempotencyKey.Status.IN_PROGRESS,
            locked_at=record.locked_at,
            locked_at__lt=stale_before,
        ).update(locked_at=now)
        if taken:
            record.locked_at = now
            return record
        if time.monotonic() >= deadline:
            raise ApplicationError(
                "idempotency_key_in_use",
                _("A request with this Idempotency-Key is still being processed."),
                status=409,
            )
        # The first request is running (an issuance takes tens of milliseconds): wait for
        # its answer rather than make the client retry.
        time.sleep(settings.IDEMPOTENCY_POLL_SECONDS)


def _claim(*, scope: str, owner: str, key: str, fingerprint: str, now) -> IdempotencyKey | None:
    """Insert the key as in progress; None if it exists already. One statement that
    cannot fail on the unique constraint (PostgreSQL and SQLite ≥ 3.35 both have
    `ON CONFLICT … DO NOTHING` and `RETURNING`)."""
    q = connection.ops.quote_name
    table = q(IdempotencyKey._meta.db_table)
    columns = ", ".join(q(c) for c in ("scope", "owner", "key", "fingerprint", "status", "locked_at", "created_at"))
    status = IdempotencyKey.Status.IN_PROGRESS.value
    stamp = connection.ops.adapt_datetimefield_value(now)
    # Only quoted model names are interpolated; every value is a parameter.
    sql = (
        f"INSERT INTO {table} ({columns}) VALUES (%s, %s, %s, %s, %s, %s, %s)"  # noqa: S608
        f" ON CONFLICT ({q('scope')}, {q('owner')}, {q('key')}) DO NOTHING RETURNING {q('id')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [scope, owner, key, fingerprint, status, stamp, stamp])
        row = cursor.fetchone()
    if row is None:
        return None
    return IdempotencyKey(
        pk=row[0], scope=scope, owner=owner, key=key, fingerprint=fingerprint, status=status, locked_at=now
    )


def idempotency_key_complete(*, record: IdempotencyKey, response_status: int, result: dict[str, Any]) -> None:
    """Store the answer. Call inside the transaction that made the effect."""
    IdempotencyKey.objects.filter(pk=record.pk).update(
        status=IdempotencyKey.Status.COMPLETED,
        response_status=response_status,
        result=result,
        completed_at=timezone.now(),
    )
    record.status = IdempotencyKey.Status.COMPLETED
    record.response_status = response_status
    record.result = result


def idempotency_key_release(*, record: IdempotencyKey) -> None:
    """Forget an unfinished key (the request failed without effect), so a retry runs."""
    IdempotencyKey.objects.filter(pk=record.pk, status=IdempotencyKey.Status.IN_PROGRESS).delete()


def idempotency_key_settle(*, record: IdempotencyKey | None, error: BaseException, store: bool = True) -> None:
    """After a failed attempt: keep a business refusal as the answer a retry replays,
    or forget the key (an unexpected error, or `store=False`) so a retry runs again."""
    if record is None:
        return
    if store and isinstance(error, ApplicationError):
        idempotency_key_complete(
            record=record,
            response_status=error.status,
            result={"error": error.code, "detail": error.message, **error.extra},
        )
    else:
        idempotency_key_release(record=record)


def idempotency_keys_purge(*, now=None) -> int:
    """Delete keys older than IDEMPOTENCY_KEY_TTL (at least 24 hours)."""
    cutoff = (now or timezone.now()) - settings.IDEMPOTENCY_KEY_TTL
    deleted, _details = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted
