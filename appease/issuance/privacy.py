"""The issuance domain's personal data (appease.core.privacy): the customer themselves
(this app owns the customer model), their orders, their issuances' words, and the words
of their codes' ledger (coupons knows codes, not whose they are: the link is ours).

Registered in IssuanceConfig.ready.
"""

from __future__ import annotations

from django.db.models import Exists, Q
from django.utils import timezone

from appease.core.audit import snapshot
from appease.core.privacy import (
    DONE_WORDS,
    ERASED,
    EXPIRED,
    Identity,
    PersonalData,
    ids,
    in_batches,
    iso,
    register,
    set_values,
)
from appease.issuance.models import Customer, Issuance
from coupons.models import CodeEvent, Redemption

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


def objects(customer) -> dict:
    return {Customer: [customer.pk], Issuance: ids(Issuance.objects.filter(customer=customer))}


def _code_history(issuance) -> list[dict]:
    if not issuance.code_id:
        return []
    events = issuance.code.events.all()
    return [{"at": iso(event.created_at), "kind": event.kind, "reason": event.reason} for event in events] + [
        {"at": iso(row.reversed_at), "kind": "reversed", "reason": row.reverse_reason}
        for row in issuance.code.redemptions.exclude(reverse_reason="")
    ]


def export(customer, identity: Identity) -> dict:
    issuances = Issuance.objects.filter(customer=customer).select_related("offer", "reason_code", "code", "csr")
    return {
        "customer": snapshot(customer),
        "orders": [snapshot(order) for order in customer.orders.all()],
        "issuances": [
            {
                "id": str(issuance.pk),
                "created_at": iso(issuance.created_at),
                "offer": issuance.offer.name,
                "reason": issuance.reason_code.label,
                "channel": issuance.channel,
                "status": issuance.effective_status,
                "face_value": str(issuance.face_value_amount),
                "currency": issuance.currency,
                "code_last4": issuance.code.last4 if issuance.code_id else None,
                "code_history": _code_history(issuance),
                "note": issuance.note,
                "apology": issuance.apology_text,
                "decision_comment": issuance.decision_comment,
                "void_reason": issuance.void_reason,
                "given_by": issuance.given_by,
            }
            for issuance in issuances
        ],
    }


def erase(customer, identity: Identity) -> dict:
    """The customer row pseudonymised; their issuances' notes and apologies erased, the
    mentions of them in decisions, void reasons and their codes' ledger replaced."""
    Customer.objects.filter(pk=customer.pk).update(
        name=f"Erased customer {customer.pk}", erased_at=timezone.now(), **CONTACT
    )
    issuances = Issuance.objects.filter(customer=customer)
    done = {
        "issuance_notes": issuances.exclude(note="").update(note=ERASED),
        "apologies": issuances.exclude(apology_text="").update(apology_text=ERASED),
        "issuance_decisions": 0,
        "code_events": 0,
        "reversals": 0,
    }
    for issuance in issuances.exclude(decision_comment="", void_reason="").only("decision_comment", "void_reason"):
        done["issuance_decisions"] += Issuance.objects.filter(pk=issuance.pk).update(
            decision_comment=identity.redact(issuance.decision_comment),
            void_reason=identity.redact(issuance.void_reason),
        )
    codes = issuances.filter(code__isnull=False).values("code_id")
    for row in CodeEvent.objects.filter(code_id__in=codes).exclude(reason="").only("reason"):
        done["code_events"] += CodeEvent.objects.filter(pk=row.pk).update(reason=identity.redact(row.reason))
    for row in Redemption.objects.filter(code_id__in=codes).exclude(reverse_reason="").only("reverse_reason"):
        done["reversals"] += Redemption.objects.filter(pk=row.pk).update(
            reverse_reason=identity.redact(row.reverse_reason)
        )
    return done


def expire(cutoff, *, size: int) -> dict:
    """Notes and apologies of issuances given before `cutoff`; decision comments and
    void reasons written before it (they may name the customer, whom we cannot look
    for here: the whole text goes)."""
    old = Issuance.objects.filter(created_at__lt=cutoff)
    decided = Q(decided_at__lt=cutoff) | Q(decided_at__isnull=True, created_at__lt=cutoff)
    voided = Q(voided_at__lt=cutoff) | Q(voided_at__isnull=True, created_at__lt=cutoff)
    return {
        "issuance_notes": in_batches(old.exclude(note__in=DONE_WORDS), set_values(Issuance, note=EXPIRED), size=size),
        "apologies": in_batches(
            old.exclude(apology_text__in=DONE_WORDS), set_values(Issuance, apology_text=EXPIRED), size=size
        ),
        "issuance_decisions": in_batches(
            Issuance.objects.filter(decided).exclude(decision_comment__in=DONE_WORDS),
            set_values(Issuance, decision_comment=EXPIRED),
            size=size,
        ),
        "void_reasons": in_batches(
            Issuance.objects.filter(voided).exclude(void_reason__in=DONE_WORDS),
            set_values(Issuance, void_reason=EXPIRED),
            size=size,
        ),
    }


def subject_idle(cutoff):
    """Customers not erased, created before `cutoff` and with no order since."""
    return Customer.objects.filter(erased_at__isnull=True, created_at__lt=cutoff).filter(
        Q(last_order_at__isnull=True) | Q(last_order_at__lt=cutoff)
    )


def active(customer, cutoff) -> list:
    """Appeased since `cutoff`, or redeemed a code of theirs."""
    return [
        Exists(Issuance.objects.filter(customer=customer, created_at__gte=cutoff)),
        Exists(Redemption.objects.filter(code__issuance__customer=customer, redeemed_at__gte=cutoff)),
    ]


PERSONAL_DATA = PersonalData(
    app_label="appease",
    models=(Customer, Issuance),
    objects=objects,
    export=export,
    erase=erase,
    expire=expire,
    active=active,
    keys=frozenset({"note", "apology_text"}),
    words=frozenset({"decision_comment", "void_reason"}),
    subject=Customer,
    subject_idle=subject_idle,
)


def personal_data_register() -> None:
    register(PERSONAL_DATA)
