"""Working a case: claim the next one, act, resolve, reassign, escalate.

Every change writes a line on the case's timeline (CaseEvent, append-only) in the same
transaction. The first response is the first thing the customer receives: a message
(an apology), an appeasement given (not one waiting for approval: that counts when it is
approved), or a call the rep logged. Claiming a case is not a response.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import Case as Switch
from django.db.models import Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from appease.core.context import Actor
from appease.core.exceptions import ApplicationError
from appease.core.idempotency import idempotency_key_complete, idempotency_key_settle
from appease.core.models import IdempotencyKey
from appease.core.roles import CSR, SUPERVISOR, has_role, role_emails
from appease.issuance.models import Customer, Issuance, ReasonCode
from appease.issuance.selectors import staff_languages
from appease.issuance.services.issuance import issuance_record, issuance_transaction
from coupons.models import Offer
from feedback.events import (
    case_call_event,
    case_claimed_event,
    case_escalated_event,
    case_issued_event,
    case_note_event,
    case_reassigned_event,
    case_resolved_event,
)
from feedback.models import APOLOGY_ARM, ApologyTemplate, AppeasementOutcome, Case, CaseEvent, Intervention
from feedback.services.intake import feedback_submit
from feedback.services.outcomes import apology_outcome_record
from feedback.services.surveys import follow_up_schedule
from feedback.services.webhooks import case_webhook_emit


def _lock(case_id) -> Case:
    try:
        return Case.objects.select_for_update(of=("self",)).select_related("customer").get(pk=case_id)
    except Case.DoesNotExist:
        raise ApplicationError("not_found", _("No such case."), status=404) from None


def _require_staff(actor: Actor) -> None:
    if actor.user is None or not has_role(actor.user, CSR, SUPERVISOR):
        raise ApplicationError("forbidden", _("Only reps and supervisors work cases."), status=403)


def _require_owner_or_supervisor(actor: Actor, case: Case) -> None:
    _require_staff(actor)
    if case.assigned_to_id != actor.user.pk and not has_role(actor.user, SUPERVISOR):
        raise ApplicationError("not_yours", _("This case is assigned to someone else."), status=403)


def case_responded(*, case_id, now) -> bool:
    """The customer received something (a message, an appeasement, a logged call): the
    case's first response, if it had none. One conditional UPDATE, so two at once
    stamp it once; True when this was the first."""
    return bool(Case.objects.filter(pk=case_id, first_response_at__isnull=True).update(first_response_at=now))


def case_claim_next(*, actor: Actor) -> Case | None:
    """The highest-priority unclaimed case, now the actor's; None when the queue is empty.

    Cases in the rep's languages come first (their profile's `languages`); the others
    after them, so nobody sits idle while a case waits.

    On PostgreSQL the candidate row is locked with FOR UPDATE SKIP LOCKED, so reps
    claiming at once each get a different case without waiting for each other. The
    conditional update (`status = open`) is the guard on every database.
    """
    _require_staff(actor)
    languages = staff_languages(actor.user)
    for _attempt in range(5):
        with transaction.atomic():
            queue = Case.objects.filter(status=Case.Status.OPEN)
            if languages:
                foreign = Switch(When(language__in=languages, then=Value(0)), default=Value(1))
                queue = queue.annotate(foreign=foreign).order_by("foreign", "-priority_score", "created_at")
            else:
                queue = queue.order_by("-priority_score", "created_at")
            if connection.features.has_select_for_update_skip_locked:
                queue = queue.select_for_update(skip_locked=True)
            candidate = queue.values_list("pk", flat=True).first()
            if candidate is None:
                return None
            now = timezone.now()
            claimed = Case.objects.filter(pk=candidate, status=Case.Status.OPEN).update(
                status=Case.Status.CLAIMED, assigned_to=actor.user, claimed_at=now
            )
            if claimed:
                case = Case.objects.select_related("customer").get(pk=candidate)
                case_claimed_event(case=case, actor=actor)
                return case
    return None


@transaction.atomic
def case_claim(*, actor: Actor, case_id) -> Case:
    """Take one particular open case from the queue."""
    _require_staff(actor)
    case = _lock(case_id)
    if case.status != Case.Status.OPEN:
        raise ApplicationError("not_open", _("Someone else has this case already."), status=409)
    now = timezone.now()
    case.status = Case.Status.CLAIMED
    case.assigned_to = actor.user
    case.claimed_at = now
    case.save()
    case_claimed_event(case=case, actor=actor)
    return case


def case_log(
    *,
    actor: Actor,
    customer: Customer,
    text: str,
    incident_type: str = "",
    channel: str = "",
    order_reference: str = "",
    rating: int | None = None,
    idempotency_key: IdempotencyKey | None = None,
) -> Case:
    """A rep logs a case for `customer` (from a call, a chat, a helpdesk ticket): the
    feedback intake triages and scores it like any other, and the case is the rep's at
    once. Feedback joining the customer's open case of the same incident type goes there
    (claimed for the rep if nobody works it). `idempotency_key` (a claimed key) is
    completed in the same transaction, so a retry replays this case."""
    _require_staff(actor)
    try:
        with transaction.atomic(durable=True):
            feedback = feedback_submit(
                actor=actor,
                source=Case.Source.CSR,
                customer=customer,
                rating=rating,
                text=text,
                incident_type=incident_type,
                order_reference=order_reference,
                channel=channel,
                language=customer.language,
                force_case=True,
            )
            case = feedback.case
            if case.status == Case.Status.OPEN:
                case = case_claim(actor=actor, case_id=case.pk)
            if idempotency_key is not None:
                idempotency_key_complete(record=idempotency_key, response_status=201, result={"case_id": case.pk})
    except BaseException as error:
        idempotency_key_settle(record=idempotency_key, error=error)
        raise
    return case


@transaction.atomic
def case_note(*, actor: Actor, case_id, text: str) -> CaseEvent:
    _require_staff(actor)
    if not text.strip():
        raise ValidationError({"text": _("Write the note.")})
    if len(text) > 4000:
        raise ValidationError({"text": _("Keep the note under 4,000 characters.")})
    case = _lock(case_id)
    return case_note_event(case=case, actor=actor, text=text)


@transaction.atomic
def case_call_log(*, actor: Actor, case_id, text: str) -> CaseEvent:
    """The rep spoke to the customer on the phone: a line on the timeline, and the
    case's first response if it had none."""
    _require_staff(actor)
    if not text.strip():
        raise ValidationError({"text": _("Say what was said on the call.")})
    if len(text) > 4000:
        raise ValidationError({"text": _("Keep the note under 4,000 characters.")})
    case = _lock(case_id)
    _require_owner_or_supervisor(actor, case)
    case_responded(case_id=case.pk, now=timezone.now())
    return case_call_event(case=case, actor=actor, text=text)


