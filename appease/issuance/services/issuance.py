"""Issuing appeasements: within limits at once, over them to a supervisor or refused."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from appease.core.audit import audit_event_record, snapshot
from appease.core.context import Actor
from appease.core.exceptions import ApplicationError
from appease.core.idempotency import idempotency_key_complete, idempotency_key_settle
from appease.core.models import IdempotencyKey
from appease.core.ratelimit import FailureLimiter
from appease.core.roles import SUPERVISOR, role_emails
from appease.delivery.models import Channel
from appease.delivery.services import delivery_create
from appease.issuance.events import ISSUANCE_FIELDS, issuance_created_event, issuance_decided_event
from appease.issuance.models import Customer, Issuance, LimitPolicy, ReasonCode
from appease.issuance.selectors import policy_for
from appease.issuance.services.limits import LimitsExceeded, limits_spend
from appease.issuance.services.webhooks import issuance_webhook_emit
from coupons import codes
from coupons.models import Code, Offer
from coupons.services.alerts import inventory_check_low
from coupons.services.inventory import code_issue, code_void


class LimitRefused(ApplicationError):
    def __init__(self, breaches, *, code: str = "limit_exceeded", message: str | None = None) -> None:
        super().__init__(
            code,
            message or _("This appeasement is over your limits."),
            status=403,
            extra={"limits": [breach.as_response() for breach in breaches]},
        )


# A start a minute ahead of our clock is the caller's clock running fast, not the future.
CLOCK_SKEW = timedelta(minutes=1)


def complaint_start_parse(value: str | None, *, field: str = "started_at"):
    """A complaint's start from text (a telephony or helpdesk link's `started_at`, the CSR
    form's hidden field): ISO 8601 with an offset, not in the future. None for no value;
    ValidationError on `field` for anything else."""

    value = (value or "").strip()
    if not value:
        return None
    try:
        moment = parse_datetime(value.replace(" ", "+"))  # a "+" in a query string arrives as a space
    except ValueError:
        moment = None
    if moment is None:
        raise ValidationError({field: _("Give the time as ISO 8601, e.g. 2026-12-07T09:30:00+01:00.")})
    if timezone.is_naive(moment):
        raise ValidationError({field: _("Give the time with its offset, e.g. 2026-12-07T09:30:00+01:00.")})
    try:
        future = moment > timezone.now() + CLOCK_SKEW
    except OverflowError:
        future = True
    if future:
        raise ValidationError({field: _("The complaint cannot start in the future.")})
    return moment


# --- Currency: an offer is given only to a customer who can use it (issue 14) --------------
def offer_currency_errors(*, offer: Offer, customer: Customer) -> dict[str, str]:
    """A field error on `offer_id` when the offer is in a currency the customer does not
    pay in: its code would be refused at checkout (`currency_mismatch`). Also used by the
    automatic rules, which build their issuances themselves."""
    if offer.usable_by(customer):
        return {}
    return {
        "offer_id": _("This offer is in %(offer_currency)s; the customer pays in %(currency)s.")
        % {"offer_currency": offer.currency, "currency": customer.currency}
    }


def _validate(
    *, customer: Customer, offer: Offer, reason_code: ReasonCode, channel: str, note: str, started_at, apology: str = ""
):
    errors: dict[str, str] = {}
    errors.update(offer_currency_errors(offer=offer, customer=customer))
    if not offer.is_active:
        errors["offer_id"] = _("This offer is no longer active.")
    if not reason_code.is_active:
        errors["reason_code"] = _("This reason code is no longer active.")
    if not channel:  # no channel given and the customer has no preferred one
        errors["channel"] = _("We have no way to reach this customer yet: add a contact detail first.")
    elif channel not in Channel.values:
        errors["channel"] = _("Choose one of: %(channels)s.") % {"channels": ", ".join(Channel.values)}
    elif not customer.address_for(channel):
        errors["channel"] = _("We have no %(channel)s contact for this customer.") % {"channel": channel}
    elif not customer.consents_to(channel):
        errors["channel"] = _("The customer has not agreed to be contacted by %(channel)s.") % {"channel": channel}
    if len(note) > 2000:
        errors["note"] = _("Keep the note under 2,000 characters.")
    if len(apology) > 2000:
        errors["apology_text"] = _("Keep the apology under 2,000 characters.")
    if started_at is not None:
        if timezone.is_naive(started_at):
            errors["complaint_started_at"] = _("Give the time with its offset, e.g. 2026-12-07T09:30:00+01:00.")
        elif started_at > timezone.now() + CLOCK_SKEW:
            errors["complaint_started_at"] = _("The complaint cannot start in the future.")
    if errors:
        raise ValidationError(errors)


@contextmanager
def issuance_transaction(*, idempotency_key: IdempotencyKey | None = None) -> Iterator[None]:
    """The durable transaction of an entry point that gives an appeasement. If anything
    in it fails, nothing of it stays, and the request's idempotency key is settled: a
    business refusal is kept as the answer a retry replays, anything else is forgotten
    so a corrected retry runs."""
    try:
        with transaction.atomic(durable=True):
            yield
    except BaseException as error:
        idempotency_key_settle(record=idempotency_key, error=error)
        raise


_listeners: list[Callable[[Issuance, dict], None]] = []


def issuance_listener_register(listener: Callable[[Issuance, dict], None]) -> None:
    """Call `listener(issuance, context)` for every issuance recorded, inside its
    transaction (an app above this one, from its `ready()`: feedback records each
    appeasement as an intervention with an outcome). A listener that raises rolls the
    issuance back, so it must only fail where the issuance should."""
    if listener not in _listeners:
        _listeners.append(listener)


def issuance_create(
    *,
    actor: Actor,
    customer: Customer,
    offer: Offer,
    reason_code: ReasonCode,
    channel: str | None = None,
    note: str = "",
    complaint_started_at=None,
    complaint_start_source: str = "",
    idempotency_key: IdempotencyKey | None = None,
    case=None,
    apology_text: str = "",
    context: dict | None = None,
) -> Issuance:
    """Give `offer` to `customer`, as `actor.user`, in a transaction of its own (the
    entry point; `issuance_record` is the same inside a caller's transaction).

    Within every limit: issued at once, with a code claimed from the inventory. Over a
    limit: per the rep's policy, waiting for a supervisor (nothing spent, no code yet),
    or refused with 403 naming each limit, by how much, and what remains.
    """
    with issuance_transaction(idempotency_key=idempotency_key):
        return issuance_record(
            actor=actor,
            customer=customer,
            offer=offer,
            reason_code=reason_code,
            channel=channel,
            note=note,
            complaint_started_at=complaint_started_at,
            complaint_start_source=complaint_start_source,
            idempotency_key=idempotency_key,
            case=case,
            apology_text=apology_text,
            context=context,
        )


def issuance_record(
    *,
    actor: Actor,
    customer: Customer,
    offer: Offer,
    reason_code: ReasonCode,
    channel: str | None = None,
    note: str = "",
    complaint_started_at=None,
    complaint_start_source: str = "",
    idempotency_key: IdempotencyKey | None = None,
    case=None,
    apology_text: str = "",
    auto_rule=None,
    event=None,
    context: dict | None = None,
) -> Issuance:
    """Give `offer` to `customer` inside the caller's open transaction: the issuance,
    its code, its delivery row, its audit row and the idempotency key's answer are
    written there, and a refusal (ValidationError, LimitRefused) leaves the caller to
    roll back everything it did with it, e.g. the customer it just created.

    A rep's issuance (`actor.user`) is checked as the rep's input and spends the rep's
    limits. A rule's (`auto_rule`, for the merchant's `event`) is given by the system:
    the caller has checked the customer against the rule (its per-customer cap, the
    currency, a channel it may use) and spent the rule's budget, under the customer's
    lock, so no rep's limits or approval apply and the code is claimed at once; none
    left is ApplicationError, for the caller to roll back its spend.

    Outside a transaction it refuses (TransactionManagementError): on its own it would
    commit row by row, and a refusal half-way would leave the first rows behind.

    `context` is the caller's word on how it was given (`{"path": "panel"}`, an
    experiment's assignment, an override's reason): this layer does not read it, it hands
    it to the listeners registered with `issuance_listener_register`, in the transaction.
    """
    if not transaction.get_connection().in_atomic_block:
        raise transaction.TransactionManagementError(
            "issuance_record must run inside the caller's transaction.atomic(); "
            "use issuance_create for an issuance of its own."
        )
    channel = channel or customer.preferred_channel
    if complaint_started_at is None:
        complaint_start_source = ""
    elif not complaint_start_source:
        complaint_start_source = Issuance.StartSource.API  # the caller's own time
    if complaint_start_source and complaint_start_source not in Issuance.StartSource.values:
        raise ValidationError(
            {
                "complaint_start_source": _("Choose one of: %(sources)s.")
                % {"sources": ", ".join(Issuance.StartSource.values)}
            }
        )
    if auto_rule is None:
        _validate(
            customer=customer,
            offer=offer,
            reason_code=reason_code,
            channel=channel,
            note=note,
            started_at=complaint_started_at,
            apology=apology_text,
        )
    csr = actor.user if auto_rule is None else None
    now = timezone.now()
    issuance = Issuance(
        csr=csr,
        auto_rule=auto_rule,
        event=event,
        customer=customer,
        offer=offer,
        reason_code=reason_code,
        channel=channel,
        note=note,
        apology_text=apology_text,
        case=case,
        currency=offer.currency,
        face_value_amount=offer.value_amount,
        cost_amount=offer.cost_amount,
        complaint_started_at=complaint_started_at,
        complaint_start_source=complaint_start_source,
    )
    if auto_rule is not None:
        issuance_give(issuance=issuance, by=None, now=now)
    else:
        try:
            limits_spend(user=csr, offer=offer, customer=customer, now=now)
        except LimitsExceeded as exceeded:
            policy = policy_for(csr)
            if policy is None or policy.over_limit == LimitPolicy.OverLimit.REFUSE:
                raise LimitRefused(exceeded.breaches) from None
            issuance.status = Issuance.Status.PENDING_APPROVAL
            issuance.breached_limits = [breach.as_dict() for breach in exceeded.breaches]
        else:
            issuance_give(issuance=issuance, by=csr, now=now)
    issuance.save()
    if issuance.status == Issuance.Status.ISSUED:
        delivery_create(issuance=issuance, actor=actor)
    issuance_created_event(actor=actor, issuance=issuance)
    issuance_webhook_emit(type="issuance.created", issuance=issuance)
    for listener in _listeners:
        listener(issuance, context or {})
    if idempotency_key is not None:
        idempotency_key_complete(record=idempotency_key, response_status=201, result={"issuance_id": str(issuance.pk)})
    return issuance


def issuance_give(*, issuance: Issuance, by, now) -> None:
    """Mark issued and, for a coupon or gift card, claim its code."""
    issuance.status = Issuance.Status.ISSUED
    issuance.issued_at = now
    if not issuance.offer.is_soft:
        issued = code_issue(offer=issuance.offer, actor=by, reason=f"issuance {issuance.pk}")
        issuance.code = issued.code
        inventory_check_low(offer=issuance.offer)


def _lock_pending(issuance_id) -> Issuance:
    issuance = (
        Issuance.objects.select_for_update(of=("self",)).select_related("offer", "customer", "csr").get(pk=issuance_id)
    )
    if issuance.status != Issuance.Status.PENDING_APPROVAL:
        raise ApplicationError("not_pending", _("This issuance is no longer waiting for approval."), status=409)
    return issuance


def _require_supervisor(actor: Actor, issuance: Issuance) -> None:
    user = actor.user
    if user is None or not user.groups.filter(name=SUPERVISOR).exists():
        raise ApplicationError("forbidden", _("Only a supervisor can decide on approvals."), status=403)
    if issuance.csr_id == user.pk:
        raise ApplicationError("own_issuance", _("Nobody approves or rejects their own issuance."), status=403)


@transaction.atomic(durable=True)
def issuance_approve(*, actor: Actor, issuance_id, comment: str = "") -> Issuance:
    """A supervisor gives a pending issuance, within the supervisor's own limits."""
    issuance = _lock_pending(issuance_id)
    _require_supervisor(actor, issuance)
    before = snapshot(issuance, ISSUANCE_FIELDS)
    try:
        limits_spend(user=actor.user, offer=issuance.offer, customer=issuance.customer, check_customer=False)
    except LimitsExceeded as exceeded:
        raise LimitRefused(
            exceeded.breaches,
            code="approver_limit_exceeded",
            message=_("Approving this would take you over your own limits."),
        ) from None
    now = timezone.now()
    issuance_give(issuance=issuance, by=actor.user, now=now)
    issuance.decided_by = actor.user
    issuance.decided_at = now
    issuance.decision_comment = comment
    issuance.save()
    delivery_create(issuance=issuance, actor=actor)
    issuance_decided_event(actor=actor, issuance=issuance, before=before, action="issuance.approve")
    issuance_webhook_emit(type="issuance.approved", issuance=issuance)
    if issuance.case_id:
        # Given now: the first thing this case's customer receives, unless something was.
        type(issuance).case.field.related_model.objects.filter(
            pk=issuance.case_id, first_response_at__isnull=True
        ).update(first_response_at=now)
    return issuance


