"""Delivery: the outbox that gets every message to the customer, once.

- `delivery_create` writes the row in the caller's transaction and enqueues the task
  on commit, with the delivery id only (never the code).
- `delivery_send` claims the row with a conditional update (`pending → sending`, with
  a lease), sends while a heartbeat renews the lease, and records the outcome. A row
  that is not `pending` and due is never sent, however many times the task runs; the
  claim's attempt number fences every later write (a worker that lost its lease
  changes nothing).
- Transient errors go back to `pending` with a due time (exponential backoff with
  jitter, or the provider's Retry-After) until DELIVERY_RETRY_HORIZON after the first
  attempt; then the row is `dead`. Permanent errors fail at once with the reason.
- `deliveries_requeue` sends dead deliveries again in bulk (operators, after an outage).
- Each kind of message is registered by the app that owns it (appease/delivery/kinds.py):
  its composer, and the hook told of each outcome in the transaction that records it.
  The outbox knows no caller.
- `deliveries_sweep` (beat) re-enqueues rows left `pending` past their due time and
  rows stuck `sending` past their lease: a broker outage at commit time or a killed
  worker delays a delivery but never loses it.
See docs/adr/0006-delivery-outbox.md and docs/delivery.md.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection, transaction
from django.db.models import F, Model
from django.utils import timezone
from django.utils.translation import gettext as _
from phonenumber_field.phonenumber import to_python

from appease.core.audit import audit_event_record
from appease.core.context import Actor
from appease.core.observability import request_id_var
from appease.core.queue import enqueue_on_commit
from appease.delivery.channels.base import PermanentError, TransientError, adapter_for
from appease.delivery.channels.sms import segments
from appease.delivery.kinds import Outcome, UnknownKind, kind_for, outcome_listeners
from appease.delivery.messages import message_compose
from appease.delivery.models import Channel, Delivery, DeliveryAttempt, DeliveryStatusEvent

logger = logging.getLogger(__name__)


def _send_task():
    # A service and its own task: the task module imports this one to call delivery_send.
    from appease.delivery.tasks import delivery_send_task

    return delivery_send_task


def _enqueue(delivery: Delivery) -> None:
    enqueue_on_commit(_send_task(), str(delivery.pk))


def delivery_create(
    *,
    issuance: Model | None = None,
    customer=None,
    kind: str = Delivery.Kind.APPEASEMENT,
    channel: str | None = None,
    resend_of: Delivery | None = None,
    actor: Actor | None = None,
    address: str = "",
) -> Delivery:
    """Queue a message of a registered `kind` (in the caller's transaction): the
    appeasement of `issuance` (an `appease.Issuance`, the delivery's foreign key), or a
    message to `customer` through `channel`; to `address` when given (a contact the rep
    corrected), else to the customer's own. A `webhook` has no customer: its `address`
    is the endpoint's URL. UnknownKind if no app registered `kind`."""
    kind_for(kind)  # fail here, in the caller's transaction, not at send time
    if customer is None and issuance is not None:
        customer = issuance.customer
    channel = channel or issuance.channel
    delivery = Delivery.objects.create(
        issuance=issuance,
        customer=customer,
        kind=kind,
        channel=channel,
        address=address or customer.address_for(channel),
        language=(customer.language if customer is not None else "") or settings.LANGUAGE_CODE,
        next_attempt_at=timezone.now(),
        resend_of=resend_of,
        requested_by=actor.user if actor else None,
        # Kept on the row: the sweeper's re-enqueue carries it to the worker's log lines.
        request_id=(actor.request_id if actor else "") or request_id_var.get(),
    )
    _enqueue(delivery)
    return delivery


def backoff_seconds(attempt: int, *, retry_after: float | None = None) -> float:
    """Exponential backoff, each step capped, jittered over its upper half; a provider's
    Retry-After wins if longer (capped the same)."""
    cap = settings.DELIVERY_BACKOFF_MAX_SECONDS
    step = min(settings.DELIVERY_BACKOFF_BASE_SECONDS * (2 ** min(attempt - 1, 62)), cap)
    delay = random.uniform(step / 2, step)  # noqa: S311  (jitter, not security)
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return delay


def delivery_send(*, delivery_id) -> str:
    """Try to send one delivery now. Safe to call any number of times, concurrently."""
    now = timezone.now()
    claimed = Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.PENDING, next_attempt_at__lte=now).update(
        status=Delivery.Status.SENDING,
        lease_expires_at=now + settings.DELIVERY_LEASE,
        attempts=F("attempts") + 1,
    )
    if not claimed:
        return "not_due"
    delivery = Delivery.objects.select_related("customer").get(pk=delivery_id)
    started = timezone.now()
    try:
        kind_for(delivery.kind)
    except UnknownKind as error:
        return _unknown_kind(delivery, error, started)
    try:
        with _lease_kept(delivery):
            message = message_compose(delivery=delivery)
            result = adapter_for(delivery.channel).send(message)
    except TransientError as error:
        return _transient(delivery, error, started)
    except PermanentError as error:
        return _permanent(delivery, error, started)
    except Exception as error:
        # A bug or an unexpected library error: treat as transient (bounded by the
        # horizon) rather than losing the delivery.
        logger.exception("delivery %s: unexpected error", delivery.pk)
        return _transient(delivery, TransientError(f"unexpected {type(error).__name__}"), started)
    return _sent(delivery, result, started, detail=_describe(message))


def _ours(delivery: Delivery):
    """The row as this claim left it: `sending`, with this claim's attempt number. A
    worker whose lease expired (and whose row the sweeper handed on) matches nothing."""
    return Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.SENDING, attempts=delivery.attempts)


