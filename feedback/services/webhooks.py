"""What the cases' and follow-ups' webhook events say (appease/webhooks): ids, the
vocabulary (status, incident type, priority, intervention), UTC times. No subject, note,
comment, name or contact."""

from __future__ import annotations

from appease.webhooks.services import iso, webhook_event_emit
from feedback.models import Case, FollowUp


def case_webhook_emit(*, type: str, case: Case) -> None:
    """Emit `type` (case.opened, case.resolved) in the caller's transaction."""
    webhook_event_emit(type=type, data=lambda: _case_payload(case))


def _case_payload(case: Case) -> dict:
    customer = case.customer
    return {
        "case_id": case.pk,
        "status": case.status,
        "source": case.source,
        "incident_type": case.incident_type,
        "priority": case.priority,
        "channel": case.channel,
        "intervention": case.intervention or None,
        "customer_id": case.customer_id,
        "customer_external_id": (customer.external_id or None) if customer is not None else None,
        "created_at": iso(case.created_at),
        "resolved_at": iso(case.resolved_at),
    }


def follow_up_webhook_emit(*, follow_up: FollowUp, case: Case | None) -> None:
    """follow_up.answered: whether the customer says it is solved, and the CSAT score.
    About an appeasement given outside a case, `issuance_id` names it and `case_id` is
    the case a "not solved" opened (null when solved)."""
    webhook_event_emit(
        type="follow_up.answered",
        data={
            "follow_up_id": str(follow_up.pk),
            "case_id": case.pk if case is not None else None,
            "issuance_id": str(follow_up.issuance_id) if follow_up.issuance_id else None,
            "customer_id": follow_up.customer_id,
            "solved": follow_up.solved,
            "csat": follow_up.csat,
            "answered_at": iso(follow_up.answered_at),
        },
    )
