"""Delivery: the outbox that gets every appeasement to the customer, once.

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
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from phonenumber_field.phonenumber import to_python

from appease.core.audit import audit_event_record
from appease.core.context import Actor
from appease.core.exceptions import ApplicationError
from appease.core.observability import request_id_var
from appease.core.queue import enqueue_on_commit
from appease.delivery.channels.base import PermanentError, TransientError, adapter_for
from appease.delivery.channels.sms import segments
from appease.delivery.models import Channel, Delivery, DeliveryAttempt, DeliveryStatusEvent
from appease.issuance.messages import message_compose
from appease.issuance.models import Issuance

logger = logging.getLogger(__name__)


def _enqueue(delivery: Delivery) -> None:
    from appease.delivery.tasks import delivery_send_task

    enqueue_on_commit(delivery_send_task, str(delivery.pk))


def delivery_create(
    *,
    issuance: Issuance | None = None,
    customer=None,
    kind: str = Delivery.Kind.APPEASEMENT,
    channel: str | None = None,
    resend_of: Delivery | None = None,
    actor: Actor | None = None,
    address: str = "",
) -> Delivery:
    """Queue a message (in the caller's transaction): the appeasement of `issuance`,
    or a follow-up to `customer` through `channel`; to `address` when given (a contact
    the rep corrected), else to the customer's own."""
    customer = customer or issuance.customer
    channel = channel or issuance.channel
    delivery = Delivery.objects.create(
        issuance=issuance,
        customer=customer,
        kind=kind,
        channel=channel,
        address=address or customer.address_for(channel),
        language=customer.language or settings.LANGUAGE_CODE,
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
    delivery = Delivery.objects.select_related(
        "customer", "issuance__customer", "issuance__offer", "issuance__reason_code", "issuance__code"
    ).get(pk=delivery_id)
    started = timezone.now()
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
    Issuance.objects.filter(
        pk=delivery.issuance_id, status__in=[Issuance.Status.ISSUED, Issuance.Status.FAILED]
    ).update(status=Issuance.Status.DELIVERED, delivered_at=now)
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
    from appease.delivery.tasks import delivery_send_task

    # A short countdown for speed; the due time in the row is the truth, and the
    # sweeper sends it if this message is lost.
    transaction.on_commit(lambda: _publish_later(delivery_send_task, str(delivery.pk), delay))
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


def _give_up(delivery: Delivery, *, status: str, reason: str, detail: str) -> None:
    now = timezone.now()
    given_up = _ours(delivery).update(
        status=status, failure_reason=reason[:40], last_error=detail[:255], failed_at=now, lease_expires_at=None
    )
    if not given_up:
        # The lease expired meanwhile and the sweeper handed the row on: not ours to fail.
        return
    Issuance.objects.filter(pk=delivery.issuance_id, status=Issuance.Status.ISSUED).update(
        status=Issuance.Status.FAILED
    )
    logger.warning("delivery %s %s (%s) after %d attempt(s)", delivery.pk, status, reason, delivery.attempts)


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
    from appease.delivery.tasks import delivery_send_task

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


RESENDABLE = (Issuance.Status.ISSUED, Issuance.Status.DELIVERED, Issuance.Status.FAILED)


def _checked_address(channel: str, address: str) -> str:
    """A contact the rep typed for this message, checked as the customer form checks it."""
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


@transaction.atomic
def delivery_resend(*, actor: Actor, issuance_id, channel: str, address: str = "") -> Delivery:
    """Send a given appeasement again, at any time, through any channel the customer
    agreed to, to their contact or to `address` (a contact the rep corrected on the
    call). Audited. Exactly once still holds: each resend is one new outbox row,
    and while the last one is on its way a second is refused (a double click)."""
    issuance = Issuance.objects.select_for_update(of=("self",)).select_related("customer").get(pk=issuance_id)
    if channel not in Channel.values:
        raise ValidationError({"channel": _("Choose one of: %(channels)s.") % {"channels": ", ".join(Channel.values)}})
    address = _checked_address(channel, address)
    customer = issuance.customer
    if not address and not customer.address_for(channel):
        raise ValidationError(
            {"channel": _("We have no %(channel)s contact for this customer.") % {"channel": channel}}
        )
    if not customer.consents_to(channel):
        raise ValidationError(
            {"channel": _("The customer has not agreed to be contacted by %(channel)s.") % {"channel": channel}}
        )
    if issuance.status not in RESENDABLE:
        raise ApplicationError("not_resendable", _("Only a given appeasement can be sent again."), status=409)
    last = issuance.deliveries.order_by("-created_at").first()
    if last is not None and last.status in (Delivery.Status.PENDING, Delivery.Status.SENDING):
        raise ApplicationError(
            "delivery_in_flight",
            _("It is being sent right now: wait for the result before sending it again."),
            status=409,
        )
    delivery = delivery_create(issuance=issuance, channel=channel, resend_of=last, actor=actor, address=address)
    after = {"channel": channel}
    if address:
        after["address"] = address
    audit_event_record(
        actor=actor,
        action="delivery.resend",
        obj=delivery,
        before={"delivery": str(last.pk), "channel": last.channel, "status": last.status} if last else None,
        after=after,
    )
    return delivery


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
    limit. Only a delivery nobody resent since, of an issuance still to be delivered, to
    a customer we can still reach on its channel. Each one is audited
    (`delivery.requeue`); a dry run changes nothing and records nothing."""
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
                .select_related("customer", "issuance")
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
            address = delivery.customer.address_for(delivery.channel)
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
    """Why a dead delivery is not sent again ("" when it is)."""
    issuance = delivery.issuance
    if issuance is not None:
        if issuance.status not in (Issuance.Status.ISSUED, Issuance.Status.FAILED):
            return f"issuance {issuance.status}"
        if issuance.deliveries.order_by("-created_at").values_list("pk", flat=True).first() != delivery.pk:
            return "a later delivery exists"
    customer = delivery.customer
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
        Issuance.objects.filter(pk=delivery.issuance_id).filter(
            Q(status=Issuance.Status.DELIVERED) | Q(status=Issuance.Status.ISSUED)
        ).update(status=Issuance.Status.DELIVERED, delivered_at=now)
    elif status == Delivery.Status.FAILED and delivery.status in (Delivery.Status.SENT, Delivery.Status.DELIVERED):
        Delivery.objects.filter(pk=delivery.pk).update(
            status=status, failure_reason=provider_status[:40].lower(), failed_at=now
        )
        Issuance.objects.filter(
            pk=delivery.issuance_id, status__in=[Issuance.Status.ISSUED, Issuance.Status.DELIVERED]
        ).update(status=Issuance.Status.FAILED)
    delivery.refresh_from_db()
    return delivery