@transaction.atomic(durable=True)
def issuance_reject(*, actor: Actor, issuance_id, comment: str) -> Issuance:
    if not comment.strip():
        raise ValidationError({"comment": _("Say why the issuance is rejected.")})
    issuance = _lock_pending(issuance_id)
    _require_supervisor(actor, issuance)
    before = snapshot(issuance, ISSUANCE_FIELDS)
    issuance.status = Issuance.Status.REJECTED
    issuance.decided_by = actor.user
    issuance.decided_at = timezone.now()
    issuance.decision_comment = comment
    issuance.save()
    issuance_decided_event(actor=actor, issuance=issuance, before=before, action="issuance.reject")
    issuance_webhook_emit(type="issuance.rejected", issuance=issuance)
    return issuance


@transaction.atomic(durable=True)
def issuance_void(*, actor: Actor, issuance_id, reason: str) -> Issuance:
    """A supervisor cancels a given, unredeemed appeasement: its code stops working."""
    if not reason.strip():
        raise ValidationError({"reason": _("Say why the issuance is voided.")})
    issuance = Issuance.objects.select_for_update(of=("self",)).select_related("code").get(pk=issuance_id)
    user = actor.user
    if user is None or not user.groups.filter(name=SUPERVISOR).exists():
        raise ApplicationError("forbidden", _("Only a supervisor can void an issuance."), status=403)
    voidable = (Issuance.Status.ISSUED, Issuance.Status.DELIVERED, Issuance.Status.FAILED)
    if issuance.status not in voidable or (issuance.code_id and issuance.code.status == Code.Status.REDEEMED):
        raise ApplicationError("not_voidable", _("Only a given, unredeemed appeasement can be voided."), status=409)
    before = snapshot(issuance, ISSUANCE_FIELDS)
    if issuance.code_id:
        issuance.code = code_void(code=issuance.code, actor=user, reason=reason)
    issuance.status = Issuance.Status.VOIDED
    issuance.voided_by = user
    issuance.voided_at = timezone.now()
    issuance.void_reason = reason[:255]
    issuance.save()
    issuance_decided_event(actor=actor, issuance=issuance, before=before, action="issuance.void")
    issuance_webhook_emit(type="issuance.voided", issuance=issuance)
    return issuance