@contextmanager
def _lease_kept(delivery: Delivery):
    """Renew the claim's lease every DELIVERY_LEASE_RENEW_EVERY while the body runs (a
    heartbeat thread with its own database connection), for at most
    DELIVERY_SEND_DEADLINE: a killed worker stops renewing, and its lease soon expires."""
    stop = threading.Event()
    deadline = time.monotonic() + settings.DELIVERY_SEND_DEADLINE.total_seconds()
    every = settings.DELIVERY_LEASE_RENEW_EVERY.total_seconds()

    def renew() -> None:
        try:
            while not stop.wait(every):
                if time.monotonic() > deadline:
                    logger.warning("delivery %s: send past its deadline; the lease is left to expire", delivery.pk)
                    return
                try:
                    if not _ours(delivery).update(lease_expires_at=timezone.now() + settings.DELIVERY_LEASE):
                        return  # finished, or no longer ours
                except Exception:
                    logger.warning("delivery %s: could not renew the lease", delivery.pk, exc_info=True)
        finally:
            connection.close()  # this thread's own

    heartbeat = threading.Thread(target=renew, name=f"lease-{delivery.pk}", daemon=True)
    heartbeat.start()
    try:
        yield
    finally:
        stop.set()
        heartbeat.join(timeout=10)


def _describe(message) -> str:
    """What the attempt log says of a sent message: for SMS, its segments (billing)."""
    if message.channel != "sms":
        return ""
    counted = segments(message.text)
    return f"{counted.segments} SMS segment(s), {counted.encoding}, {counted.characters} characters"


@transaction.atomic
def _sent(delivery: Delivery, result, started, *, detail: str = "") -> str:
    now = timezone.now()
    _attempt(delivery, started, DeliveryAttempt.Outcome.SENT, result.status_code, detail)
    _ours(delivery).update(
        status=Delivery.Status.SENT,
        provider_message_id=result.provider_message_id[:255],
        sent_at=now,
        lease_expires_at=None,
        last_error="",
    )
    _outcome(delivery, Outcome(status=Delivery.Status.SENT, at=now))
    logger.info("delivery %s sent by %s after %d attempt(s)", delivery.pk, delivery.channel, delivery.attempts)
    return "sent"


