"""Customers: created by reps, by API clients, or imported from CSV."""

from __future__ import annotations

import csv
import io
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from appease.core.audit import audit_event_record, snapshot
from appease.core.context import Actor
from appease.core.exceptions import ApplicationError
from appease.core.money import default_currency
from appease.delivery.models import Channel
from appease.issuance.models import Customer

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
