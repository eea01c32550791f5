"""The weekly digest to supervisors: the anomaly flags and the top reasons (beat)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _

from appease.core.readers import readers_by_locale, reading_as
from appease.core.roles import SUPERVISOR, role_emails
from reporting import selectors
from reporting.anomalies import anomalies
from reporting.facts import zone
from reporting.filters import ReportFilter


def supervisor_digest(*, now=None, period: timedelta = timedelta(days=7)) -> dict:
    """The last `period`'s whole days (report zone) up to and including today, worded
    in the active language (labels and flags are worded when read)."""
    now = now or timezone.now()
    today = now.astimezone(zone()).date()
    first = today - timedelta(days=period.days - 1)
    filters = ReportFilter({"date_from": first.isoformat(), "date_to": today.isoformat()})
    currency = settings.DEFAULT_CURRENCY
    return {
        # Days of the report zone, as dates: the same days for every reader.
        "since": first,
        "until": today,
        "report_zone": str(zone()),
        "now": now,
        "flags": anomalies(filters),
        "reasons": selectors.by_dimension(filters, currency, "reason_code")[:5],
        "totals": selectors.totals(filters, currency),
        "currency": currency,
        "public_url": settings.PUBLIC_URL,
    }


def supervisor_digest_send(*, now=None) -> int:
    """One message per language and time zone of the supervisors, each in its own."""
    recipients = role_emails(SUPERVISOR)
    if not recipients:
        return 0
    # Computed once (its labels and flags are lazy), worded in each reader's language.
    digest = supervisor_digest(now=now)
    for (language, time_zone), emails in readers_by_locale(recipients).items():
        with reading_as(language, time_zone):
            send_mail(
                _("Appeasement this week: %(count)d given, %(flags)d flags")
                % {"count": digest["totals"]["count"], "flags": len(digest["flags"])},
                render_to_string("reporting/digest.txt", digest),
                settings.DEFAULT_FROM_EMAIL,
                emails,
            )
    return len(recipients)
