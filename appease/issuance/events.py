"""The issuance's audit rows: what an appeasement looked like when it was given or decided."""

from __future__ import annotations

from appease.core.audit import audit_event_record, snapshot
from appease.core.context import Actor
from appease.core.models import AuditEvent

ISSUANCE_FIELDS = [
    "csr",
    "customer",
    "offer",
    "reason_code",
    "channel",
    "status",
    "currency",
    "face_value_amount",
    "cost_amount",
    "breached_limits",
    "decided_by",
    "decision_comment",
    "void_reason",
]


def issuance_created_event(*, actor: Actor, issuance) -> AuditEvent:
    after = {**snapshot(issuance, ISSUANCE_FIELDS), "code_last4": issuance.code.last4 if issuance.code_id else None}
    return audit_event_record(actor=actor, action="issuance.create", obj=issuance, after=after)


def issuance_decided_event(*, actor: Actor, issuance, before: dict, action: str) -> AuditEvent:
    after = {**snapshot(issuance, ISSUANCE_FIELDS), "code_last4": issuance.code.last4 if issuance.code_id else None}
    return audit_event_record(actor=actor, action=action, obj=issuance, before=before, after=after)
