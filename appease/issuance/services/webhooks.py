"""What an issuance's webhook events say (appease/webhooks): ids, amounts as strings with
their currency, UTC times and the code's last four. No note, comment, name or contact."""

from __future__ import annotations

from appease.issuance.models import Issuance
from appease.webhooks.services import iso, money, webhook_event_emit


def issuance_webhook_emit(*, type: str, issuance: Issuance) -> None:
    """Emit `type` (issuance.created/approved/rejected/voided) in the caller's transaction."""
    webhook_event_emit(type=type, data=lambda: _payload(issuance))


def _payload(issuance: Issuance) -> dict:
    code = issuance.code if issuance.code_id else None
    return {
        "issuance_id": str(issuance.pk),
        "status": issuance.status,
        "customer_id": issuance.customer_id,
        "customer_external_id": issuance.customer.external_id or None,
        "offer_id": issuance.offer_id,
        "reason_code": issuance.reason_code.code if issuance.reason_code_id else None,
        "channel": issuance.channel,
        "face_value": money(issuance.face_value_amount, issuance.currency),
        "code_last4": code.last4 if code is not None else None,
        "case_id": issuance.case_id,
        "auto_rule_id": issuance.auto_rule_id,
        "created_at": iso(issuance.created_at),
        "issued_at": iso(issuance.issued_at),
        "decided_at": iso(issuance.decided_at),
        "voided_at": iso(issuance.voided_at),
    }
