"""Closing the loop: the follow-up after a resolved case, or after an appeasement given
outside a case, and its one-question survey.

- `follow_up_schedule`: at resolution, a follow-up is due FOLLOW_UP_DELAY later,
  unless the customer was surveyed about something else within SURVEY_QUIET_PERIOD
  (then the case closes unconfirmed at once, and the timeline says why). It is linked to
  the outcome rows of what the case got in that round.
- `appeasement_follow_up_schedule`: an appeasement given outside a case (the customer
  panel, the helpdesk sidebar, the API, an automatic rule) gets the same follow-up once
  its message is delivered (`appeasement_delivered`, a listener of the outbox), under
  the same quiet period: a case's follow-up and an appeasement's count against each
  other.
- `follow_ups_send` (beat): due follow-ups go to the delivery outbox, through the
  customer's preferred channel (or another they agreed to) in their language.
- The survey link carries a signed token (django.core.signing, salted) naming the
  follow-up; the row's `expires_at` and `answered_at` make it expiring and single-use.
- `survey_answer`: the answer is written on every outcome row the follow-up asks about;
  solved → the case closes, confirmed; not solved → it reopens at high priority, or,
  for an appeasement without a case, a case is opened through the feedback intake.
  `follow_ups_expire` (beat) closes unanswered ones as unconfirmed (their outcomes stay
  unanswered: `solved` null).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from appease.core.context import SYSTEM
from appease.core.exceptions import ApplicationError
from appease.delivery.kinds import Outcome
from appease.delivery.models import Delivery
from appease.delivery.services import delivery_create
from appease.issuance.models import Issuance
from feedback.events import (
    case_closed_event,
    case_reopened_event,
    follow_up_scheduled_event,
    follow_up_sent_event,
    follow_up_skipped_event,
    survey_answered_event,
)
from feedback.models import AppeasementOutcome, Case, FollowUp, Priority, PriorityLevel
from feedback.services.intake import feedback_submit
from feedback.services.outcomes import intervention_of, outcomes_answer_record
from feedback.services.sla import due_times, rises, tightened_targets
from feedback.services.webhooks import follow_up_webhook_emit

logger = logging.getLogger(__name__)

SALT = "appease.feedback.survey"


def survey_token(follow_up: FollowUp) -> str:
    """The same token every time for one follow-up: a resent message carries the same
    link, and expiry lives in the row (`expires_at`), not in the signature."""
    return signing.Signer(salt=SALT).sign(str(follow_up.pk))


def survey_url(follow_up: FollowUp) -> str:
    return settings.PUBLIC_URL + reverse("survey", args=[survey_token(follow_up)])


def follow_up_from_token(token: str) -> FollowUp:
    """The follow-up a survey token names. A forged or damaged token is refused."""
    try:
        follow_up_id = signing.Signer(salt=SALT).unsign(token)
    except signing.BadSignature:
        raise ApplicationError("bad_token", _("This survey link is not valid."), status=404) from None
    follow_up = (
        FollowUp.objects.select_related("case", "customer", "issuance__offer", "issuance__reason_code")
        .filter(pk=follow_up_id)
        .first()
    )
    if follow_up is None:
        raise ApplicationError("bad_token", _("This survey link is not valid."), status=404)
    return follow_up


def _quiet(customer, now, *, case: Case | None = None, follow_up: FollowUp | None = None) -> bool:
    """Was this customer surveyed (or is a survey on its way) within the quiet period,
    about something else? A case's follow-ups and an appeasement's count against each
    other. Follow-ups of the same case do not count: the quiet period is about not
    pestering a customer about different things, and a case that reopened because it
    was not solved must still close its loop. `follow_up` is the one being sent (it does
    not count against itself)."""
    recent = FollowUp.objects.filter(customer=customer).filter(
        Q(status=FollowUp.Status.SCHEDULED) | Q(sent_at__gte=now - settings.SURVEY_QUIET_PERIOD)
    )
    if case is not None:
        recent = recent.exclude(case=case)
    if follow_up is not None:
        recent = recent.exclude(pk=follow_up.pk)
    return recent.exists()


def _close(case: Case, status: str, now, reason: str) -> None:
    Case.objects.filter(pk=case.pk, status=Case.Status.RESOLVED).update(status=status, closed_at=now)
    case_closed_event(case=case, status=status, reason=reason)


# What reached the customer: an appeasement waiting for approval, rejected or voided did not.
GIVEN = (Issuance.Status.ISSUED, Issuance.Status.DELIVERED, Issuance.Status.FAILED)


def follow_up_schedule(*, case: Case, now=None) -> FollowUp | None:
    """Plan the follow-up for a just-resolved case (in the caller's transaction), and
    link it to the outcome rows of this round (what the case got that has no follow-up
    yet): one answer is the outcome of each of them."""
    now = now or timezone.now()
    customer = case.customer
    if customer is None:
        follow_up_skipped_event(case=case, reason="no_customer")
        _close(case, Case.Status.UNCONFIRMED, now, "no_customer")
        return None
    if _quiet(customer, now, case=case):
        follow_up_skipped_event(case=case, reason="quiet_period")
        _close(case, Case.Status.UNCONFIRMED, now, "quiet_period")
        return None
    due = now + settings.FOLLOW_UP_DELAY
    follow_up = FollowUp.objects.create(
        case=case,
        customer=customer,
        intervention=case.intervention,
        due_at=due,
        expires_at=due + settings.SURVEY_LINK_VALIDITY,
    )
    AppeasementOutcome.objects.filter(case=case, follow_up__isnull=True).filter(
        Q(issuance__isnull=True) | Q(issuance__status__in=GIVEN)
    ).update(follow_up=follow_up)
    follow_up_scheduled_event(case=case, follow_up=follow_up)
    return follow_up


def appeasement_delivered(delivery: Delivery, outcome: Outcome) -> None:
    """The outbox's listener (registered in apps.py): an appeasement's message left (or
    was reported delivered), so its follow-up can be planned. Told in the outbox's
    transaction, after the issuance followed its delivery."""
    if delivery.kind != Delivery.Kind.APPEASEMENT or delivery.issuance_id is None:
        return
    if outcome.status not in (Delivery.Status.SENT, Delivery.Status.DELIVERED):
        return
    appeasement_follow_up_schedule(issuance_id=delivery.issuance_id, now=outcome.at)


def appeasement_follow_up_schedule(*, issuance_id, now=None) -> FollowUp | None:
    """Plan the follow-up of an appeasement given outside a case, once, when its message
    is delivered (in the caller's transaction). A case's appeasements are asked about by
    the case's follow-up, at resolution; one that did not reach the customer (waiting for
    approval, rejected, voided) gets none. Within the quiet period the follow-up is
    recorded as skipped, so a resend or a later delivery report does not plan it again.
    """
    now = now or timezone.now()
    # The issuance's row: a resend's delivery reported at the same moment waits here,
    # then finds the follow-up (and the unique constraint is the backstop).
    issuance = (
        Issuance.objects.select_for_update(of=("self",))
        .select_related("customer", "offer")
        .filter(pk=issuance_id)
        .first()
    )
    if issuance is None or issuance.case_id is not None or issuance.status not in GIVEN:
        return None
    if FollowUp.objects.filter(issuance=issuance).exists():
        return None
    customer = issuance.customer
    due = now + settings.FOLLOW_UP_DELAY
    quiet = _quiet(customer, now)
    follow_up = FollowUp.objects.create(
        issuance=issuance,
        customer=customer,
        intervention=intervention_of(issuance.offer),
        status=FollowUp.Status.SKIPPED if quiet else FollowUp.Status.SCHEDULED,
        skip_reason="quiet_period" if quiet else "",
        due_at=due,
        expires_at=due + settings.SURVEY_LINK_VALIDITY,
    )
    if not quiet:
        AppeasementOutcome.objects.filter(issuance=issuance, follow_up__isnull=True).update(follow_up=follow_up)
    return follow_up


def _skip_reason(follow_up: FollowUp, channel, now) -> str:
    """Why a due follow-up is not sent ("" when it goes)."""
    if follow_up.issuance_id is not None and follow_up.case_id is None:
        status = Issuance.objects.filter(pk=follow_up.issuance_id).values_list("status", flat=True).first()
        if status in (Issuance.Status.VOIDED, Issuance.Status.REJECTED):
            return "voided"  # taken back before we asked about it
    if channel is None:
        return "no_channel"
    if _quiet(follow_up.customer, now, case=follow_up.case, follow_up=follow_up):
        return "quiet_period"
    return ""


def follow_ups_send(*, now=None, limit: int = 500) -> int:
    """Hand every due follow-up to the delivery outbox (beat, each minute).

    The conditional update `scheduled → sent` decides, so two beat runs never send the
    same follow-up twice; the delivery row is written in the same transaction.
    """
    now = now or timezone.now()
    due = list(
        FollowUp.objects.filter(status=FollowUp.Status.SCHEDULED, due_at__lte=now)
        .order_by("due_at")
        .values_list("pk", flat=True)[:limit]
    )
    sent = 0
    for pk in due:
        with transaction.atomic():
            follow_up = FollowUp.objects.select_for_update(of=("self",)).select_related("customer", "case").get(pk=pk)
            if follow_up.status != FollowUp.Status.SCHEDULED:
                continue
            customer = follow_up.customer
            channel = customer.reachable_channel()
            reason = _skip_reason(follow_up, channel, now)
            if reason:
                FollowUp.objects.filter(pk=pk).update(status=FollowUp.Status.SKIPPED, skip_reason=reason)
                if follow_up.case is not None:
                    follow_up_skipped_event(case=follow_up.case, reason=reason)
                    _close(follow_up.case, Case.Status.UNCONFIRMED, now, reason)
                continue
            delivery = delivery_create(customer=customer, kind=Delivery.Kind.FOLLOW_UP, channel=channel, actor=SYSTEM)
            FollowUp.objects.filter(pk=pk).update(
                status=FollowUp.Status.SENT,
                sent_at=now,
                delivery=delivery,
                expires_at=now + settings.SURVEY_LINK_VALIDITY,
            )
            if follow_up.case is not None:
                follow_up_sent_event(case=follow_up.case, channel=channel, delivery=delivery)
            sent += 1
    return sent


def _csat(value: int | str | None) -> int | None:
    """The satisfaction as given: a number, or the form's text ("" for none)."""
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
        try:
            return int(value)
        except ValueError:
            raise ValidationError({"csat": _("Choose from 1 to 5.")}) from None
    return value


def survey_answer(*, token: str, solved: bool | None, csat: int | str | None = None, comment: str = "") -> FollowUp:
    """Record the customer's answer, once. Not solved reopens the case, high priority.

    `csat` may be the form's text: anything but a number from 1 to 5 is a field error,
    never silently dropped."""
    errors = {}
    if solved is None:
        errors["solved"] = _("Tell us whether your problem was solved.")
    try:
        csat = _csat(csat)
    except ValidationError as error:
        errors.update({field: messages[0] for field, messages in error.message_dict.items()})
        csat = None
    else:
        if csat is not None and not 1 <= csat <= 5:
            errors["csat"] = _("Choose from 1 to 5.")
    if len(comment) > 2000:
        errors["comment"] = _("Keep it under 2,000 characters.")
    if errors:
        raise ValidationError(errors)
    follow_up = follow_up_from_token(token)
    now = timezone.now()
    with transaction.atomic():
        answered = FollowUp.objects.filter(
            pk=follow_up.pk, status=FollowUp.Status.SENT, answered_at__isnull=True, expires_at__gt=now
        ).update(status=FollowUp.Status.ANSWERED, answered_at=now, solved=solved, csat=csat, comment=comment)
        if not answered:
            follow_up.refresh_from_db()
            if follow_up.answered_at is not None:
                raise ApplicationError(
                    "already_answered", _("You have answered this survey already. Thank you!"), status=409
                )
            raise ApplicationError("expired", _("This survey link has expired."), status=410)
        # Only the request that won the update above gets here: the outcomes once too.
        outcomes_answer_record(follow_up_id=follow_up.pk, solved=solved, csat=csat, answered_at=now)
        follow_up.refresh_from_db(fields=["solved", "csat", "answered_at"])
        if follow_up.case_id is None:
            case = None if solved else _not_solved_case_open(follow_up, csat=csat, comment=comment, now=now)
            follow_up_webhook_emit(follow_up=follow_up, case=case)
        else:
            case = Case.objects.select_for_update(of=("self",)).get(pk=follow_up.case_id)
            survey_answered_event(case=case, solved=solved, csat=csat, comment=comment)
            follow_up_webhook_emit(follow_up=follow_up, case=case)
            if solved:
                Case.objects.filter(pk=case.pk, status__in=[Case.Status.RESOLVED, Case.Status.UNCONFIRMED]).update(
                    status=Case.Status.CONFIRMED, closed_at=now
                )
                case_closed_event(case=case, status=Case.Status.CONFIRMED)
            else:
                _reopen(case, now)
    follow_up.refresh_from_db()
    return follow_up


def _not_solved_case_open(follow_up: FollowUp, *, csat: int | None, comment: str, now) -> Case:
    """ "Not solved" about an appeasement given outside a case: a case for the customer,
    through the feedback intake like any feedback (it joins their open case of that
    incident type if they have one), at high priority or above, its timeline linking the
    appeasement and the customer's words."""
    issuance = follow_up.issuance
    customer = follow_up.customer
    text = comment.strip()
    if not text and csat is None:
        # The intake wants words or a rating; these are the customer's, in their language.
        with translation.override(customer.language or settings.LANGUAGE_CODE):
            text = _("Not solved after: %(offer)s") % {"offer": issuance.offer.name}
    feedback = feedback_submit(
        actor=SYSTEM,
        source=Case.Source.SURVEY,
        customer=customer,
        rating=csat,
        text=text,
        incident_type=issuance.reason_code.incident_type,
        channel=issuance.channel,
        language=customer.language,
        force_case=True,
    )
    case = Case.objects.select_for_update(of=("self",)).get(pk=feedback.case_id)
    survey_answered_event(case=case, solved=False, csat=csat, comment=comment, issuance=issuance)
    _raise_to_high(case, now, fresh=False)
    case.save()
    return case


def _raise_to_high(case: Case, now, *, fresh: bool) -> None:
    """ "Not solved": at least high priority, the score raised to match (the reason worded
    as "the customer said it was not solved"). `fresh`: the round starts now (a reopened
    case), so its targets are counted from now; otherwise they only tighten."""
    high = PriorityLevel.objects.filter(priority=Priority.HIGH).first()
    critical = PriorityLevel.objects.filter(priority=Priority.CRITICAL).first()
    level = high or critical
    points = max(case.priority_score, (level.min_score + 10) if level else case.priority_score)
    if critical and points >= critical.min_score:
        level = critical
    bump = min(100, points) - case.priority_score
    case.priority_score += bump
    case.score_reasons = [
        *case.score_reasons,
        {"factor": "reopened", "points": bump, "params": {}},  # worded when shown (score_reason_text)
    ]
    if fresh:
        first_due, resolution_due = due_times(level, now) if level else (None, None)
        case.priority = level.priority if level else Priority.HIGH
        case.first_response_due_at = first_due
        case.resolution_due_at = resolution_due
    elif rises(case.priority, level):
        case.priority = level.priority
        for field, value in tightened_targets(case, level).items():
            setattr(case, field, value)


def _reopen(case: Case, now) -> None:
    """Back into the queue, at least high priority, with fresh targets."""
    case.status = Case.Status.OPEN
    case.assigned_to = None
    case.claimed_at = None
    _raise_to_high(case, now, fresh=True)
    case.first_response_at = None
    case.first_response_breached_at = None
    case.resolution_breached_at = None
    case.resolved_at = None
    case.closed_at = None
    case.reopened_count += 1
    case.save()
    case_reopened_event(case=case)


def follow_ups_expire(*, now=None) -> int:
    """Follow-ups past their link's life without an answer: the case closes unconfirmed;
    an appeasement's outcome stays unanswered."""
    now = now or timezone.now()
    expired = 0
    for pk in list(
        FollowUp.objects.filter(status=FollowUp.Status.SENT, expires_at__lte=now).values_list("pk", flat=True)[:1000]
    ):
        with transaction.atomic():
            if FollowUp.objects.filter(pk=pk, status=FollowUp.Status.SENT).update(status=FollowUp.Status.EXPIRED):
                # Its outcomes stay unanswered (`solved` null): nothing to write on them.
                follow_up = FollowUp.objects.select_related("case").get(pk=pk)
                if follow_up.case is not None:
                    _close(follow_up.case, Case.Status.UNCONFIRMED, now, "no_answer")
                expired += 1
    return expired
