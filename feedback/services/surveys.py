"""Closing the loop: the follow-up after a resolved case and its one-question survey.

- `follow_up_schedule`: at resolution, a follow-up is due FOLLOW_UP_DELAY later,
  unless the customer was surveyed about another case within SURVEY_QUIET_PERIOD (then
  the case closes unconfirmed at once, and the timeline says why).
- `follow_ups_send` (beat): due follow-ups go to the delivery outbox, through the
  customer's preferred channel (or another they agreed to) in their language.
- The survey link carries a signed token (django.core.signing, salted) naming the
  follow-up; the row's `expires_at` and `answered_at` make it expiring and single-use.
- `survey_answer`: solved → the case closes, confirmed; not solved → it reopens at
  high priority. `follow_ups_expire` (beat) closes unanswered ones as unconfirmed.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from appease.core.context import SYSTEM
from appease.core.exceptions import ApplicationError
from appease.delivery.models import Delivery
from appease.delivery.services import delivery_create
from feedback.events import (
    case_closed_event,
    case_reopened_event,
    follow_up_scheduled_event,
    follow_up_sent_event,
    follow_up_skipped_event,
    survey_answered_event,
)
from feedback.models import Case, FollowUp, Priority, PriorityLevel
from feedback.services.sla import due_times
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
    follow_up = FollowUp.objects.select_related("case", "customer").filter(pk=follow_up_id).first()
    if follow_up is None:
        raise ApplicationError("bad_token", _("This survey link is not valid."), status=404)
    return follow_up


def _quiet(customer, now, *, case: Case) -> bool:
    """Was this customer surveyed (or is a survey on its way) within the quiet period,
    about something else? Follow-ups of the same case do not count: the quiet period is
    about not pestering a customer about different things, and a case that reopened
    because it was not solved must still close its loop."""
    recent = (
        FollowUp.objects.filter(customer=customer)
        .filter(Q(status=FollowUp.Status.SCHEDULED) | Q(sent_at__gte=now - settings.SURVEY_QUIET_PERIOD))
        .exclude(case=case)
    )
    return recent.exists()


def _close(case: Case, status: str, now, reason: str) -> None:
    Case.objects.filter(pk=case.pk, status=Case.Status.RESOLVED).update(status=status, closed_at=now)
    case_closed_event(case=case, status=status, reason=reason)


def follow_up_schedule(*, case: Case, now=None) -> FollowUp | None:
    """Plan the follow-up for a just-resolved case (in the caller's transaction)."""
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
    follow_up_scheduled_event(case=case, follow_up=follow_up)
    return follow_up


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
            reason = (
                "no_channel"
                if channel is None
                else "quiet_period"
                if _quiet(customer, now, case=follow_up.case)
                else ""
            )
            if reason:
                FollowUp.objects.filter(pk=pk).update(status=FollowUp.Status.SKIPPED, skip_reason=reason)
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
        case = Case.objects.select_for_update(of=("self",)).get(pk=follow_up.case_id)
        survey_answered_event(case=case, solved=solved, csat=csat, comment=comment)
        follow_up.refresh_from_db(fields=["solved", "csat", "answered_at"])
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


def _reopen(case: Case, now) -> None:
    """Back into the queue, at least high priority, with fresh targets."""
    high = PriorityLevel.objects.filter(priority=Priority.HIGH).first()
    critical = PriorityLevel.objects.filter(priority=Priority.CRITICAL).first()
    level = high or critical
    points = max(case.priority_score, (level.min_score + 10) if level else case.priority_score)
    if critical and points >= critical.min_score:
        level = critical
    first_due, resolution_due = due_times(level, now) if level else (None, None)
    case.status = Case.Status.OPEN
    case.assigned_to = None
    case.claimed_at = None
    case.priority = level.priority if level else Priority.HIGH
    bump = min(100, points) - case.priority_score
    case.priority_score += bump
    case.score_reasons = [
        *case.score_reasons,
        {"factor": "reopened", "points": bump, "params": {}},  # worded when shown (score_reason_text)
    ]
    case.first_response_at = None
    case.first_response_due_at = first_due
    case.resolution_due_at = resolution_due
    case.first_response_breached_at = None
    case.resolution_breached_at = None
    case.resolved_at = None
    case.closed_at = None
    case.reopened_count += 1
    case.save()
    case_reopened_event(case=case)


def follow_ups_expire(*, now=None) -> int:
    """Follow-ups past their link's life without an answer: the case closes unconfirmed."""
    now = now or timezone.now()
    expired = 0
    for pk in list(
        FollowUp.objects.filter(status=FollowUp.Status.SENT, expires_at__lte=now).values_list("pk", flat=True)[:1000]
    ):
        with transaction.atomic():
            if FollowUp.objects.filter(pk=pk, status=FollowUp.Status.SENT).update(status=FollowUp.Status.EXPIRED):
                follow_up = FollowUp.objects.select_related("case").get(pk=pk)
                _close(follow_up.case, Case.Status.UNCONFIRMED, now, "no_answer")
                expired += 1
    return expired
