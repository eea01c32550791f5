"""Privacy (GDPR in Europe, LGPD in Brazil): export everything held about a customer,
erase a customer on request, and pseudonymise old personal data on a schedule.

Erasure removes or pseudonymises personal data and keeps the financial and audit trail
whole: amounts, codes' hashes and last four characters, who issued what and when, and
every row's identity stay; names, contact details and free text go. On PostgreSQL the
append-only tables (audit log, case timelines) accept an UPDATE only inside an erasure
transaction and only of their personal-data columns (appease/db.py).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Q
from django.utils import timezone

from appease.context import Actor
from appease.events import audit_event_record, snapshot
from appease.models import AuditEvent, Customer, Delivery, Issuance

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
PERSONAL_KEYS = {"name", "email", "phone", "channel_handle", "external_id", "text", "comment", "address"}


def _iso(value):
    return value.isoformat() if hasattr(value, "isoformat") else value


def customer_export(customer: Customer) -> dict:
    """Everything held about `customer`, as JSON-able data (the right of access)."""
    from feedback.models import Case, Feedback, FollowUp

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
                "note": issuance.note,
                "apology": issuance.apology_text,
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
            }
            for delivery in Delivery.objects.filter(customer=customer)
        ],
        "feedback": [snapshot(item) for item in Feedback.objects.filter(customer=customer)],
        "cases": [
            {
                **snapshot(case, ["subject", "incident_type", "status", "priority", "resolution_note", "intervention"]),
                "id": case.pk,
                "created_at": _iso(case.created_at),
                "timeline": [
                    {"kind": event.kind, "text": event.text, "at": _iso(event.created_at)}
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
    }


def _erasure_mode() -> None:
    """Let this transaction rewrite personal data in append-only tables (PostgreSQL)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL appease.erasure = 'on'")


def _scrub(value):
    """An audit snapshot with personal values replaced."""
    if isinstance(value, dict):
        return {
            key: (ERASED if key in PERSONAL_KEYS and item not in ("", None) else _scrub(item))
            for key, item in value.items()
        }
    return value


@transaction.atomic
def customer_erase(*, actor: Actor, customer: Customer, reason: str = "request") -> Customer:
    """Remove the customer's personal data everywhere; keep the money and the trail."""
    from feedback.models import Case, CaseEvent, Feedback, FollowUp

    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    _erasure_mode()
    now = timezone.now()
    Customer.objects.filter(pk=customer.pk).update(name=f"Erased customer {customer.pk}", erased_at=now, **CONTACT)
    Issuance.objects.filter(customer=customer).exclude(note="").update(note=ERASED)
    Issuance.objects.filter(customer=customer).exclude(apology_text="").update(apology_text=ERASED)
    Delivery.objects.filter(customer=customer).update(address=ERASED)
    Feedback.objects.filter(customer=customer).update(text=ERASED, page_url="")
    cases = Case.objects.filter(customer=customer)
    cases.update(subject=ERASED)
    cases.exclude(resolution_note="").update(resolution_note=ERASED)
    CaseEvent.objects.filter(case__in=cases).exclude(text="").update(text=ERASED)
    FollowUp.objects.filter(customer=customer).exclude(comment="").update(comment=ERASED)
    for event in AuditEvent.objects.filter(object_type="appease.customer", object_id=str(customer.pk)):
        AuditEvent.objects.filter(pk=event.pk).update(before=_scrub(event.before), after=_scrub(event.after))
    audit_event_record(actor=actor, action="customer.erase", obj=customer, after={"reason": reason})
    customer.refresh_from_db()
    return customer


def personal_data_expire(*, now=None) -> dict:
    """Pseudonymise what is older than RETENTION_MONTHS (beat, daily): feedback text,
    closed cases' words, follow-up comments, delivery addresses, and the contact details
    of customers with no activity since. Returns counts per kind."""
    from feedback.models import Case, CaseEvent, Feedback, FollowUp

    months = settings.RETENTION_MONTHS
    if not months:
        return {}
    now = now or timezone.now()
    cutoff = now - timedelta(days=30 * months)
    done = {}
    with transaction.atomic():
        _erasure_mode()
        done["feedback"] = (
            Feedback.objects.filter(created_at__lt=cutoff)
            .exclude(text__in=["", ERASED, EXPIRED])
            .update(text=EXPIRED, page_url="")
        )
        old_cases = Case.objects.filter(closed_at__lt=cutoff).exclude(subject__in=[ERASED, EXPIRED])
        done["case_events"] = (
            CaseEvent.objects.filter(case__in=old_cases).exclude(text__in=["", ERASED, EXPIRED]).update(text=EXPIRED)
        )
        done["cases"] = old_cases.update(subject=EXPIRED, resolution_note="")
        done["follow_ups"] = (
            FollowUp.objects.filter(created_at__lt=cutoff)
            .exclude(comment__in=["", ERASED, EXPIRED])
            .update(comment=EXPIRED)
        )
        done["deliveries"] = (
            Delivery.objects.filter(created_at__lt=cutoff)
            .exclude(address__in=[ERASED, EXPIRED])
            .update(address=EXPIRED)
        )
    idle = (
        Customer.objects.filter(erased_at__isnull=True, created_at__lt=cutoff)
        .annotate(last_issuance=Max("issuances__created_at"), last_case=Max("cases__created_at"))
        .filter(Q(last_issuance__isnull=True) | Q(last_issuance__lt=cutoff))
        .filter(Q(last_case__isnull=True) | Q(last_case__lt=cutoff))
        .filter(Q(last_order_at__isnull=True) | Q(last_order_at__lt=cutoff))
    )
    done["customers"] = 0
    for customer in idle.iterator(chunk_size=500):
        customer_erase(actor=Actor(), customer=customer, reason="retention")
        done["customers"] += 1
    return done
