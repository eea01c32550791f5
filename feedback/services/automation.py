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

import logging
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from appease.context import SYSTEM, Actor
from appease.events import issuance_created_event
from appease.exceptions import ApplicationError
from appease.models import Customer, IncidentType, Issuance
from appease.queue import enqueue_on_commit
from appease.services.delivery import delivery_create
from appease.services.issuance import issuance_give
from feedback.models import AutoRule, Case, MerchantEvent
from feedback.services.intake import CustomerRef, customer_find_or_create, feedback_submit

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


def _refs(data: dict) -> list[CustomerRef]:
    raw = data.get("customers")
    if raw is None and isinstance(data.get("customer"), dict):
        raw = [data["customer"]]
    refs = []
    for item in raw or []:
        refs.append(
            CustomerRef(
                email=str(item.get("email") or "")[:254],
                phone=str(item.get("phone") or "")[:32],
                external_id=str(item.get("external_id") or "")[:100],
                name=str(item.get("name") or "")[:200],
            )
        )
    return refs


def _validate(event_id: str, event_type: str, data) -> None:
    errors = {}
    if not event_id or len(event_id) > 100:
        errors["event_id"] = _("Give the event's id (at most 100 characters).")
    if not event_type or len(event_type) > 50 or not event_type.replace("_", "").isalnum():
        errors["event_type"] = _("Give the event type, e.g. delivery_delayed.")
    if not isinstance(data, dict):
        errors["data"] = _("The event's data must be an object.")
    else:
        customers = data.get("customers")
        if customers is not None and (
            not isinstance(customers, list) or not all(isinstance(c, dict) for c in customers)
        ):
            errors["data"] = _("data.customers must be a list of objects.")
        elif customers is not None and len(customers) > MAX_CUSTOMERS_PER_EVENT:
            errors["data"] = _("At most %(n)d customers per event.") % {"n": MAX_CUSTOMERS_PER_EVENT}
        elif customers is not None and not all(_refs({"customers": [c]})[0] for c in customers):
            errors["data"] = _("Each customer needs an email, a phone number or an external id.")
        elif data.get("customer") is not None and not (isinstance(data["customer"], dict) and _refs(data)[0]):
            errors["data"] = _("data.customer needs an email, a phone number or an external id.")
    if errors:
        raise ValidationError(errors)


def event_receive(
    *, merchant, event_id: str, event_type: str, data: dict, occurred_at=None
) -> tuple[MerchantEvent, bool]:
    """Record an event once. Returns (event, created); the same id again returns the
    first event and does nothing more (a different type under that id is a conflict)."""
    _validate(event_id, event_type, data)
    try:
        with transaction.atomic():
            event, created = MerchantEvent.objects.get_or_create(
                merchant=merchant,
                event_id=event_id,
                defaults={"event_type": event_type, "data": data, "occurred_at": occurred_at},
            )
            if created:
                from feedback.tasks import event_process_task

                enqueue_on_commit(event_process_task, event.pk)
    except IntegrityError:
        event, created = MerchantEvent.objects.get(merchant=merchant, event_id=event_id), False
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


def auto_issue(
    *, rule: AutoRule, event: MerchantEvent, customer: Customer, actor: Actor = SYSTEM
) -> tuple[Issuance | None, str]:
    """Give `rule`'s offer to `customer` for `event`, once. Returns (issuance, "issued")
    or (None, why not): already, cap, budget, paused, no_channel, no_code."""
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
        channel = customer.reachable_channel()
        if channel is None:
            return None, "no_channel"
        spent = AutoRule.objects.filter(
            pk=rule.pk, is_paused=False, spent_amount__lte=F("budget_amount") - offer.cost_amount
        ).update(spent_amount=F("spent_amount") + offer.cost_amount, issued_count=F("issued_count") + 1)
        if not spent:
            paused = AutoRule.objects.filter(pk=rule.pk, is_paused=True).exists()
            return None, "paused" if paused else "budget"
        now = timezone.now()
        issuance = Issuance(
            csr=None,
            auto_rule=rule,
            event=event,
            customer=customer,
            offer=offer,
            reason_code=rule.reason_code,
            channel=channel,
            note=f"{event.event_type} {event.event_id}"[:2000],
            currency=offer.currency,
            face_value_amount=offer.value_amount,
            cost_amount=offer.cost_amount,
            complaint_started_at=event.occurred_at or event.received_at,
        )
        try:
            with transaction.atomic():
                issuance_give(issuance=issuance, by=None, now=now)
                issuance.save()
        except ApplicationError as error:  # out of codes: the budget spend rolls back too
            transaction.set_rollback(True)
            logger.warning("auto rule %s: %s", rule.pk, error.code)
            return None, "no_code"
        delivery_create(issuance=issuance, actor=actor)
        issuance_created_event(actor=actor, issuance=issuance)
    return issuance, "issued"


def event_process(*, event_id: int) -> dict:
    """Apply the matching rules to every customer of the event. Safe to repeat."""
    event = MerchantEvent.objects.select_related("merchant").get(pk=event_id)
    now = timezone.now()
    rules = rules_for(event, now)
    issued, skipped, customers = [], [], []
    for ref in _refs(event.data):
        with transaction.atomic():
            customer = customer_find_or_create(actor=SYSTEM, ref=ref)
        customers.append(customer)
        for rule in rules:
            issuance, outcome = auto_issue(rule=rule, event=event, customer=customer)
            if issuance is not None or outcome == "already":
                issued.append(
                    str(
                        issuance.pk
                        if issuance
                        else Issuance.objects.get(auto_rule=rule, event=event, customer=customer).pk
                    )
                )
            else:
                skipped.append({"customer_id": customer.pk, "rule_id": rule.pk, "reason": outcome})
    result = {"rules": [rule.pk for rule in rules], "issued": issued, "skipped": skipped, "case_id": None}
    incident = EVENT_INCIDENTS.get(event.event_type)
    if incident and len(customers) == 1 and not issued:
        result["case_id"] = _event_case(event, customers[0], incident)
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
    from feedback.tasks import event_process_task

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
