"""Privacy (GDPR in Europe, LGPD in Brazil): export everything held about a customer,
erase a customer on request, and pseudonymise old personal data on a schedule.

Erasure removes or pseudonymises personal data and keeps the financial and audit trail
whole: amounts, codes' hashes and last four characters, who issued what and when, and
every row's identity stay; names, contact details and free text go. On PostgreSQL the
append-only tables (audit log, case timelines) accept an UPDATE only inside an erasure
transaction and only of their personal-data columns (appease/core/db.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, TextField
from django.db.models.functions import Cast
from django.utils import timezone
from phonenumber_field.phonenumber import PhoneNumber, to_python

from appease.core.audit import audit_event_record, snapshot
from appease.core.context import Actor
from appease.core.models import AuditEvent
from appease.delivery.models import Delivery, DeliveryAttempt
from appease.issuance.models import Customer, Issuance

ERASED = "[erased]"
EXPIRED = "[expired]"
# Fields of a customer that identify them, and what they become.
CONTACT = {
    "email": "",
    "phone": "",
    "channel_handle": "",
    "external_id": None,
    "consent_email": False,
    "consent_sms": False,
    "consent_chat": False,
    "consent_social": False,
}
# Keys whose values are personal wherever they appear in a snapshot or an event's JSON.
PERSONAL_KEYS = {
    "name",
    "first_name",
    "last_name",
    "email",
    "phone",
    "channel_handle",
    "external_id",
    "text",
    "comment",
    "address",
    "note",
    "apology_text",
    "subject",
    "resolution_note",
    "page_url",
}


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
    def of(cls, customer: Customer) -> Identity:
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

    def redact_json(self, value, *, tied: bool = True):
        """Personal keys' values replaced, and every mention in any other string."""
        if isinstance(value, dict):
            return {
                key: (
                    ERASED
                    if key in PERSONAL_KEYS and tied and item not in ("", None, ERASED)
                    else self.redact_json(item, tied=tied)
                )
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [self.redact_json(item, tied=tied) for item in value]
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


def _iso(value):
    return value.isoformat() if hasattr(value, "isoformat") else value


def _label(model) -> str:
    return model._meta.label_lower


def _merchant_events(customer: Customer, identity: Identity):
    """The merchant events that name the customer: those that gave them something or
    opened their case, and any whose data mentions their email, phone or external id."""
    from feedback.models import Case, MerchantEvent

    linked = Issuance.objects.filter(customer=customer, event__isnull=False).values("event_id")
    case_ids = list(Case.objects.filter(customer=customer).values_list("pk", flat=True))
    events = MerchantEvent.objects.annotate(raw=Cast("data", TextField()))
    return events.filter(Q(pk__in=linked) | Q(result__case_id__in=case_ids) | identity.mentioned("raw")).order_by("pk")


def _event_data_of(event, identity: Identity) -> dict:
    """What a merchant event holds about this customer: their own entries, and the
    event's other fields; never the other customers of a cohort."""
    data = event.data if isinstance(event.data, dict) else {}
    own = [entry for entry in data.get("customers") or [] if identity.names_in(entry)]
    if identity.names_in(data.get("customer")):
        own.append(data["customer"])
    return {
        **{key: value for key, value in data.items() if key not in ("customer", "customers")},
        "customers": own,
    }


def _event_data_erased(data, identity: Identity):
    """The event's data with this customer's entries pseudonymised and every mention of
    them elsewhere (a free-text field, another customer's note) replaced."""
    if not isinstance(data, dict):
        return identity.redact_json(data, tied=False)

    def entry(item):
        return identity.redact_json(item, tied=True) if identity.names_in(item) else item

    result = {}
    for key, value in data.items():
        if key == "customers" and isinstance(value, list):
            value = [entry(item) for item in value]
        elif key == "customer":
            value = entry(value)
        result[key] = identity.redact_json(value, tied=False)
    return result


def _tied_objects(customer: Customer) -> dict[str, list[str]]:
    """The ids, per model label, of every row that is about the customer."""
    from feedback.models import Case, Feedback, FollowUp

    return {
        _label(Customer): [str(customer.pk)],
        _label(Issuance): [str(pk) for pk in Issuance.objects.filter(customer=customer).values_list("pk", flat=True)],
        _label(Delivery): [str(pk) for pk in Delivery.objects.filter(customer=customer).values_list("pk", flat=True)],
        _label(Case): [str(pk) for pk in Case.objects.filter(customer=customer).values_list("pk", flat=True)],
        _label(Feedback): [str(pk) for pk in Feedback.objects.filter(customer=customer).values_list("pk", flat=True)],
        _label(FollowUp): [str(pk) for pk in FollowUp.objects.filter(customer=customer).values_list("pk", flat=True)],
    }


def _audit_events(customer: Customer, identity: Identity, tied: dict[str, list[str]]):
    q = identity.mentioned("raw_before", "raw_after")
    for label, ids in tied.items():
        q |= Q(object_type=label, object_id__in=ids)
    events = AuditEvent.objects.annotate(raw_before=Cast("before", TextField()), raw_after=Cast("after", TextField()))
    return events.filter(q).order_by("pk")


def _log_entries(customer: Customer, identity: Identity, tied: dict[str, list[str]]):
    """The admin's history rows about the customer's objects, or mentioning them."""
    q = identity.mentioned("object_repr", "change_message")
    if customer.name:
        q |= Q(object_repr__icontains=customer.name)
    for label, ids in tied.items():
        app_label, model = label.split(".")
        content_type = ContentType.objects.filter(app_label=app_label, model=model).first()
        if content_type is not None:
            q |= Q(content_type=content_type, object_id__in=ids)
    return LogEntry.objects.filter(q).select_related("content_type").order_by("pk")


def _is_tied(tied: dict[str, list[str]], label: str, object_id) -> bool:
    return str(object_id) in tied.get(label, ())


def customer_export(customer: Customer) -> dict:
    """Everything held about `customer`, as JSON-able data (the right of access)."""
    from feedback.models import Case, Feedback, FollowUp

    identity = Identity.of(customer)
    tied = _tied_objects(customer)
    issuances = Issuance.objects.filter(customer=customer).select_related("offer", "reason_code", "code", "csr")
    return {
        "exported_at": timezone.now().isoformat(),
        "customer": snapshot(customer),
        "orders": [snapshot(order) for order in customer.orders.all()],
        "issuances": [
            {
                "id": str(issuance.pk),
                "created_at": _iso(issuance.created_at),
                "offer": issuance.offer.name,
                "reason": issuance.reason_code.label,
                "channel": issuance.channel,
                "status": issuance.effective_status,
                "face_value": str(issuance.face_value_amount),
                "currency": issuance.currency,
                "code_last4": issuance.code.last4 if issuance.code_id else None,
                "code_history": (
                    [
                        {"at": _iso(event.created_at), "kind": event.kind, "reason": event.reason}
                        for event in issuance.code.events.all()
                    ]
                    + [
                        {"at": _iso(row.reversed_at), "kind": "reversed", "reason": row.reverse_reason}
                        for row in issuance.code.redemptions.exclude(reverse_reason="")
                    ]
                    if issuance.code_id
                    else []
                ),
                "note": issuance.note,
                "apology": issuance.apology_text,
                "decision_comment": issuance.decision_comment,
                "void_reason": issuance.void_reason,
                "given_by": issuance.given_by,
            }
            for issuance in issuances
        ],
        "deliveries": [
            {
                "id": str(delivery.pk),
                "kind": delivery.kind,
                "channel": delivery.channel,
                "address": delivery.address,
                "status": delivery.status,
                "created_at": _iso(delivery.created_at),
                "sent_at": _iso(delivery.sent_at),
                "last_error": delivery.last_error,
                "attempts": [
                    {"at": _iso(attempt.started_at), "outcome": attempt.outcome, "detail": attempt.detail}
                    for attempt in delivery.attempt_log.all()
                ],
            }
            for delivery in Delivery.objects.filter(customer=customer).prefetch_related("attempt_log")
        ],
        "feedback": [snapshot(item) for item in Feedback.objects.filter(customer=customer)],
        "cases": [
            {
                **snapshot(case, ["subject", "incident_type", "status", "priority", "resolution_note", "intervention"]),
                "id": case.pk,
                "created_at": _iso(case.created_at),
                "timeline": [
                    {"kind": event.kind, "text": event.text, "data": event.data, "at": _iso(event.created_at)}
                    for event in case.events.all()
                ],
            }
            for case in Case.objects.filter(customer=customer).prefetch_related("events")
        ],
        "follow_ups": [
            {
                "id": str(follow_up.pk),
                "status": follow_up.status,
                "sent_at": _iso(follow_up.sent_at),
                "solved": follow_up.solved,
                "csat": follow_up.csat,
                "comment": follow_up.comment,
            }
            for follow_up in FollowUp.objects.filter(customer=customer)
        ],
        "merchant_events": [
            {
                "id": event.pk,
                "event_id": event.event_id,
                "event_type": event.event_type,
                "received_at": _iso(event.received_at),
                "data": _event_data_of(event, identity),
            }
            for event in _merchant_events(customer, identity)
        ],
        "audit_trail": [
            {
                "at": _iso(event.created_at),
                "action": event.action,
                "object": f"{event.object_type} {event.object_id}",
                "before": event.before,
                "after": event.after,
            }
            for event in _audit_events(customer, identity, tied)
        ],
        "admin_history": [
            {"at": _iso(entry.action_time), "object": entry.object_repr, "change": entry.change_message}
            for entry in _log_entries(customer, identity, tied)
        ],
    }


def _erasure_mode() -> None:
    """Let this transaction rewrite personal data in append-only tables (PostgreSQL)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL appease.erasure = 'on'")


@transaction.atomic
def customer_erase(*, actor: Actor, customer: Customer, reason: str = "request") -> Customer:
    """Remove the customer's personal data everywhere; keep the money and the trail.

    Everywhere means: the customer row; their issuances' notes and apology texts (and
    mentions of them in decisions), deliveries' addresses and provider errors, feedback,
    cases and their timelines, follow-ups; the merchant events that named them; the
    audit trail's snapshots and the admin's history rows. What `customer_export` shows
    is exactly what this changes.
    """
    from coupons.models import CodeEvent, Redemption
    from feedback.models import Case, CaseEvent, Feedback, FollowUp

    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    _erasure_mode()
    now = timezone.now()
    identity = Identity.of(customer)
    tied = _tied_objects(customer)
    events = list(_merchant_events(customer, identity))
    audits = list(_audit_events(customer, identity, tied))
    log_entries = list(_log_entries(customer, identity, tied))

    Customer.objects.filter(pk=customer.pk).update(name=f"Erased customer {customer.pk}", erased_at=now, **CONTACT)
    issuances = Issuance.objects.filter(customer=customer)
    issuances.exclude(note="").update(note=ERASED)
    issuances.exclude(apology_text="").update(apology_text=ERASED)
    for issuance in issuances.exclude(decision_comment="", void_reason="").only("decision_comment", "void_reason"):
        Issuance.objects.filter(pk=issuance.pk).update(
            decision_comment=identity.redact(issuance.decision_comment),
            void_reason=identity.redact(issuance.void_reason),
        )
    deliveries = Delivery.objects.filter(customer=customer)
    for delivery in deliveries.exclude(last_error="").only("last_error"):
        Delivery.objects.filter(pk=delivery.pk).update(last_error=identity.redact(delivery.last_error))
    deliveries.update(address=ERASED)
    for attempt in DeliveryAttempt.objects.filter(delivery__customer=customer).exclude(detail="").only("detail"):
        DeliveryAttempt.objects.filter(pk=attempt.pk).update(detail=identity.redact(attempt.detail))
    codes = issuances.filter(code__isnull=False).values("code_id")
    for row in CodeEvent.objects.filter(code_id__in=codes).exclude(reason="").only("reason"):
        CodeEvent.objects.filter(pk=row.pk).update(reason=identity.redact(row.reason))
    for row in Redemption.objects.filter(code_id__in=codes).exclude(reverse_reason="").only("reverse_reason"):
        Redemption.objects.filter(pk=row.pk).update(reverse_reason=identity.redact(row.reverse_reason))
    Feedback.objects.filter(customer=customer).update(text=ERASED, page_url="")
    cases = Case.objects.filter(customer=customer)
    cases.update(subject=ERASED)
    cases.exclude(resolution_note="").update(resolution_note=ERASED)
    for event in CaseEvent.objects.filter(case__in=cases).only("text", "data"):
        CaseEvent.objects.filter(pk=event.pk).update(
            text=ERASED if event.text else "", data=identity.redact_json(event.data)
        )
    FollowUp.objects.filter(customer=customer).exclude(comment="").update(comment=ERASED)
    for event in events:
        type(event).objects.filter(pk=event.pk).update(data=_event_data_erased(event.data, identity))
    for event in audits:
        mine = _is_tied(tied, event.object_type, event.object_id)
        AuditEvent.objects.filter(pk=event.pk).update(
            before=identity.redact_json(event.before, tied=mine), after=identity.redact_json(event.after, tied=mine)
        )
    customer_type = ContentType.objects.get_for_model(Customer)
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
    audit_event_record(actor=actor, action="customer.erase", obj=customer, after={"reason": reason})
    customer.refresh_from_db()
    return customer


def _expire_json(value):
    """A JSON value with every personal key's value replaced by `[expired]`."""
    if isinstance(value, dict):
        return {
            key: (EXPIRED if key in PERSONAL_KEYS and item not in ("", None, ERASED, EXPIRED) else _expire_json(item))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_expire_json(item) for item in value]
    return value