@transaction.atomic
def case_reassign(*, actor: Actor, case_id, to_user_id) -> Case:
    """Hand a case to another rep (its owner or a supervisor may)."""
    case = _lock(case_id)
    _require_owner_or_supervisor(actor, case)
    if not case.is_open:
        raise ApplicationError("closed", _("Only an open case can be reassigned."), status=409)
    user = get_user_model().objects.filter(pk=to_user_id, is_active=True).first()
    if user is None or not has_role(user, CSR, SUPERVISOR):
        raise ValidationError({"assigned_to": _("Choose an active rep or supervisor.")})
    before = case.assigned_to_id
    now = timezone.now()
    case.assigned_to = user
    case.status = Case.Status.CLAIMED
    case.claimed_at = now
    case.save()
    case_reassigned_event(case=case, actor=actor, to_user=user, from_user_id=before)
    return case


@transaction.atomic
def case_escalate(*, actor: Actor, case_id, text: str) -> Case:
    """Ask the supervisors for help: they get an email; the case is marked escalated.
    Its owner or a supervisor may, while the case is open."""
    if not text.strip():
        raise ValidationError({"text": _("Say why you escalate.")})
    case = _lock(case_id)
    _require_owner_or_supervisor(actor, case)
    if not case.is_open:
        raise ApplicationError("closed", _("Only an open case can be escalated."), status=409)
    case.escalated_at = timezone.now()
    case.save(update_fields=["escalated_at"])
    case_escalated_event(case=case, actor=actor, text=text)
    recipients = [email for email in role_emails(SUPERVISOR) if email != getattr(actor.user, "email", None)]
    if recipients:
        transaction.on_commit(
            lambda: send_mail(
                _("Case #%(id)s escalated") % {"id": case.pk},
                _("%(user)s escalated case #%(id)s (%(subject)s):\n\n%(text)s\n\n%(url)s")
                % {
                    "user": actor.user.get_username(),
                    "id": case.pk,
                    "subject": case.subject,
                    "text": text,
                    "url": f"{settings.PUBLIC_URL}/csr/cases/{case.pk}/",
                },
                settings.DEFAULT_FROM_EMAIL,
                recipients,
                fail_silently=True,
            )
        )
    return case


