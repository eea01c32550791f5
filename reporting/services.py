"""Keeping the rollups (reporting.models) up to date from the live tables.

A day of a rollup is always rewritten whole, in one transaction: its rows deleted, then
one INSERT … SELECT … GROUP BY over that day's live rows, with the very measures the
live reports use (reporting.facts). So a rewrite is safe to repeat and a reader sees
a day either before or after it, never half.

`rollups_refresh` (beat, every REPORTING_REFRESH_SECONDS) rewrites:
- the last REPORTING_RECENT_DAYS days (today's issuances, deliveries, cases…);
- any older day something changed since the last refresh, found through indexed
  timestamps: an approval or rejection (`decided_at`), a void (`voided_at`), a
  redemption or its reversal (the code's issuance day), a follow-up answered or a case
  closed (the case's day);
- the first time, and with `restate=True` (beat, nightly), every day of the last
  REPORTING_RESTATE_DAYS: whatever the timestamps above do not show (a delivery
  retried days later, an SLA breach on an old case) is right again by morning.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q, Value
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _

from appease.core.audit import audit_event_record
from appease.core.context import Actor
from appease.core.money import quantize
from appease.issuance.selectors import issuances_changed_since
from appease.webhooks.services import webhook_event_emit
from coupons.selectors import redemptions_changed_since
from feedback.selectors import cases_closed_since, follow_ups_answered_since
from reporting.anomalies import anomalies
from reporting.facts import (
    CASES,
    DELIVERIES,
    FEEDBACK,
    ISSUANCES,
    OUTCOMES,
    RECOVERY_COSTS,
    Family,
    Rollup,
    day_bounds,
    zone,
)
from reporting.filters import ReportFilter, currency_choices
from reporting.models import AnomalyScan, RecoverySettings, RollupState

logger = logging.getLogger(__name__)

# A change committed a little after the refresh read the clock can carry a timestamp
# from before it: look back this far past the last refresh.
OVERLAP = timedelta(minutes=5)
# Which families share their days: an issuance's day is also its deliveries' day; a
# case's day is also its follow-ups' and its recovery cost's.
GROUPS: dict[str, tuple[Family, ...]] = {
    "issuances": (ISSUANCES, DELIVERIES),
    "cases": (CASES, OUTCOMES, RECOVERY_COSTS),
    "feedback": (FEEDBACK,),
}


def _days(values: Iterable[datetime | None]) -> set[date]:
    tz = zone()
    return {value.astimezone(tz).date() for value in values if value is not None}


def _changed_days(since: datetime) -> dict[str, set[date]]:
    """Days of older rows that something changed since `since` (all indexed look-ups)."""
    issuances = issuances_changed_since(since)
    redemptions = redemptions_changed_since(since)
    follow_ups = follow_ups_answered_since(since)
    cases = cases_closed_since(since)
    return {
        "issuances": _days(issuances.values_list("created_at", flat=True).distinct())
        | _days(redemptions.values_list("code__issuance__created_at", flat=True).distinct()),
        "cases": _days(follow_ups.values_list("case__created_at", flat=True).distinct())
        | _days(cases.values_list("created_at", flat=True).distinct()),
        "feedback": set(),
    }


def _every_day(today: date, *, everything: bool) -> dict[str, set[date]]:
    """Each group's days with live rows, or rollup rows to clear, from REPORTING_RESTATE_DAYS
    ago (or from the start, `everything`) to today."""
    horizon = None if everything else today - timedelta(days=settings.REPORTING_RESTATE_DAYS)
    days: dict[str, set[date]] = {}
    for group, families in GROUPS.items():
        found: set[date] = set()
        for family in families:
            live = family.live()
            if horizon is not None:
                live = live.filter(**{f"{family.day_of}__gte": day_bounds(horizon, horizon)[0]})
            found |= set(live.order_by().values_list(TruncDate(family.day_of, tzinfo=zone()), flat=True).distinct())
            for rollup in family.rollups:
                kept = rollup.model.objects.order_by().values_list("day", flat=True).distinct()
                found |= set(kept if horizon is None else kept.filter(day__gte=horizon))
        days[group] = {day for day in found if day is not None and day <= today}
    return days


def _ranges(days: Iterable[date]) -> list[tuple[date, date]]:
    """Sorted days as runs of consecutive days: [(first, last), …]."""
    runs: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if runs and runs[-1][1] + timedelta(days=1) == day:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def rollup_rewrite(*, family: Family, rollup: Rollup, first: date, last: date) -> int:
    """Rewrite the rollup's days `first`…`last` from the live rows (in the caller's
    transaction). Returns the rows written."""
    since, until = day_bounds(first, last)
    live = family.live().filter(**{f"{family.day_of}__gte": since, f"{family.day_of}__lt": until}).order_by()
    if family.floor:
        live = live.filter(**{f"{family.floor}__gte": since})
    # Aliases of our own (`d_…`, `m_…`) so no name meets a field of the live model.
    grouped = live.values(
        d_day=TruncDate(family.day_of, tzinfo=zone()),
        **{f"d_{name}": expression for name, expression in rollup.dimensions.items()},
    ).annotate(
        # A sum over no matching rows is NULL; a rollup's measure is 0 then.
        **{
            f"m_{name}": Coalesce(measure(Q()), Value(0), output_field=rollup.model._meta.get_field(name))
            for name, measure in rollup.measures.items()
        }
    )
    sql, params = grouped.query.sql_with_params()
    columns = ["day", *rollup.dimensions, *rollup.measures]
    aliases = ["d_day", *(f"d_{name}" for name in rollup.dimensions), *(f"m_{name}" for name in rollup.measures)]
    quote = connection.ops.quote_name
    model = rollup.model
    model.objects.filter(day__gte=first, day__lte=last).delete()
    # Table, column and alias names are ours, quoted by the backend; values are parameters.
    table, into = quote(model._meta.db_table), ", ".join(quote(column) for column in columns)
    insert = f"INSERT INTO {table} ({into}) SELECT {', '.join(map(quote, aliases))} FROM ({sql}) AS grouped"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(insert, params)
        return cursor.rowcount


def rollup_days_rewrite(*, group: str, days: Iterable[date]) -> int:
    """Rewrite these days of every rollup of the group (issuances, cases, feedback)."""
    written = 0
    for first, last in _ranges(days):
        for family in GROUPS[group]:
            for rollup in family.rollups:
                written += rollup_rewrite(family=family, rollup=rollup, first=first, last=last)
    return written


def rollups_refresh(*, now: datetime | None = None, restate: bool = False) -> RollupState | None:
    """Bring the rollups up to date (beat). None when another refresh holds the lock."""
    now = now or timezone.now()
    started = time.monotonic()
    RollupState.objects.get_or_create(pk=1)
    with transaction.atomic():
        state = RollupState.objects.select_for_update(skip_locked=True).filter(pk=1).first()
        if state is None:
            logger.info("rollups: another refresh is running")
            return None
        if connection.vendor == "postgresql":
            # Measured on a year of history (bench/reporting): a few days' GROUP BY is
            # costed just over jit_above_cost, and compiling it took 150 of its 180 ms;
            # and INSERT … SELECT plans without parallel workers, where the default
            # random_page_cost (4, for spinning disks) makes 7,000 index probes of the
            # code table look dearer than reading all of it (600 ms against 140 ms).
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")
                cursor.execute("SET LOCAL random_page_cost = 1.1")  # SSD or memory, as everywhere now
        today = now.astimezone(zone()).date()
        recent = {today - timedelta(days=n) for n in range(settings.REPORTING_RECENT_DAYS)}
        if restate or state.refreshed_at is None:
            days = _every_day(today, everything=state.refreshed_at is None)
            days = {group: group_days | recent for group, group_days in days.items()}
        else:
            changed = _changed_days(state.refreshed_at - OVERLAP)
            days = {group: recent | changed[group] for group in GROUPS}
        written = sum(rollup_days_rewrite(group=group, days=group_days) for group, group_days in days.items())
        state.refreshed_at = now
        if restate or state.restated_at is None:
            state.restated_at = now
        state.days_rewritten = max(len(group_days) for group_days in days.values())
        state.seconds = time.monotonic() - started
        state.save()
    logger.info(
        "rollups: %d days rewritten (%d rows) in %.2f s%s",
        state.days_rewritten,
        written,
        state.seconds,
        " (restated)" if restate else "",
    )
    return state


def anomaly_scans_run(*, now: datetime | None = None) -> int:
    """Compute the anomaly flags of each standard window (REPORTING_ANOMALY_WINDOWS, the
    last N days up to today) and keep them for the anomalies page (beat). Returns the
    number of flags kept."""

    now = now or timezone.now()
    today = now.astimezone(zone()).date()
    kept = 0
    for days in settings.REPORTING_ANOMALY_WINDOWS:
        first = today - timedelta(days=days - 1)
        started = time.monotonic()
        flags = anomalies(ReportFilter({"date_from": first.isoformat(), "date_to": today.isoformat()}))
        # The scan and the events of its new flags commit together: a flag is told once.
        with transaction.atomic():
            previous = (
                AnomalyScan.objects.select_for_update().filter(days=days).values_list("flags", flat=True).first() or []
            )
            _flagged_webhooks_emit(flags, previous=previous, days=days, first=first, today=today)
            AnomalyScan.objects.update_or_create(
                days=days,
                defaults={
                    "date_from": first,
                    "date_to": today,
                    "computed_at": now,
                    "seconds": time.monotonic() - started,
                    "flags": [flag.as_dict() for flag in flags],
                },
            )
        kept += len(flags)
        logger.info("anomalies: %d flags in the last %d days (%.1f s)", len(flags), days, time.monotonic() - started)
    return kept


def _flagged_webhooks_emit(flags, *, previous: list[dict], days: int, first: date, today: date) -> None:
    """`anomaly.flagged` for each flag this window's last scan did not have (a flag that
    stays raised scan after scan is told once). The subject by kind and id only: never
    a rep's or a customer's name."""
    seen = {(flag.get("kind"), flag.get("subject_id")) for flag in previous}
    for flag in flags:
        if (flag.kind, flag.subject_id) in seen:
            continue
        webhook_event_emit(
            type="anomaly.flagged",
            data={
                "kind": flag.kind,
                "subject_id": flag.subject_id,
                "value": flag.value,
                "baseline": flag.baseline,
                "score": flag.score,
                "window_days": days,
                "date_from": first.isoformat(),
                "date_to": today.isoformat(),
            },
        )


def _recovery_settings_snapshot(saved: RecoverySettings) -> dict:
    return {
        "margin_percent": str(saved.margin_percent),
        "horizon_days": saved.horizon_days,
        "order_value_overrides": dict(saved.order_value_overrides or {}),
    }


@transaction.atomic(durable=True)
def recovery_settings_update(
    *,
    actor: Actor,
    margin_percent: Decimal,
    horizon_days: int,
    currency: str,
    order_value: Decimal | None,
) -> RecoverySettings:
    """Save the organisation's recovery assumptions: the margin, the horizon, and the
    average order value to use in `currency` instead of the measured one (None: the
    measured one again). Audited with the values before and after."""
    if currency not in {code for code, _label in currency_choices()}:
        raise ValidationError({"currency": _("Choose a currency in use.")})
    RecoverySettings.objects.get_or_create(pk=1)
    # Locked: the overrides of other currencies are read and written back.
    saved = RecoverySettings.objects.select_for_update().get(pk=1)
    before = _recovery_settings_snapshot(saved)
    overrides = dict(saved.order_value_overrides or {})
    if order_value is None:
        overrides.pop(currency, None)
    else:
        overrides[currency] = str(quantize(order_value, currency))
    saved.margin_percent = Decimal(margin_percent).quantize(Decimal("0.01"))
    saved.horizon_days = horizon_days
    saved.order_value_overrides = overrides
    saved.updated_at = timezone.now()
    saved.updated_by = actor.user
    saved.save()
    audit_event_record(
        actor=actor,
        action="recovery_settings.update",
        obj=saved,
        before=before,
        after=_recovery_settings_snapshot(saved),
    )
    return saved
