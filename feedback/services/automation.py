"""Events from the merchant's systems, and the rules that appease automatically.

`event_receive` records the event once per (merchant, event id) and enqueues its
processing on commit; `event_process` is idempotent (each rule gives each customer at
most one issuance per event, enforced by a unique constraint), so a redelivered task,
a retry after a crash or the sweeper never give twice.

An automatic issuance is given by the system (no rep), within the rule's total budget
(a conditional UPDATE on `spent_amount`, like the reps' budgets) and its per-customer
cap, audited like any issuance and delivered through the customer's channel.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from appease.core.context import SYSTEM, Actor
from appease.core.exceptions import ApplicationError
from appease.core.jsonvalues import json_value_errors
from appease.core.queue import enqueue_on_commit
from appease.issuance.models import Customer, IncidentType, Issuance
from appease.issuance.services.issuance import issuance_record, offer_currency_errors
from feedback.models import AutoRule, Case, MerchantEvent
from feedback.services.intake import (
    CustomerRef,
    customer_find_or_create,
    customer_ref_errors,
    customer_ref_parse,
    feedback_submit,
)
from feedback.services.orders import ORDER_PLACED, order_event_apply, order_event_errors, retried_once

logger = logging.getLogger(__name__)

# Events that are incidents: with one customer and no automatic appeasement, they open a case.
EVENT_INCIDENTS = {
    "delivery_delayed": IncidentType.LATE_DELIVERY,
    "flight_delayed": IncidentType.LATE_DELIVERY,
    "order_cancelled": IncidentType.OTHER,
    "double_charged": IncidentType.OVERCHARGE,
    "item_damaged": IncidentType.DAMAGED_ITEM,
    "service_outage": IncidentType.SERVICE_OUTAGE,
}
MAX_CUSTOMERS_PER_EVENT = 1000
# `delivery_delayed`, `order.placed`: lower-case words, dots between namespaces.
EVENT_TYPE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*")
# An event's data as JSON, at most: 1,000 customers with long names and emails fit; a
# megabyte of free text does not belong in an event.
MAX_EVENT_DATA_CHARS = 512 * 1024


def _refs(data: dict) -> list[CustomerRef]:
    """The customers an event names, in order (`customer`, or each of `customers`)."""
    raw = data.get("customers")
    if raw is None and isinstance(data.get("customer"), dict):
        raw = [data["customer"]]
    return [customer_ref_parse(item) for item in raw or []]


def _validate(event_id: str, event_type: str, data, occurred_at=None) -> None:
    """Everything about the event, every customer included: bad input is refused whole
    (400, nothing saved), never accepted and then half-processed."""
    errors = {}
    if not event_id or len(event_id) > 100:
        errors["event_id"] = _("Give the event's id (at most 100 characters).")
    if not event_type or len(event_type) > 50 or not EVENT_TYPE.fullmatch(event_type):
        errors["event_type"] = _("Give the event type, e.g. delivery_delayed.")
    unstorable = json_value_errors(data, path="data")  # what jsonb cannot hold: NUL, surrogates, 1e400
    if not isinstance(data, dict):
        errors["data"] = _("The event's data must be an object.")
    elif unstorable:
        errors.update({path: messages[0] for path, messages in unstorable.items()})
    elif len(json.dumps(data)) > MAX_EVENT_DATA_CHARS:
        errors["data"] = _("The event's data must be at most %(n)d characters of JSON.") % {"n": MAX_EVENT_DATA_CHARS}
    else:
        customers = data.get("customers")
        if customers is not None and not isinstance(customers, list):
            errors["data.customers"] = _("data.customers must be a list of objects.")
        elif customers is not None and len(customers) > MAX_CUSTOMERS_PER_EVENT:
            errors["data.customers"] = _("At most %(n)d customers per event.") % {"n": MAX_CUSTOMERS_PER_EVENT}
        elif customers is not None:
            for index, item in enumerate(customers):
                for field, message in customer_ref_errors(item).items():
                    errors[f"data.customers[{index}]" + (f".{field}" if field else "")] = message
        elif data.get("customer") is not None:
            for field, message in customer_ref_errors(data["customer"]).items():
                errors["data.customer" + (f".{field}" if field else "")] = message
        if event_type == ORDER_PLACED:
            errors.update(order_event_errors(data, occurred_at=occurred_at))
    if errors:
        raise ValidationError(errors)


def event_receive(
    *, merchant, event_id: str, event_type: str, data: dict, occurred_at=None
) -> tuple[MerchantEvent, bool]:
    """Record an event once. Returns (event, created); the same id again returns the
    first event and does nothing more (a different type under that id is a conflict)."""
    _validate(event_id, event_type, data, occurred_at)

    def receive() -> tuple[MerchantEvent, bool]:
        try:
            with transaction.atomic():
                event, created = MerchantEvent.objects.get_or_create(
                    merchant=merchant,
                    event_id=event_id,
                    defaults={"event_type": event_type, "data": data, "occurred_at": occurred_at},
                )
                if created and event_type == ORDER_PLACED:
                    # Recorded here and now, in the event's transaction: a conflict (the
                    # reference is another customer's) refuses the event whole, with its field.
                    order_event_apply(event=event)
                elif created:
                    from feedback.tasks import (
                        event_process_task,  # a service and its own task: the task module imports this one
                    )

                    enqueue_on_commit(event_process_task, event.pk)
        except IntegrityError:
            event = MerchantEvent.objects.filter(merchant=merchant, event_id=event_id).first()
            if event is None:
                raise  # not this event id: the order's reference or its new customer, raced
            created = False
        return event, created

    # The same order sent twice at once under two event ids: the loser runs again, and finds it.
    event, created = retried_once(receive)
    if not created and event.event_type != event_type:
        raise ApplicationError(
            "event_id_reused", _("This event id was already used for another event type."), status=409
        )
    return event, created


def _matches(rule: AutoRule, data: dict) -> bool:
    if not rule.condition_operator:
        return True
    value = data.get(rule.condition_field)
    if value is None:
        return False
    try:
        left, right = Decimal(str(value)), Decimal(rule.condition_value)
        if not (left.is_finite() and right.is_finite()):  # NaN would raise on >=, not answer
            raise InvalidOperation
    except InvalidOperation:
        left, right = str(value), rule.condition_value
        if rule.condition_operator != AutoRule.Operator.EQ:
            return False
    return {
        ">=": left >= right,
        ">": left > right,
        "<=": left <= right,
        "<": left < right,
        "==": left == right,
    }[rule.condition_operator]


def rules_for(event: MerchantEvent, now) -> list[AutoRule]:
    rules = (
        AutoRule.objects.filter(event_type=event.event_type, is_paused=False)
        .filter(
            Q(active_from__isnull=True) | Q(active_from__lte=now),
            Q(active_until__isnull=True) | Q(active_until__gt=now),
        )
        .select_related("offer", "reason_code")
    )
    return [rule for rule in rules if _matches(rule, event.data)]


def auto_rule_issue(
    *, rule: AutoRule, event: MerchantEvent, customer: Customer, actor: Actor = SYSTEM
) -> tuple[Issuance | None, str]:
    """Give `rule`'s offer to `customer` for `event`, once. Returns (issuance, "issued")
    or (None, why not): already, cap, currency_mismatch, budget, paused, no_channel, no_code.

    One transaction: the customer is locked, checked against the rule and the rule's
    budget spent, then `issuance_record` writes the issuance, its code, delivery row and
    audit row; with no code left, the spend rolls back with it."""
    offer = rule.offer
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer.pk)
        if Issuance.objects.filter(auto_rule=rule, event=event, customer=customer).exists():
            return None, "already"
        given = Issuance.objects.filter(auto_rule=rule, customer=customer).exclude(
            status__in=[Issuance.Status.REJECTED, Issuance.Status.VOIDED]
        )
        if given.count() >= rule.per_customer_cap:
            return None, "cap"
        if offer_currency_errors(offer=offer, customer=customer):
            return None, "currency_mismatch"  # its code would be refused at their checkout
        channel = customer.reachable_channel()
        if channel is None:
            return None, "no_channel"
        spent = AutoRule.objects.filter(
            pk=rule.pk, is_paused=False, spent_amount__lte=F("budget_amount") - offer.cost_amount
        ).update(spent_amount=F("spent_amount") + offer.cost_amount, issued_count=F("issued_count") + 1)
        if not spent:
            paused = AutoRule.objects.filter(pk=rule.pk, is_paused=True).exists()
            return None, "paused" if paused else "budget"
        try:
            with transaction.atomic():
                issuance = issuance_record(
                    actor=actor,
                    auto_rule=rule,
                    event=event,
                    customer=customer,
                    offer=offer,
                    reason_code=rule.reason_code,
                    channel=channel,
                    note=f"{event.event_type} {event.event_id}"[:2000],
                    complaint_started_at=event.occurred_at or event.received_at,
                    complaint_start_source=Issuance.StartSource.EVENT,
                )
        except ApplicationError as error:  # out of codes: the budget spend rolls back too
            transaction.set_rollback(True)
            logger.warning("auto rule %s: %s", rule.pk, error.code)
            return None, "no_code"
    return issuance, "issued"


# The database itself failing is not this event's fault: the error propagates, the event
# stays unprocessed and the sweeper runs it again (harmless: one issuance per rule, event
# and customer). Anything else that goes wrong for one customer is recorded and skipped.
DATABASE_DOWN = (OperationalError, InterfaceError)


def _failure(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "invalid_customer"
    if isinstance(error, ApplicationError):
        return error.code
    return "error"


def event_process(*, event_id: int) -> dict:
    """Apply the matching rules to every customer of the event. Safe to repeat.

    One customer's failure (an identifier the intake would now refuse, an unexpected
    error) is recorded in `result["skipped"]` with its reason and does not stop the
    others; the event is marked processed in the end, so the sweeper does not run it
    forever.
    """
    event = MerchantEvent.objects.select_related("merchant").get(pk=event_id)
    now = timezone.now()
    rules = rules_for(event, now)
    refs = _refs(event.data)
    issued, skipped, customers = [], [], []
    for index, ref in enumerate(refs):
        try:
            with transaction.atomic():
                customer = customer_find_or_create(actor=SYSTEM, ref=ref)
        except DATABASE_DOWN:
            raise
        except Exception as error:
            logger.warning("event %s: customer %d refused: %r", event.pk, index, error)
            skipped.append({"customer_index": index, "customer_id": None, "rule_id": None, "reason": _failure(error)})
            continue
        customers.append(customer)
        for rule in rules:
            try:
                issuance, outcome = auto_rule_issue(rule=rule, event=event, customer=customer)
                if outcome == "already":
                    issuance = Issuance.objects.get(auto_rule=rule, event=event, customer=customer)
            except DATABASE_DOWN:
                raise
            except Exception as error:
                logger.exception("event %s: rule %s for customer %s failed", event.pk, rule.pk, customer.pk)
                issuance, outcome = None, _failure(error)
            if issuance is not None:
                issued.append(str(issuance.pk))
            else:
                skipped.append({"customer_id": customer.pk, "rule_id": rule.pk, "reason": outcome})
    result = {"rules": [rule.pk for rule in rules], "issued": issued, "skipped": skipped, "case_id": None}
    incident = EVENT_INCIDENTS.get(event.event_type)
    if incident and len(refs) == 1 and customers and not issued:
        try:
            result["case_id"] = _event_case(event, customers[0], incident)
        except DATABASE_DOWN:
            raise
        except Exception as error:
            logger.exception("event %s: could not open its case", event.pk)
            result["case_error"] = _failure(error)
    MerchantEvent.objects.filter(pk=event.pk).update(processed_at=timezone.now(), result=result)
    return result


def _event_case(event: MerchantEvent, customer: Customer, incident: str) -> int | None:
    existing = Case.objects.filter(customer=customer, feedback__text__contains=f"[{event.event_id}]").first()
    if existing is not None:
        return existing.pk
    details = ", ".join(f"{key}={value}" for key, value in event.data.items() if key not in ("customer", "customers"))
    feedback = feedback_submit(
        actor=SYSTEM,
        source=Case.Source.EVENT,
        customer=customer,
        text=f"{event.event_type} [{event.event_id}] {details}"[:4000],
        incident_type=incident,
        order_reference=str(event.data.get("order_reference") or "")[:100],
        language=customer.language,
        force_case=True,
    )
    return feedback.case_id


def events_sweep(*, now=None, grace: timedelta = timedelta(seconds=30)) -> int:
    """Re-enqueue events left unprocessed (a broker outage at commit time)."""
    from feedback.tasks import event_process_task  # a service and its own task: the task module imports this one

    now = now or timezone.now()
    pending = MerchantEvent.objects.filter(processed_at__isnull=True, received_at__lt=now - grace).values_list(
        "pk", flat=True
    )[:500]
    count = 0
    for pk in pending:
        try:
            event_process_task.delay(pk)
            count += 1
        except Exception:
            logger.warning("could not enqueue event %s; the next sweep will", pk, exc_info=True)
            break
    return count
