"""Customers: created by reps, by API clients, or imported from CSV."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Max, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from appease.core.audit import audit_event_record, snapshot
from appease.core.context import Actor
from appease.core.exceptions import ApplicationError
from appease.core.money import default_currency, format_money
from appease.delivery.models import Channel
from appease.issuance.models import Customer, CustomerOrder

EDITABLE = [
    "external_id",
    "name",
    "email",
    "phone",
    "preferred_channel",
    "channel_handle",
    "language",
    "tier",
    "currency",
    "lifetime_value_amount",
    "orders_count",
    "total_spend_amount",
    "last_order_at",
    "consent_email",
    "consent_sms",
    "consent_chat",
    "consent_social",
]


@transaction.atomic
def customer_create(*, actor: Actor, **fields) -> Customer:
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise ValidationError({name: _("Unknown field.") for name in unknown})
    if fields.get("external_id") == "":
        fields["external_id"] = None
    if "currency" in fields:
        fields["currency"] = str(fields["currency"] or "").strip().upper()
    if "preferred_channel" not in fields:
        fields["preferred_channel"] = _channel_from_contacts(fields)
    customer = Customer(created_by=actor.user, **fields)
    customer.full_clean()
    customer.save()
    audit_event_record(actor=actor, action="customer.create", obj=customer, after=snapshot(customer, EDITABLE))
    return customer


@transaction.atomic
def customer_currency_set(*, actor: Actor, customer_id: int, currency: str) -> Customer:
    """What the customer pays in; the offers a rep can give them follow it."""
    customer = Customer.objects.select_for_update().get(pk=customer_id)
    before = snapshot(customer, EDITABLE)
    customer.currency = (currency or "").strip().upper()
    # Only this field: an old record's other fields must not block the change.
    customer.clean_fields(exclude=[field.name for field in Customer._meta.fields if field.name != "currency"])
    customer.save(update_fields=["currency", "updated_at"])
    if customer.history_computed_at is not None:
        # Spend and lifetime value count the orders in the customer's currency: now another one.
        customer = customer_history_refresh(customer_id=customer.pk)
    audit_event_record(
        actor=actor, action="customer.change", obj=customer, before=before, after=snapshot(customer, EDITABLE)
    )
    return customer


# What a helpdesk or a rep may correct on a customer: how to reach them and in which
# language. Money, tier, currency (customer_currency_set) and history are not theirs.
CONTACT_FIELDS = [
    "name",
    "email",
    "phone",
    "preferred_channel",
    "channel_handle",
    "language",
    "consent_email",
    "consent_sms",
    "consent_chat",
    "consent_social",
]

REACH_FIELDS = {"preferred_channel", "email", "phone", "channel_handle"}


@transaction.atomic(durable=True)
def customer_update(*, actor: Actor, customer_id: int, **fields) -> Customer:
    """Change some of a customer's contact details, preferred channel or language.

    Only the fields given change; each is validated as the model says, and the whole
    (a preferred channel needs its contact detail) too. One audit row, before and after."""
    unknown = set(fields) - set(CONTACT_FIELDS)
    if unknown:
        raise ValidationError({name: _("Unknown field.") for name in sorted(unknown)})
    customer = Customer.objects.select_for_update().get(pk=customer_id)
    if customer.erased_at is not None:
        raise ApplicationError(
            "customer_erased", _("This customer's personal data was erased: it cannot be changed."), status=409
        )
    if not fields:
        return customer
    before = snapshot(customer, EDITABLE)
    for name, value in fields.items():
        setattr(customer, name, value)
    # Only the fields given: an old record's other fields must not block the change,
    # and the whole-record rule (the preferred channel's contact detail) only when it is touched.
    customer.clean_fields(exclude=[field.name for field in Customer._meta.fields if field.name not in fields])
    if fields.keys() & REACH_FIELDS:
        customer.clean()
    customer.save(update_fields=[*fields, "updated_at"])
    audit_event_record(
        actor=actor, action="customer.change", obj=customer, before=before, after=snapshot(customer, EDITABLE)
    )
    return customer


def _channel_from_contacts(fields: dict) -> str:
    """The preferred channel when none is given: the first contact detail given (email,
    then phone, then a chat handle); none at all (known only by the shop's id) is ""."""
    if fields.get("email"):
        return Channel.EMAIL
    if fields.get("phone"):
        return Channel.SMS
    if fields.get("channel_handle"):
        return Channel.CHAT
    return ""


def customers_import(*, actor: Actor, text: str) -> int:
    """Import customers from CSV with a header row naming any of the editable fields.

    All or nothing: every bad row is reported with its line number and nothing is saved.
    """
    reader = csv.DictReader(io.StringIO(text))
    unknown = set(reader.fieldnames or []) - set(EDITABLE)
    if not reader.fieldnames or "name" not in reader.fieldnames or unknown:
        raise ValidationError(
            {"file": [_("The header must name columns among: %(fields)s.") % {"fields": ", ".join(EDITABLE)}]}
        )
    customers, errors, seen = [], [], {}
    for row in reader:
        line = reader.line_num
        data = {key: (value or "").strip() for key, value in row.items() if key}
        for money in ("lifetime_value_amount", "total_spend_amount"):
            if data.get(money):
                try:
                    data[money] = Decimal(data[money])
                except InvalidOperation:
                    errors.append(_("line %(line)d: %(field)s is not a number") % {"line": line, "field": money})
                    continue
            else:
                data.pop(money, None)
        for flag in ("consent_email", "consent_sms", "consent_chat", "consent_social"):
            if flag in data:
                data[flag] = data[flag].lower() in {"1", "true", "yes", "y", "sí", "si", "sim"}
        for optional in ("orders_count", "last_order_at"):
            if not data.get(optional):
                data.pop(optional, None)
        if "currency" in data:
            data["currency"] = data["currency"].upper() or default_currency()
        if not data.get("external_id"):
            data["external_id"] = None
        elif data["external_id"] in seen:
            errors.append(
                _("line %(line)d: external id repeats line %(first)d")
                % {"line": line, "first": seen[data["external_id"]]}
            )
            continue
        else:
            seen[data["external_id"]] = line
        customer = Customer(created_by=actor.user, **data)
        try:
            customer.full_clean()
        except ValidationError as error:
            for field, messages in error.message_dict.items():
                errors.append(
                    _("line %(line)d: %(field)s: %(message)s")
                    % {"line": line, "field": field, "message": " ".join(messages)}
                )
            continue
        customers.append(customer)
    if not customers and not errors:
        errors.append(_("The file has no customers."))
    if errors:
        raise ValidationError({"file": errors[:200]})
    with transaction.atomic():
        created = Customer.objects.bulk_create(customers)
        for customer in created:
            audit_event_record(actor=actor, action="customer.import", obj=customer, after=snapshot(customer, EDITABLE))
    return len(created)


# The customer's history, computed from their orders once the shop sends them.
HISTORY_FIELDS = ["orders_count", "total_spend_amount", "last_order_at", "lifetime_value_amount"]


def customer_history_refresh(*, customer_id: int, now: datetime | None = None) -> Customer:
    """Compute the customer's history from their orders (those with `placed_at`: the
    shop's orders, not a reference a rep typed), inside the caller's transaction or one
    of its own: the count and the last order over every order, spend and lifetime value
    (what they have spent to date) over the orders in the customer's own currency only,
    as two currencies are never added. With no order yet, the typed figures stay.

    The customer's row is locked first, so two orders recorded at once are both
    counted: the second waits, then sums with the first one committed."""
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer_id)
        placed = CustomerOrder.objects.filter(customer_id=customer_id, placed_at__isnull=False)
        every = placed.aggregate(count=Count("pk"), last=Max("placed_at"))
        if not every["count"]:
            return customer
        spent = placed.filter(currency=customer.currency).aggregate(total=Sum("total_amount"))["total"]
        customer.orders_count = every["count"]
        customer.last_order_at = every["last"]
        customer.total_spend_amount = spent or Decimal("0")
        customer.lifetime_value_amount = spent or Decimal("0")
        customer.history_computed_at = now or timezone.now()
        customer.save(update_fields=[*HISTORY_FIELDS, "history_computed_at", "updated_at"])
        return customer


