"""The weekly digest to supervisors: the anomaly flags and the top reasons (beat)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _

from appease.models import Issuance
from appease.roles import SUPERVISOR, role_emails
from reporting import selectors
from reporting.anomalies import anomalies


def supervisor_digest(*, now=None, period: timedelta = timedelta(days=7)) -> dict:
    now = now or timezone.now()
    since = now - period
    issuances = Issuance.objects.filter(created_at__gte=since, created_at__lt=now)
    currency = settings.DEFAULT_CURRENCY
    return {
        "since": since,
        "until": now,
        "flags": anomalies(since=since, until=now),
        "reasons": selectors.by_dimension(issuances, currency, "reason_code_id", "reason_code__label")[:5],
        "totals": selectors.totals(issuances, currency),
        "currency": currency,
        "public_url": settings.PUBLIC_URL,
    }


def supervisor_digest_send(*, now=None) -> int:
    recipients = role_emails(SUPERVISOR)
    if not recipients:
        return 0
    digest = supervisor_digest(now=now)
    send_mail(
        _("Appeasement this week: %(count)d given, %(flags)d flags")
        % {"count": digest["totals"]["count"], "flags": len(digest["flags"])},
        render_to_string("reporting/digest.txt", digest),
        settings.DEFAULT_FROM_EMAIL,
        recipients,
    )
    return len(recipients)