@transaction.atomic
def _transient(delivery: Delivery, error: TransientError, started) -> str:
    _attempt(delivery, started, DeliveryAttempt.Outcome.TRANSIENT, error.status_code, error.detail)
    delay = backoff_seconds(delivery.attempts, retry_after=error.retry_after)
    now = timezone.now()
    used = delivery.attempts - delivery.attempts_before_requeue
    if used >= settings.DELIVERY_MAX_ATTEMPTS or _past_horizon(delivery, now + timedelta(seconds=delay)):
        _give_up(delivery, status=Delivery.Status.DEAD, reason="exhausted", detail=error.detail)
        return "dead"
    _ours(delivery).update(
        status=Delivery.Status.PENDING,
        next_attempt_at=now + timedelta(seconds=delay),
        lease_expires_at=None,
        last_error=error.detail[:255],
    )
    # A short countdown for speed; the due time in the row is the truth, and the
    # sweeper sends it if this message is lost.
    transaction.on_commit(lambda: _publish_later(_send_task(), str(delivery.pk), delay))
    return "retry"


def _past_horizon(delivery: Delivery, next_attempt_at: datetime) -> bool:
    """Would the next attempt come later than DELIVERY_RETRY_HORIZON after the first one
    (the first logged since the last requeue: a delivery that waited out a broker outage
    has its full horizon)?"""
    since_requeue = delivery.attempt_log.filter(number__gt=delivery.attempts_before_requeue)
    first = since_requeue.order_by("number").values_list("started_at", flat=True).first()
    return first is not None and next_attempt_at - first > settings.DELIVERY_RETRY_HORIZON


def _publish_later(task, delivery_id: str, delay: float) -> None:
    try:
        task.apply_async(args=[delivery_id], countdown=delay)
    except Exception:
        logger.warning("delivery %s: could not schedule the retry; the sweeper will", delivery_id, exc_info=True)


@transaction.atomic
def _permanent(delivery: Delivery, error: PermanentError, started) -> str:
    _attempt(delivery, started, DeliveryAttempt.Outcome.PERMANENT, error.status_code, error.detail)
    _give_up(delivery, status=Delivery.Status.FAILED, reason=error.reason, detail=error.detail)
    return "failed"


@transaction.atomic
def _unknown_kind(delivery: Delivery, error: UnknownKind, started) -> str:
    """No app registered the row's kind: retrying cannot help until a worker knows it, so
    the row is dead at once (a dead letter an operator can requeue), never retried."""
    logger.error("delivery %s: %s", delivery.pk, error)
    _attempt(delivery, started, DeliveryAttempt.Outcome.PERMANENT, None, str(error))
    _give_up(delivery, status=Delivery.Status.DEAD, reason="unknown_kind", detail=str(error))
    return "dead"


def _give_up(delivery: Delivery, *, status: str, reason: str, detail: str) -> None:
    now = timezone.now()
    given_up = _ours(delivery).update(
        status=status, failure_reason=reason[:40], last_error=detail[:255], failed_at=now, lease_expires_at=None
    )
    if not given_up:
        # The lease expired meanwhile and the sweeper handed the row on: not ours to fail.
        return
    _outcome(delivery, Outcome(status=status, at=now))
    logger.warning("delivery %s %s (%s) after %d attempt(s)", delivery.pk, status, reason, delivery.attempts)


def _outcome(delivery: Delivery, outcome: Outcome) -> None:
    """Tell the kind's owner, in the transaction that records the outcome."""
    try:
        hook = kind_for(delivery.kind).on_outcome
    except UnknownKind:
        return  # dead for that very reason: nobody to tell
    if hook is not None:
        hook(delivery, outcome)
    for listener in outcome_listeners():
        listener(delivery, outcome)


