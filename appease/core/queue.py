"""Enqueue Celery tasks only after the transaction that wrote their rows commits.

The database row is the truth (the outbox); the message only says "look now". So a
broker that is down at commit time must not fail the request or roll anything back:
the error is logged and a beat sweeper enqueues the row later.
"""

from __future__ import annotations

import logging

from django.db import transaction

from appease.core.observability import request_id_var

logger = logging.getLogger(__name__)


def enqueue_on_commit(task, *args) -> None:
    """`task.delay(*args)` once the current transaction commits; never raises.

    The request id of the moment (not of whenever the commit runs) goes with the task.
    """

    request_id = request_id_var.get()

    def publish() -> None:
        try:
            task.apply_async(args=args, headers={"request_id": request_id} if request_id else None)
        except Exception:
            # The sweeper re-enqueues the row; args are ids only, safe to log.
            logger.warning("enqueue of %s%r failed; the sweeper will retry", task.name, args, exc_info=True)

    transaction.on_commit(publish)
