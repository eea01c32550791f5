"""Privacy (GDPR in Europe, LGPD in Brazil): export everything held about a customer,
erase a customer on request, and pseudonymise old personal data on a schedule.

The kernel knows no app. It holds how a customer is recognised in text and JSON
(`Identity`), the erasure mode, and the orchestration: one transaction and one audit row
per erasure, the export's assembly, the audit log's and the admin history's rows. Each
app declares its own personal data next to its models, in its `privacy.py`, and
registers it (`register`) from its `AppConfig.ready`: what it exports, erases and
expires, which of its rows are a customer's, and the labels its models had before. The
issuance app registers the customer model itself (`subject`).

Erasure removes or pseudonymises personal data and keeps the financial and audit trail
whole: amounts, codes' hashes and last four characters, who issued what and when, and
every row's identity stay; names, contact details and free text go. On PostgreSQL the
append-only tables (audit log, case timelines) accept an UPDATE only inside an erasure
transaction and only of their personal-data columns (appease/core/db.py).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models import Model, OuterRef, Q, TextField
from django.db.models.functions import Cast
from django.utils import timezone
from phonenumber_field.phonenumber import PhoneNumber, to_python

from appease.core.audit import audit_event_record
from appease.core.context import Actor
from appease.core.models import AuditEvent

logger = logging.getLogger(__name__)

ERASED = "[erased]"
EXPIRED = "[expired]"
# What a text column holds once done with: a step skips rows that already hold one.
DONE_WORDS = ["", ERASED, EXPIRED]
# Keys whose values are personal wherever they appear in a snapshot or an event's JSON:
# a person's name and contact details. Each app adds the keys of its own words
# (`PersonalData.keys`), see `personal_keys`.
PERSONAL_KEYS = frozenset({"name", "first_name", "last_name", "email", "phone", "channel_handle", "external_id"})


@dataclass(frozen=True)
class PersonalData:
    """What one app holds about customers, declared in its `privacy.py`.

    - `models`: its models whose rows are each about one customer (their audit rows and
      admin history are the customer's); `objects(customer)` gives their ids,
      `{model: ids}`, for matching audit rows by (object_type, object_id).
    - `former_labels`: `{model: ("old_app.model", ...)}` for audit rows written before a
      model changed app (`AuditEvent.object_type` stores the label of its time).
    - `export(customer, identity)`: sections of the export, `{name: JSON-able}`.
    - `erase(customer, identity)`: blank the customer's data in this app's tables, in
      the erasure's transaction; returns `{kind: rows}`.
    - `expire(cutoff, size=...)`: pseudonymise what is older than `cutoff` in this app's
      tables, in batches (`in_batches`, `json_in_batches`); returns `{kind: rows}`.
    - `active(customer, cutoff)`: conditions (`Exists`, given the customer's `OuterRef`)
      true of a customer with activity here since `cutoff`: they are not idle.
    - `keys`: JSON keys whose values are wholly personal (a note, a feedback text).
    - `words`: JSON keys of free text that may mention a person (a void reason): an
      erasure replaces the mentions, retention the whole value.
    - `subject` / `subject_idle(cutoff)`: only the app that owns the customer model: the
      model, and its customers with nothing of their own since `cutoff`.
    """

    app_label: str
    models: tuple[type[Model], ...] = ()
    objects: Callable[[Any], dict[type[Model], Iterable]] | None = None
    former_labels: dict[type[Model], tuple[str, ...]] = dataclasses.field(default_factory=dict)
    export: Callable[[Any, Identity], dict] | None = None
    erase: Callable[[Any, Identity], dict[str, int]] | None = None
    expire: Callable[..., dict[str, int]] | None = None
    active: Callable[[OuterRef, datetime], Iterable] | None = None
    keys: frozenset[str] = frozenset()
    words: frozenset[str] = frozenset()
    subject: type[Model] | None = None
    subject_idle: Callable[[datetime], Any] | None = None


_registry: dict[str, PersonalData] = {}


def register(entry: PersonalData) -> None:
    """Declare an app's personal data (from its `AppConfig.ready`; once per app)."""
    if entry.subject is not None and any(
        other.subject is not None and other.app_label != entry.app_label for other in _registry.values()
    ):
        raise ValueError("Only one app can register the customer model.")
    _registry[entry.app_label] = entry


def registered() -> list[PersonalData]:
    """The declarations, the customer's app first, then in the order the apps are ready."""
    entries = list(_registry.values())
    return sorted(entries, key=lambda entry: entry.subject is None)


def _subject() -> PersonalData:
    for entry in _registry.values():
        if entry.subject is not None:
            return entry
    raise LookupError("No app has registered the customer model (appease.core.privacy.register).")


def personal_keys() -> frozenset[str]:
    """The JSON keys whose values are wholly personal, in any app's data."""
    return PERSONAL_KEYS.union(*(entry.keys for entry in _registry.values()))


def word_keys() -> frozenset[str]:
    """The JSON keys of free text that may mention a person, in any app's data."""
    return frozenset().union(*(entry.words for entry in _registry.values()))


@dataclass(frozen=True)
class Identity:
    """How a customer can be recognised in text: the patterns that find their name,
    email, phone (written any way: "+34 612 345 678", "612-345-678") and identifiers."""

    customer_id: int
    email: str
    phone_e164: str
    external_id: str
    strings: tuple[str, ...]  # exact (case-insensitive) mentions: name, email, phone, ids
    pattern: re.Pattern | None  # every mention, name parts included (rows tied to the customer)
    wide: re.Pattern | None  # whole name, email, phone, ids only (rows of anyone: logs, events)

    @classmethod
    def of(cls, customer) -> Identity:
        name = "" if customer.erased_at else (customer.name or "").strip()
        email = (customer.email or "").strip()
        phone = str(customer.phone) if customer.phone else ""
        ids = (customer.external_id or "", customer.channel_handle or "")
        strings = [value for value in (name, email, phone, *ids) if value]
        wide = [re.escape(value) for value in strings if len(value) >= 3]
        digits = str(customer.phone.national_number) if customer.phone else ""
        if len(digits) >= 6:
            # The national number with any separators, after an optional country code.
            wide.append(r"(?:\+?\d{1,3}[\s().-]*)?" + r"[\s().-]*".join(digits))
        parts = [rf"\b{re.escape(part)}\b" for part in re.split(r"\s+", name) if len(part) >= 3]
        return cls(
            customer_id=customer.pk,
            email=email,
            phone_e164=phone,
            external_id=customer.external_id or "",
            strings=tuple(strings),
            pattern=re.compile("|".join(wide + parts), re.IGNORECASE) if wide or parts else None,
            wide=re.compile("|".join(wide), re.IGNORECASE) if wide else None,
        )

    def redact(self, text: str, *, tied: bool = True) -> str:
        pattern = self.pattern if tied else self.wide
        if not text or pattern is None:
            return text
        return pattern.sub(ERASED, text)

    def redact_json(self, value, *, tied: bool = True, keys: frozenset[str] | None = None):
        """Personal keys' values replaced, and every mention in any other string."""
        keys = personal_keys() if keys is None else keys
        if isinstance(value, dict):
            return {
                key: (
                    ERASED
                    if key in keys and tied and item not in ("", None, ERASED)
                    else self.redact_json(item, tied=tied, keys=keys)
                )
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [self.redact_json(item, tied=tied, keys=keys) for item in value]
        if isinstance(value, str):
            return self.redact(value, tied=tied)
        return value

    def names_in(self, entry) -> bool:
        """Whether one customer entry of a merchant event is this customer."""
        if not isinstance(entry, dict):
            return False
        email = str(entry.get("email") or "").strip().lower()
        number = to_python(str(entry.get("phone") or "").strip())
        phone = str(number) if isinstance(number, PhoneNumber) and number.is_valid() else ""
        external_id = str(entry.get("external_id") or "").strip()
        return bool(
            (email and email == self.email.lower())
            or (phone and phone == self.phone_e164)
            or (external_id and external_id == self.external_id)
        )

    def mentioned(self, *fields: str) -> Q:
        """Rows of anyone whose `fields` mention the email, phone or external id (SQL)."""
        q = Q(pk__in=[])
        needles = [value for value in (self.email, self.phone_e164, self.external_id) if len(value) >= 3]
        for field in fields:
            for needle in needles:
                q |= Q(**{f"{field}__icontains": needle})
        return q


def iso(value):
    """A date or time as ISO 8601 text (anything else as it is), for an export."""
    return value.isoformat() if hasattr(value, "isoformat") else value


def ids(queryset) -> list[str]:
    """A queryset's primary keys as text, as `AuditEvent.object_id` stores them."""
    return [str(pk) for pk in queryset.values_list("pk", flat=True)]


def _labels(model) -> tuple[str, ...]:
    """The model's label and those it had before (`PersonalData.former_labels`)."""
    former = ()
    for entry in _registry.values():
        former += tuple(entry.former_labels.get(model, ()))
    return (model._meta.label_lower, *former)


def _tied_objects(customer) -> dict[str, list[str]]:
    """The ids, per model label (old labels included), of every row about the customer."""
    tied: dict[str, list[str]] = {}
    for entry in registered():
        if entry.objects is None:
            continue
        for model, pks in entry.objects(customer).items():
            for label in _labels(model):
                tied.setdefault(label, []).extend(str(pk) for pk in pks)
    return tied


def _audit_events(customer, identity: Identity, tied: dict[str, list[str]]):
    q = identity.mentioned("raw_before", "raw_after")
    for label, pks in tied.items():
        q |= Q(object_type=label, object_id__in=pks)
    events = AuditEvent.objects.annotate(raw_before=Cast("before", TextField()), raw_after=Cast("after", TextField()))
    return events.filter(q).order_by("pk")


def _log_entries(customer, identity: Identity, tied: dict[str, list[str]]):
    """The admin's history rows about the customer's objects, or mentioning them."""
    q = identity.mentioned("object_repr", "change_message")
    if customer.name:
        q |= Q(object_repr__icontains=customer.name)
    for label, pks in tied.items():
        app_label, model = label.split(".")
        content_type = ContentType.objects.filter(app_label=app_label, model=model).first()
        if content_type is not None:
            q |= Q(content_type=content_type, object_id__in=pks)
    return LogEntry.objects.filter(q).select_related("content_type").order_by("pk")


def _is_tied(tied: dict[str, list[str]], label: str, object_id) -> bool:
    return str(object_id) in tied.get(label, ())


def customer_export(customer) -> dict:
    """Everything held about `customer`, as JSON-able data (the right of access): each
    app's sections (`PersonalData.export`), then the audit trail and admin history."""
    identity = Identity.of(customer)
    tied = _tied_objects(customer)
    data = {"exported_at": timezone.now().isoformat()}
    for entry in registered():
        if entry.export is not None:
            data.update(entry.export(customer, identity))
    data["audit_trail"] = [
        {
            "at": iso(event.created_at),
            "action": event.action,
            "object": f"{event.object_type} {event.object_id}",
            "before": event.before,
            "after": event.after,
        }
        for event in _audit_events(customer, identity, tied)
    ]
    data["admin_history"] = [
        {"at": iso(entry.action_time), "object": entry.object_repr, "change": entry.change_message}
        for entry in _log_entries(customer, identity, tied)
    ]
    return data


def _erasure_mode() -> None:
    """Let this transaction rewrite personal data in append-only tables (PostgreSQL)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL appease.erasure = 'on'")


@transaction.atomic
def customer_erase(*, actor: Actor, customer, reason: str = "request"):
    """Remove the customer's personal data everywhere; keep the money and the trail.

    Everywhere means: what each app erases (`PersonalData.erase`: the customer row,
    their issuances' words, deliveries, feedback, cases and timelines, follow-ups, the
    merchant events that named them…), the audit trail's snapshots and the admin's
    history rows. What `customer_export` shows is exactly what this changes.
    """
    customer = _subject().subject.objects.select_for_update().get(pk=customer.pk)
    _erasure_mode()
    identity = Identity.of(customer)
    tied = _tied_objects(customer)
    audits = list(_audit_events(customer, identity, tied))
    log_entries = list(_log_entries(customer, identity, tied))

    done = {}
    for entry in registered():
        if entry.erase is not None:
            done.update(entry.erase(customer, identity) or {})
    for event in audits:
        mine = _is_tied(tied, event.object_type, event.object_id)
        AuditEvent.objects.filter(pk=event.pk).update(
            before=identity.redact_json(event.before, tied=mine), after=identity.redact_json(event.after, tied=mine)
        )
    customer_type = ContentType.objects.get_for_model(customer)
    for entry in log_entries:
        mine = entry.content_type_id is not None and _is_tied(
            tied, f"{entry.content_type.app_label}.{entry.content_type.model}", entry.object_id
        )
        is_customer = entry.content_type_id == customer_type.pk and entry.object_id == str(customer.pk)
        repr_ = f"Erased customer {customer.pk}" if is_customer else identity.redact(entry.object_repr, tied=mine)
        LogEntry.objects.filter(pk=entry.pk).update(
            object_repr=repr_,
            change_message=identity.redact(entry.change_message, tied=mine),
        )
    done.update(audit_events=len(audits), admin_history=len(log_entries))
    logger.info("customer erased", extra={"customer_id": customer.pk, "rows": done})
    audit_event_record(actor=actor, action="customer.erase", obj=customer, after={"reason": reason})
    customer.refresh_from_db()
    return customer


def expire_json(value, keys: frozenset[str] | None = None):
    """A JSON value with every personal key's value replaced by `[expired]`."""
    keys = personal_keys() if keys is None else keys
    if isinstance(value, dict):
        return {
            key: (EXPIRED if key in keys and item not in ("", None, ERASED, EXPIRED) else expire_json(item, keys))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [expire_json(item, keys) for item in value]
    return value


def in_batches(queryset, apply, *, size: int, fields: tuple[str, ...] = ()) -> int:
    """Call apply(rows) for `queryset`'s rows, `size` at a time in primary-key order,
    each batch in its own short erasure transaction: memory and lock time stay bounded
    whatever the backlog, and a run stopped halfway has kept what it did (the querysets
    exclude what is done, so the next run carries on). Returns the number of rows."""
    done, last = 0, None
    while True:
        page = queryset.order_by("pk")
        if last is not None:
            page = page.filter(pk__gt=last)
        rows = list(page.only("pk", *fields)[:size])
        if not rows:
            return done
        with transaction.atomic():
            _erasure_mode()
            apply(rows)
        done += len(rows)
        last = rows[-1].pk


def set_values(model, **values):
    """An `apply` for `in_batches` that gives a batch's rows `values` in one UPDATE."""
    return lambda rows: model.objects.filter(pk__in=[row.pk for row in rows]).update(**values)


def json_in_batches(queryset, rewrite, *, size: int, fields: tuple[str, ...]) -> int:
    """Walk `queryset`'s rows `size` at a time and save those `rewrite(row)` changes
    (`{column: value}`, or `{}` for none), each batch in its own erasure transaction.
    For what only reading the row tells (a personal key in JSON). Returns rows changed."""
    done, last = 0, None
    while True:
        page = queryset.order_by("pk").only("pk", *fields)
        rows = list((page.filter(pk__gt=last) if last is not None else page)[:size])
        if not rows:
            return done
        changes = [(row.pk, values) for row in rows if (values := rewrite(row))]
        if changes:
            with transaction.atomic():
                _erasure_mode()
                for pk, values in changes:
                    queryset.model.objects.filter(pk=pk).update(**values)
        done += len(changes)
        last = rows[-1].pk


def _idle_customers(cutoff):
    """Customers with nothing since `cutoff`: not created or ordered (`subject_idle`),
    nor any activity an app declares (`PersonalData.active`)."""
    customers = _subject().subject_idle(cutoff)
    mine = OuterRef("pk")
    for entry in registered():
        for condition in entry.active(mine, cutoff) if entry.active is not None else ():
            customers = customers.exclude(condition)
    return customers


def _trail_expire(cutoff, *, size: int) -> dict:
    """The audit trail's snapshots and the admin's history of rows about customers
    (`PersonalData.models`, former labels included), older than `cutoff`: the personal
    keys' values and the free text (`words`) of the snapshots, the admin's words."""
    personal = [model for entry in registered() for model in entry.models]
    labels = [label for model in personal for label in _labels(model)]
    keys = personal_keys() | word_keys()

    def expire_audit_event(row) -> dict:
        before, after = expire_json(row.before, keys), expire_json(row.after, keys)
        return {"before": before, "after": after} if (before, after) != (row.before, row.after) else {}

    def expire_log_entries(rows):
        entries = LogEntry.objects.filter(pk__in=[row.pk for row in rows])
        entries.update(object_repr=EXPIRED)
        entries.exclude(change_message="").update(change_message=EXPIRED)

    content_types = ContentType.objects.get_for_models(*personal, for_concrete_models=False).values()
    return {
        "audit_events": json_in_batches(
            AuditEvent.objects.filter(object_type__in=labels, created_at__lt=cutoff),
            expire_audit_event,
            size=size,
            fields=("before", "after"),
        ),
        "admin_history": in_batches(
            LogEntry.objects.filter(content_type__in=content_types, action_time__lt=cutoff).exclude(
                object_repr=EXPIRED
            ),
            expire_log_entries,
            size=size,
        ),
    }


def personal_data_expire(*, now=None, batch_size: int | None = None) -> dict:
    """Pseudonymise what is older than RETENTION_MONTHS (beat, daily). Returns counts
    per kind; a second run the same day finds nothing more to do (every step excludes
    what is already `[expired]` or `[erased]`).

    Words older than the cutoff become `[expired]`, in every table, as each app declares
    (`PersonalData.expire`), and so do the personal values and free text of audit rows
    and admin history about customers' rows. Customers with no activity since the cutoff are erased
    (`customer_erase`, one transaction each). Everything runs in batches of
    RETENTION_BATCH_SIZE rows, each its own transaction.
    """
    months = settings.RETENTION_MONTHS
    if not months:
        return {}
    size = batch_size or settings.RETENTION_BATCH_SIZE
    now = now or timezone.now()
    cutoff = now - timedelta(days=30 * months)
    done = {}
    for entry in registered():
        if entry.expire is not None:
            done.update(entry.expire(cutoff, size=size))
    done.update(_trail_expire(cutoff, size=size))
    done["customers"] = in_batches(
        _idle_customers(cutoff),
        lambda rows: [customer_erase(actor=Actor(), customer=row, reason="retention") for row in rows],
        size=size,
    )
    return done