def _in_batches(queryset, apply, *, size: int, fields: tuple[str, ...] = ()) -> int:
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


def _set(model, **values):
    """An `apply` that gives a batch's rows `values` in one UPDATE."""
    return lambda rows: model.objects.filter(pk__in=[row.pk for row in rows]).update(**values)


def _idle_customers(cutoff):
    """Customers with nothing since `cutoff`: not created, ordered, appeased, complained,
    wrote feedback, answered a survey or redeemed a code of theirs."""
    from coupons.models import Redemption
    from feedback.models import Case, Feedback, FollowUp

    mine = OuterRef("pk")
    recent_case = Q(created_at__gte=cutoff) | Q(closed_at__gte=cutoff)
    return (
        Customer.objects.filter(erased_at__isnull=True, created_at__lt=cutoff)
        .filter(Q(last_order_at__isnull=True) | Q(last_order_at__lt=cutoff))
        .exclude(Exists(Issuance.objects.filter(customer=mine, created_at__gte=cutoff)))
        .exclude(Exists(Case.objects.filter(recent_case, customer=mine)))
        .exclude(Exists(Feedback.objects.filter(customer=mine, created_at__gte=cutoff)))
        .exclude(Exists(FollowUp.objects.filter(customer=mine, answered_at__gte=cutoff)))
        .exclude(Exists(Redemption.objects.filter(code__issuance__customer=mine, redeemed_at__gte=cutoff)))
    )