class OrderRecorded:
    """What `customer_order_record` did with an order: created it, completed a reference
    a rep had typed, or found it already recorded with the same data."""

    CREATED = "created"
    COMPLETED = "completed"
    UNCHANGED = "unchanged"


def customer_order_record(
    *,
    customer: Customer,
    reference: str,
    total_amount: Decimal,
    currency: str,
    placed_at: datetime,
    source: str,
) -> tuple[CustomerOrder, str]:
    """Record one order of `customer`'s and recompute their history, inside the caller's
    transaction. Returns (order, what was done: `OrderRecorded`).

    Idempotent by reference: the same order again is `unchanged` and writes nothing; a
    reference a rep typed for this customer (no `placed_at`) is completed. The reference
    under another customer, or with another total, currency or time, is refused with a
    field error (`reference`, `total`, `currency`, `placed_at`): an order does not change.

    Two callers recording the same new reference at once: the second one's INSERT waits
    for the first's commit and raises IntegrityError, which rolls the caller's transaction
    back; the caller runs it again and then finds the order (feedback's `order_place`)."""
    if not transaction.get_connection().in_atomic_block:
        raise transaction.TransactionManagementError("customer_order_record runs inside the caller's transaction")
    # Lock the customer first: the history below is recomputed from every order of theirs.
    Customer.objects.select_for_update().filter(pk=customer.pk).first()
    existing = CustomerOrder.objects.select_for_update().filter(reference=reference).first()
    if existing is None:
        order = CustomerOrder.objects.create(
            customer=customer,
            reference=reference,
            total_amount=total_amount,
            currency=currency,
            placed_at=placed_at,
            source=source,
        )
        customer_history_refresh(customer_id=customer.pk)
        return order, OrderRecorded.CREATED
    if existing.customer_id != customer.pk:
        raise ValidationError({"reference": _("This order reference is another customer's order.")})
    if existing.placed_at is None:
        existing.total_amount, existing.currency, existing.placed_at, existing.source = (
            total_amount,
            currency,
            placed_at,
            source,
        )
        existing.save(update_fields=["total_amount", "currency", "placed_at", "source"])
        customer_history_refresh(customer_id=customer.pk)
        return existing, OrderRecorded.COMPLETED
    errors = {}
    if existing.currency != currency:
        errors["currency"] = _("This order was recorded in %(currency)s; an order's currency does not change.") % {
            "currency": existing.currency
        }
    elif existing.total_amount != total_amount:
        errors["total"] = _("This order was recorded with a total of %(total)s; an order's total does not change.") % {
            "total": format_money(existing.total_amount, existing.currency)
        }
    if existing.placed_at != placed_at:
        errors["placed_at"] = _("This order was recorded as placed at %(when)s; it does not change.") % {
            "when": existing.placed_at.isoformat()
        }
    if errors:
        raise ValidationError(errors)
    return existing, OrderRecorded.UNCHANGED
