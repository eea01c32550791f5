"""Service-level clocks: when a case must get its first response and its resolution,
and what happens when it does not.

Priority levels say whether their clock counts business hours only (FEEDBACK_*
settings: days, opening hours, time zone) or runs around the clock (critical: a first
response within 60 seconds, whenever the customer writes).
"""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from appease.core.roles import SUPERVISOR, role_emails
from feedback.events import case_sla_breached_event
from feedback.models import Case, CaseEvent, PriorityLevel

logger = logging.getLogger(__name__)


def _hours() -> tuple[time, time]:
    opens, closes = settings.FEEDBACK_BUSINESS_HOURS
    return time.fromisoformat(opens), time.fromisoformat(closes)


def add_business_seconds(start: datetime, seconds: int) -> datetime:
    """`start` plus `seconds` of business time (FEEDBACK_BUSINESS_DAYS, hours, zone).

    Outside business hours the clock waits for the next opening; the result is aware.
    """
    zone = ZoneInfo(settings.FEEDBACK_TIME_ZONE)
    opens, closes = _hours()
    days = set(settings.FEEDBACK_BUSINESS_DAYS)
    if not days or opens >= closes:
        return start + timedelta(seconds=seconds)
    current = start.astimezone(zone)
    remaining = timedelta(seconds=seconds)
    for _day in range(3660):  # ten years of days: a bound, never reached in practice
        day_open = datetime.combine(current.date(), opens, tzinfo=zone)
        day_close = datetime.combine(current.date(), closes, tzinfo=zone)
        if current.weekday() in days and current < day_close:
            begin = max(current, day_open)
            available = day_close - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
        next_day = current.date() + timedelta(days=1)
        current = datetime.combine(next_day, time(0), tzinfo=zone)
    raise ValueError("no business hours configured")


def due_times(level: PriorityLevel, start: datetime) -> tuple[datetime, datetime]:
    """(first response due, resolution due) for a case of `level` opened at `start`."""
    if level.business_hours_only:
        return (
            add_business_seconds(start, level.first_response_seconds),
            add_business_seconds(start, level.resolution_seconds),
        )
    return start + timedelta(seconds=level.first_response_seconds), start + timedelta(seconds=level.resolution_seconds)


# Priorities from the lowest; a case's priority only ever rises while it is open.
PRIORITY_RANK = {"low": 0, "normal": 1, "high": 2, "critical": 3}


def rises(current: str, level: PriorityLevel | None) -> bool:
    return level is not None and PRIORITY_RANK.get(level.priority, 0) > PRIORITY_RANK.get(current, 0)


def round_started_at(case: Case) -> datetime:
    """When the case's current round began: when it opened, or when it last reopened
    (its targets were counted afresh from then)."""
    if case.reopened_count:
        reopened = (
            CaseEvent.objects.filter(case=case, kind=CaseEvent.Kind.REOPENED)
            .order_by("-created_at")
            .values_list("created_at", flat=True)
            .first()
        )
        if reopened is not None:
            return reopened
    return case.created_at


def tightened_targets(case: Case, level: PriorityLevel) -> dict[str, datetime]:
    """The due times `level` gives the case, counted from the start of its round, for
    the targets not met yet, where they are earlier than the case's: a case whose
    priority rises gets the tighter targets, and a due time is never pushed later.
    Returns the fields to change (empty when none)."""
    first_due, resolution_due = due_times(level, round_started_at(case))
    changes = {}
    if case.first_response_at is None and (
        case.first_response_due_at is None or first_due < case.first_response_due_at
    ):
        changes["first_response_due_at"] = first_due
    if case.resolved_at is None and (case.resolution_due_at is None or resolution_due < case.resolution_due_at):
        changes["resolution_due_at"] = resolution_due
    return changes


# Each target: the field that meets it, its due time, the breach timestamp (this round)
# and the breach counter (every round).
TARGETS = {
    "first_response": (
        "first_response_at",
        "first_response_due_at",
        "first_response_breached_at",
        "first_response_breaches",
    ),
    "resolution": ("resolved_at", "resolution_due_at", "resolution_breached_at", "resolution_breaches"),
}


def _mark_breaches(target: str, now: datetime) -> list[int]:
    met, due, breached, count = TARGETS[target]
    late = Case.objects.filter(
        **{f"{met}__isnull": True, f"{breached}__isnull": True, f"{due}__lt": now},
        status__in=Case.OPEN_STATUSES,
    ).values_list("pk", flat=True)
    marked = []
    for pk in list(late):
        with transaction.atomic():
            # The timestamp is the guard and the counter moves in the same UPDATE: a breach
            # is counted once however many beat runs see it.
            if Case.objects.filter(
                pk=pk, status__in=Case.OPEN_STATUSES, **{f"{met}__isnull": True, f"{breached}__isnull": True}
            ).update(**{breached: now, "escalated_at": now, count: F(count) + 1}):
                case_sla_breached_event(case_id=pk, target=target)
                marked.append(pk)
    return marked


def sla_breaches_escalate(*, now: datetime | None = None) -> int:
    """Mark every case past a target, once, and tell the supervisors (beat, every 30 s).

    The conditional update on the breach timestamp decides: two beat runs never count
    or escalate the same breach twice.
    """
    now = now or timezone.now()
    breached = [(pk, target) for target in TARGETS for pk in _mark_breaches(target, now)]
    if breached:
        recipients = role_emails(SUPERVISOR)
        if recipients:
            lines = [
                f"#{pk}: {_('first response') if target == 'first_response' else _('resolution')}"
                f" — {settings.PUBLIC_URL}/csr/cases/{pk}/"
                for pk, target in breached
            ]
            send_mail(
                _("%(count)d cases missed their target") % {"count": len(breached)},
                _("These cases are past their service-level target:\n\n%(list)s") % {"list": "\n".join(lines)},
                settings.DEFAULT_FROM_EMAIL,
                recipients,
            )
        logger.warning("%d case target(s) missed", len(breached))
    return len(breached)