def _attempt(delivery: Delivery, started, outcome: str, status_code, detail: str) -> None:
    DeliveryAttempt.objects.create(
        delivery=delivery,
        number=delivery.attempts,
        channel=delivery.channel,
        started_at=started,
        finished_at=timezone.now(),
        outcome=outcome,
        status_code=status_code,
        detail=(detail or "")[:255],
    )


def deliveries_sweep(*, now=None, grace: timedelta = timedelta(seconds=10)) -> int:
    """Re-enqueue what is due and was not picked up, and reclaim expired leases."""
    now = now or timezone.now()
    # A worker died mid-send (or hangs past its lease): the row becomes sendable again.
    expired = Delivery.objects.filter(status=Delivery.Status.SENDING, lease_expires_at__lt=now)
    # The lost attempt counts: a delivery that kills its worker every time ends dead
    # after DELIVERY_MAX_ATTEMPTS instead of being reclaimed forever.
    for delivery in expired.filter(attempts__gte=F("attempts_before_requeue") + settings.DELIVERY_MAX_ATTEMPTS):
        with transaction.atomic():
            _give_up(delivery, status=Delivery.Status.DEAD, reason="exhausted", detail="worker lost: lease expired")
    # Nothing is on its way for a reclaimed row, so it is due now, past the grace below.
    expired.update(status=Delivery.Status.PENDING, lease_expires_at=None, next_attempt_at=now - grace)
    # `grace` leaves the on-commit enqueue of a brand new row time to arrive first.
    due = list(
        Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now - grace)
        .order_by("next_attempt_at")
        .values_list("pk", "request_id")[:1000]
    )
    delivery_send_task = _send_task()
    for pk, request_id in due:
        try:
            # The request id of the request that queued the delivery (kept on the row),
            # not the sweeper's: the worker's log lines of a retried or re-enqueued send
            # still lead back to the API call.
            delivery_send_task.apply_async(args=[str(pk)], headers={"request_id": request_id} if request_id else None)
        except Exception:
            logger.warning("sweeper could not enqueue delivery %s; next sweep will", pk, exc_info=True)
            break
    return len(due)


def address_checked(channel: str, address: str) -> str:
    """A contact someone typed for one message, checked as the customer form checks it
    (normalised; "" when blank)."""
    address = address.strip()
    if not address:
        return ""
    if channel == Channel.EMAIL:
        try:
            validate_email(address)
        except ValidationError:
            raise ValidationError({"address": _("Enter a valid email address.")}) from None
        return address
    if channel == Channel.SMS:
        number = to_python(address)
        if number is None or not number.is_valid():
            raise ValidationError({"address": _("Enter a phone number in international format, e.g. +34 612 345 678.")})
        return str(number)
    if len(address) > 255:
        raise ValidationError({"address": _("Keep the handle under 255 characters.")})
    return address


@dataclass
class Requeued:
    """What a bulk requeue did (or, dry, would do): the deliveries sent again, and the
    ones left dead with the reason."""

    requeued: list[Delivery] = field(default_factory=list)
    skipped: list[tuple[Delivery, str]] = field(default_factory=list)


