"""Case timeline writes. Each function appends one row (CaseEvent, append-only), in the
caller's transaction: one function per kind of line, so what each kind holds in `data`
is written down in one place (the case page and the privacy export read it)."""

from __future__ import annotations

from appease.core.context import Actor
from feedback.models import Case, CaseEvent

Kind = CaseEvent.Kind


def case_event_record(
    *, case: Case | int, kind: str, actor: Actor | None = None, text: str = "", data: dict | None = None
) -> CaseEvent:
    """One line on `case`'s timeline (a Case or its pk), by `actor` (None: the system)."""
    case_ref = {"case_id": case} if isinstance(case, int) else {"case": case}
    return CaseEvent.objects.create(
        **case_ref, kind=kind, actor=actor.user if actor else None, text=text, data=data or {}
    )


# --- Opening and intake --------------------------------------------------------------------


def case_opened_event(*, case: Case, actor: Actor, judged) -> CaseEvent:
    """A new case, with how it was scored and what the triage read in it."""
    return case_event_record(
        case=case,
        kind=Kind.OPENED,
        actor=actor,
        data={
            "priority": case.priority,
            "score": case.priority_score,
            "incident_type": case.incident_type,
            "inferred": judged.inferred,
            "matched": list(judged.matched),
        },
    )


def case_feedback_event(*, case: Case, actor: Actor, feedback, text: str) -> CaseEvent:
    """Feedback joined the case (the one that opened it, or a later one)."""
    return case_event_record(
        case=case,
        kind=Kind.FEEDBACK,
        actor=actor,
        text=text[:4000],
        data={"feedback_id": feedback.pk, "source": feedback.source, "rating": feedback.rating, "nps": feedback.nps},
    )


# --- Working the case ------------------------------------------------------------------------


def case_claimed_event(*, case: Case, actor: Actor) -> CaseEvent:
    return case_event_record(case=case, kind=Kind.CLAIMED, actor=actor)


def case_note_event(*, case: Case, actor: Actor, text: str) -> CaseEvent:
    return case_event_record(case=case, kind=Kind.NOTE, actor=actor, text=text)


def case_call_event(*, case: Case, actor: Actor, text: str) -> CaseEvent:
    return case_event_record(case=case, kind=Kind.CALL, actor=actor, text=text)


def case_reassigned_event(*, case: Case, actor: Actor, to_user, from_user_id) -> CaseEvent:
    return case_event_record(
        case=case,
        kind=Kind.REASSIGNED,
        actor=actor,
        data={"to": to_user.get_username(), "from_user_id": from_user_id},
    )


def case_escalated_event(*, case: Case, actor: Actor, text: str) -> CaseEvent:
    return case_event_record(case=case, kind=Kind.ESCALATED, actor=actor, text=text)


def case_issued_event(*, case: Case, actor: Actor, issuance, apology_text: str = "") -> CaseEvent:
    """An appeasement given from the case: `apology` for a soft offer, else `issued`."""
    offer = issuance.offer
    return case_event_record(
        case=case,
        kind=Kind.APOLOGY if offer.is_soft else Kind.ISSUED,
        actor=actor,
        text=apology_text,
        data={"issuance_id": str(issuance.pk), "offer": offer.name, "offer_id": offer.pk, "status": issuance.status},
    )


def case_resolved_event(*, case: Case, actor: Actor, note: str) -> CaseEvent:
    return case_event_record(
        case=case, kind=Kind.RESOLVED, actor=actor, text=note, data={"intervention": case.intervention}
    )


def case_sla_breached_event(*, case_id: int, target: str) -> CaseEvent:
    """A target missed (beat: the system)."""
    return case_event_record(case=case_id, kind=Kind.SLA_BREACHED, data={"target": target})


# --- After resolution: the follow-up and the customer's answer (the system) -----------------


def follow_up_scheduled_event(*, case: Case, follow_up) -> CaseEvent:
    return case_event_record(
        case=case,
        kind=Kind.FOLLOW_UP_SCHEDULED,
        data={"due_at": follow_up.due_at.isoformat(), "follow_up": str(follow_up.pk)},
    )


def follow_up_sent_event(*, case: Case, channel: str, delivery) -> CaseEvent:
    return case_event_record(
        case=case, kind=Kind.FOLLOW_UP_SENT, data={"channel": channel, "delivery": str(delivery.pk)}
    )


def follow_up_skipped_event(*, case: Case, reason: str) -> CaseEvent:
    return case_event_record(case=case, kind=Kind.FOLLOW_UP_SKIPPED, data={"reason": reason})


def survey_answered_event(
    *, case: Case, solved: bool | None, csat: int | None, comment: str, issuance=None
) -> CaseEvent:
    """The customer's answer; `issuance` when it was about an appeasement given outside
    this case (the case was opened, or joined, by that answer)."""
    data = {"solved": solved, "csat": csat}
    if issuance is not None:
        data |= {"issuance": str(issuance.pk), "offer_id": issuance.offer_id}
    return case_event_record(case=case, kind=Kind.SURVEY_ANSWERED, text=comment, data=data)


def case_reopened_event(*, case: Case) -> CaseEvent:
    return case_event_record(
        case=case, kind=Kind.REOPENED, data={"priority": case.priority, "score": case.priority_score}
    )


def case_closed_event(*, case: Case, status: str, reason: str | None = None) -> CaseEvent:
    """Closed, confirmed or not; `reason` why unconfirmed (no answer is asked for)."""
    data = {"status": status} if reason is None else {"status": status, "reason": reason}
    return case_event_record(case=case, kind=Kind.CLOSED, data=data)
