"""Idempotency keys: a retried write returns the first answer and has no second effect.

The key row is claimed in its own short transaction before the work starts, so a
concurrent request with the same key sees it and gets 409 instead of waiting. The
service that does the work completes the key *inside its own transaction*: the effect
and the stored answer commit together or not at all.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from appease.exceptions import ApplicationError
from appease.models import IdempotencyKey

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
    now = timezone.now()
    try:
        with transaction.atomic():
            return IdempotencyKey.objects.create(
                scope=scope, owner=owner, key=key, fingerprint=fingerprint, locked_at=now
            )
    except IntegrityError:
        pass

    record = IdempotencyKey.objects.get(scope=scope, owner=owner, key=key)
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
    raise ApplicationError(
        "idempotency_key_in_use",
        _("A request with this Idempotency-Key is still being processed."),
        status=409,
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