def approvals_escalate(*, now=None) -> int:
    """Email the supervisors about approvals waiting longer than APPROVAL_ESCALATE_AFTER.

    Each pending issuance is escalated once: the conditional update on `escalated_at`
    decides, so two beat runs never send the same escalation twice.
    """
    now = now or timezone.now()
    stale = Issuance.objects.filter(
        status=Issuance.Status.PENDING_APPROVAL,
        escalated_at__isnull=True,
        created_at__lt=now - settings.APPROVAL_ESCALATE_AFTER,
    ).values_list("pk", flat=True)
    escalated = []
    for pk in stale:
        if Issuance.objects.filter(pk=pk, escalated_at__isnull=True).update(escalated_at=now):
            escalated.append(pk)
    if escalated:
        recipients = role_emails(SUPERVISOR)
        if recipients:
            send_mail(
                _("%(count)d appeasements are waiting for approval") % {"count": len(escalated)},
                _("These issuances have waited longer than %(minutes)d minutes:\n\n%(list)s")
                % {
                    "minutes": int(settings.APPROVAL_ESCALATE_AFTER.total_seconds() // 60),
                    "list": "\n".join(str(pk) for pk in escalated),
                },
                settings.DEFAULT_FROM_EMAIL,
                recipients,
            )
    return len(escalated)


# A rep on a voice call reads the code out. Revealing is for the rep who gave it, a
# few times an hour (a rep revealing code after code is a leak, not a call), and every
# reveal is in the audit log.
CODE_REVEALS_PER_HOUR = 20


def issuance_code_reveal(*, actor: Actor, issuance_id) -> str:
    """The full code of an appeasement `actor` gave, audited and rate-limited.

    Raises ApplicationError: 403 `not_yours` for someone else's, 409 `no_code` for an
    appeasement without a usable code, 429 `too_many_reveals` past the hourly limit.
    """

    issuance = Issuance.objects.select_related("code").get(pk=issuance_id)
    user = actor.user
    if user is None or issuance.csr_id != user.pk:
        raise ApplicationError("not_yours", _("Only the rep who gave an appeasement can see its code."), status=403)
    if not issuance.code_id or issuance.status not in (
        Issuance.Status.ISSUED,
        Issuance.Status.DELIVERED,
        Issuance.Status.FAILED,
    ):
        raise ApplicationError("no_code", _("This appeasement has no code to read out."), status=409)
    limiter = FailureLimiter(scope="code-reveal", limit=CODE_REVEALS_PER_HOUR, window_seconds=3600)
    retry_after = limiter.record_failure([f"user:{user.pk}"])
    if retry_after is not None:
        raise ApplicationError(
            "too_many_reveals",
            _("You have revealed too many codes this hour: try again in %(minutes)d minutes.")
            % {"minutes": max(1, -(-retry_after // 60))},
            status=429,
            extra={"retry_after": retry_after},
        )
    with transaction.atomic(durable=True):
        audit_event_record(
            actor=actor,
            action="code.reveal",
            obj=issuance,
            after={"code": str(issuance.code_id), "last4": issuance.code.last4},
        )
    return codes.decrypt(issuance.code.ciphertext)