def deliveries_requeue(
    *,
    actor: Actor,
    since: datetime | None = None,
    channel: str | None = None,
    ids=None,
    dry_run: bool = False,
    via: str = "",
) -> Requeued:
    """Send dead deliveries again, in place, after an outage: each row goes back to
    `pending` and due now, with its idempotency key (a provider that deduplicates on it
    does not send twice what reached it before), a fresh retry horizon and attempt
    limit. Only a delivery nobody resent since, that its kind's owner lets go again
    (`requeue_refusal`), to a customer we can still reach on its channel. Each one is
    audited (`delivery.requeue`); a dry run changes nothing and records nothing."""
    dead = Delivery.objects.filter(status=Delivery.Status.DEAD, resends__isnull=True)
    if since is not None:
        dead = dead.filter(failed_at__gte=since)
    if channel:
        dead = dead.filter(channel=channel)
    if ids is not None:
        dead = dead.filter(pk__in=list(ids))
    outcome = Requeued()
    for pk in dead.order_by("failed_at", "pk").values_list("pk", flat=True):
        with transaction.atomic():
            delivery = (
                Delivery.objects.select_for_update(of=("self",))
                .select_related("customer")
                .filter(pk=pk, status=Delivery.Status.DEAD)
                .first()
            )
            if delivery is None:
                continue  # requeued meanwhile
            reason = _not_requeueable(delivery)
            if reason:
                outcome.skipped.append((delivery, reason))
                continue
            outcome.requeued.append(delivery)
            if dry_run:
                continue
            # A customer's current address (it may have been corrected since); a
            # webhook's endpoint is read again when it is composed.
            address = delivery.customer.address_for(delivery.channel) if delivery.customer else delivery.address
            before = {"status": delivery.status, "attempts": delivery.attempts, "failed_at": delivery.failed_at}
            Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.DEAD).update(
                status=Delivery.Status.PENDING,
                next_attempt_at=timezone.now(),
                attempts_before_requeue=delivery.attempts,
                address=address,
                failure_reason="",
                failed_at=None,
            )
            audit_event_record(
                actor=actor,
                action="delivery.requeue",
                obj=delivery,
                before={**before, "failed_at": before["failed_at"].isoformat() if before["failed_at"] else None},
                after={"status": Delivery.Status.PENDING, "channel": delivery.channel, "via": via},
            )
            _enqueue(delivery)
    return outcome


def _not_requeueable(delivery: Delivery) -> str:
    """Why a dead delivery is not sent again ("" when it is): its kind's owner may say
    why (appease/delivery/kinds.py), then the customer must still be reachable."""
    try:
        refusal = kind_for(delivery.kind).requeue_refusal
    except UnknownKind:
        return "unknown kind"
    reason = refusal(delivery) if refusal is not None else ""
    if reason:
        return reason
    customer = delivery.customer
    if customer is None:
        return ""  # a webhook: no person to reach, its kind's owner decided above
    if not customer.address_for(delivery.channel):
        return "no address"
    if not customer.consents_to(delivery.channel):
        return "no consent"
    return ""


# Provider status callbacks map their words onto ours.
CALLBACK_STATUSES = {
    "delivered": Delivery.Status.DELIVERED,
    "read": Delivery.Status.DELIVERED,
    "failed": Delivery.Status.FAILED,
    "undelivered": Delivery.Status.FAILED,
    "bounced": Delivery.Status.FAILED,
}


@transaction.atomic
def delivery_status_record(*, provider_message_id: str, provider_status: str) -> Delivery | None:
    """A provider says what became of a message. Unknown ids and statuses are ignored."""
    status = CALLBACK_STATUSES.get(provider_status.lower())
    delivery = Delivery.objects.select_for_update().filter(provider_message_id=provider_message_id).first()
    if delivery is None or status is None:
        return delivery
    DeliveryStatusEvent.objects.create(delivery=delivery, status=status, provider_status=provider_status[:50])
    now = timezone.now()
    if status == Delivery.Status.DELIVERED and delivery.status == Delivery.Status.SENT:
        Delivery.objects.filter(pk=delivery.pk).update(status=status, delivered_at=now)
        _outcome(delivery, Outcome(status=status, at=now, reported=True))
    elif status == Delivery.Status.FAILED and delivery.status in (Delivery.Status.SENT, Delivery.Status.DELIVERED):
        Delivery.objects.filter(pk=delivery.pk).update(
            status=status, failure_reason=provider_status[:40].lower(), failed_at=now
        )
        _outcome(delivery, Outcome(status=status, at=now, reported=True))
    delivery.refresh_from_db()
    return delivery