def case_issue(
    *,
    actor: Actor,
    case_id,
    offer: Offer,
    reason_code,
    channel: str | None = None,
    note: str = "",
    apology_text: str = "",
    idempotency_key=None,
    context: dict | None = None,
) -> Issuance:
    """Give an appeasement from the case: the normal issuance flow, with its limits,
    linked to the case; the complaint's clock started when the case opened.
    `idempotency_key` (a claimed key) makes a second submission of the same form replay."""
    # One transaction: the appeasement and the case's record of it commit together. The
    # checks run inside it, so a refusal settles the idempotency key like any other.
    with issuance_transaction(idempotency_key=idempotency_key):
        case = Case.objects.select_related("customer").filter(pk=case_id).first()
        if case is None:
            raise ApplicationError("not_found", _("No such case."), status=404)
        _require_owner_or_supervisor(actor, case)
        if case.customer is None:
            raise ApplicationError("no_customer", _("This case has no customer to give anything to."), status=409)
        if not case.is_open:
            raise ApplicationError("closed", _("This case is closed."), status=409)
        issuance = issuance_record(
            actor=actor,
            customer=case.customer,
            offer=offer,
            reason_code=reason_code,
            channel=channel,
            note=note,
            complaint_started_at=case.created_at,
            complaint_start_source=Issuance.StartSource.CASE,
            case=case,
            apology_text=apology_text,
            idempotency_key=idempotency_key,
            context=context,
        )
        case = _lock(case_id)
        if issuance.status != Issuance.Status.PENDING_APPROVAL:  # waiting: nothing reached the customer yet
            case_responded(case_id=case.pk, now=issuance.issued_at or timezone.now())
        case_issued_event(case=case, actor=actor, issuance=issuance, apology_text=apology_text)
    return issuance


def case_apologise(
    *,
    actor: Actor,
    case_id,
    template: ApologyTemplate | None,
    text: str,
    reason_code: ReasonCode | None = None,
    channel=None,
    idempotency_key: IdempotencyKey | None = None,
    context: dict | None = None,
) -> Issuance:
    """A soft intervention: the rep's apology (from a template, edited) sent to the
    customer through the delivery outbox as an apology (no code), in the customer's
    language and on their channel unless `channel` says otherwise. Without a
    `reason_code`, the first active one for the case's incident type (else any)."""
    case = Case.objects.select_related("customer").filter(pk=case_id).first()
    if case is None:
        raise ApplicationError("not_found", _("No such case."), status=404)
    # The template is filled in for this case's customer ({first_name}), as on the page.
    text = (text or (template.render(case.customer) if template else "")).strip()
    if not text:
        raise ValidationError({"text": _("Write the apology.")})
    offer = Offer.objects.filter(kind=Offer.Kind.APOLOGY, is_active=True).order_by("pk").first()
    if offer is None:
        raise ApplicationError(
            "no_apology_offer", _("Ask a supervisor to create an active Apology offer first."), status=409
        )
    if reason_code is None:
        reasons = ReasonCode.objects.filter(is_active=True)
        reason_code = reasons.filter(incident_type=case.incident_type).first() or reasons.first()
    if reason_code is None:
        raise ApplicationError(
            "no_reason_code", _("Ask a supervisor to create an active reason code first."), status=409
        )
    return case_issue(
        actor=actor,
        case_id=case_id,
        offer=offer,
        reason_code=reason_code,
        channel=channel,
        apology_text=text,
        idempotency_key=idempotency_key,
        context=context,
    )


def _intervention_given(case: Case) -> str:
    """What the case got, the hardest first: a gift card, a refund credit, a discount,
    then a callback or an apology; an explanation when nothing was sent."""
    kinds = set(
        Issuance.objects.filter(case=case)
        .exclude(status__in=[Issuance.Status.REJECTED, Issuance.Status.VOIDED, Issuance.Status.PENDING_APPROVAL])
        .values_list("offer__kind", flat=True)
    )
    given = {Intervention.for_offer_kind(kind) for kind in kinds}
    for intervention in (
        Intervention.GIFT_CARD,
        Intervention.REFUND_CREDIT,
        Intervention.DISCOUNT,
        Intervention.CALLBACK,
        Intervention.APOLOGY,
    ):
        if intervention in given:
            return intervention
    return Intervention.EXPLANATION


@transaction.atomic
def case_resolve(*, actor: Actor, case_id, note: str, intervention: str = "") -> Case:
    """Resolve with a note; the follow-up that asks the customer is scheduled."""
    if not note.strip():
        raise ValidationError({"note": _("Say how the case was resolved.")})
    if intervention and intervention not in Intervention.values:
        raise ValidationError({"intervention": _("Choose one of the interventions.")})
    case = _lock(case_id)
    _require_owner_or_supervisor(actor, case)
    if not case.is_open:
        raise ApplicationError("closed", _("This case is already resolved."), status=409)
    now = timezone.now()
    case.status = Case.Status.RESOLVED
    case.resolved_at = now
    case.resolved_by = actor.user
    case.resolution_note = note[:4000]
    case.intervention = intervention or _intervention_given(case)
    if case.assigned_to_id is None:
        case.assigned_to = actor.user
    case.save()
    case_resolved_event(case=case, actor=actor, note=note)
    case_webhook_emit(type="case.resolved", case=case)
    if (
        case.intervention == Intervention.APOLOGY
        and case.customer is not None
        and not AppeasementOutcome.objects.filter(case=case, follow_up__isnull=True, arm=APOLOGY_ARM).exists()
    ):
        # The rep apologised without an apology offer (on a call, say): an intervention
        # all the same, whose outcome the follow-up's answer is.
        apology_outcome_record(case=case)
    follow_up_schedule(case=case, now=now)
    return case