def personal_data_expire(*, now=None, batch_size: int | None = None) -> dict:
    """Pseudonymise what is older than RETENTION_MONTHS (beat, daily). Returns counts
    per kind; a second run the same day finds nothing more to do (every step excludes
    what is already `[expired]` or `[erased]`).

    Words older than the cutoff become `[expired]`: feedback text, every case timeline
    row's text (the copies of feedback, notes, apologies) and the personal keys of its
    data, closed cases' subjects and resolution notes, survey comments, issuances' notes
    and apology texts, delivery addresses and providers' errors, and the personal values
    in merchant events' data. Customers with no activity since the cutoff are erased
    (`customer_erase`, one transaction each). Everything runs in batches of
    RETENTION_BATCH_SIZE rows, each its own transaction.
    """
    from feedback.models import Case, CaseEvent, Feedback, FollowUp, MerchantEvent

    months = settings.RETENTION_MONTHS
    if not months:
        return {}
    size = batch_size or settings.RETENTION_BATCH_SIZE
    now = now or timezone.now()
    cutoff = now - timedelta(days=30 * months)
    words = ["", ERASED, EXPIRED]

    def expire_case_events(rows):
        for row in rows:
            CaseEvent.objects.filter(pk=row.pk).update(text=EXPIRED if row.text else "", data=_expire_json(row.data))

    def expire_merchant_events(rows):
        for row in rows:
            MerchantEvent.objects.filter(pk=row.pk).update(data=_expire_json(row.data))

    done = {
        "feedback": _in_batches(
            Feedback.objects.filter(created_at__lt=cutoff).exclude(text__in=words),
            _set(Feedback, text=EXPIRED, page_url=""),
            size=size,
        ),
        "case_events": _in_batches(
            CaseEvent.objects.filter(created_at__lt=cutoff).exclude(text__in=words),
            expire_case_events,
            size=size,
            fields=("text", "data"),
        ),
        "cases": _in_batches(
            Case.objects.filter(closed_at__lt=cutoff).exclude(subject__in=[ERASED, EXPIRED]),
            _set(Case, subject=EXPIRED, resolution_note=""),
            size=size,
        ),
        "follow_ups": _in_batches(
            FollowUp.objects.filter(created_at__lt=cutoff).exclude(comment__in=words),
            _set(FollowUp, comment=EXPIRED),
            size=size,
        ),
        "issuance_notes": _in_batches(
            Issuance.objects.filter(created_at__lt=cutoff).exclude(note__in=words),
            _set(Issuance, note=EXPIRED),
            size=size,
        ),
        "apologies": _in_batches(
            Issuance.objects.filter(created_at__lt=cutoff).exclude(apology_text__in=words),
            _set(Issuance, apology_text=EXPIRED),
            size=size,
        ),
        "deliveries": _in_batches(
            Delivery.objects.filter(created_at__lt=cutoff).exclude(address__in=[ERASED, EXPIRED]),
            _set(Delivery, address=EXPIRED),
            size=size,
        ),
        "delivery_errors": _in_batches(
            Delivery.objects.filter(created_at__lt=cutoff).exclude(last_error__in=words),
            _set(Delivery, last_error=EXPIRED),
            size=size,
        ),
        "merchant_events": 0,
    }
    # Merchant events: which still hold a personal value is only known by reading the
    # JSON, so walk the old ones in batches and rewrite those that do.
    last = None
    while True:
        page = MerchantEvent.objects.filter(received_at__lt=cutoff).order_by("pk").only("pk", "data")
        rows = list((page.filter(pk__gt=last) if last is not None else page)[:size])
        if not rows:
            break
        stale = [row for row in rows if _expire_json(row.data) != row.data]
        if stale:
            with transaction.atomic():
                expire_merchant_events(stale)
        done["merchant_events"] += len(stale)
        last = rows[-1].pk
    done["customers"] = _in_batches(
        _idle_customers(cutoff),
        lambda rows: [customer_erase(actor=Actor(), customer=row, reason="retention") for row in rows],
        size=size,
    )
    return done
