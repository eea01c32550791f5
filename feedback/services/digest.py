"""The owning teams' digest: their top issues, so the cause gets fixed, not only the
customer. Sent by beat (weekly by default) to each team's recipients."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db.models import Count, Q
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _

from appease.core.readers import readers_by_locale, reading_as
from feedback.models import Case, OwnerTeam


def team_digest(team: OwnerTeam, *, since, until) -> dict:
    """Counts per incident type for the team's cases in [since, until), worst first."""
    cases = Case.objects.filter(owner_team=team, created_at__gte=since, created_at__lt=until)
    rows = list(
        cases.values("incident_type")
        .annotate(
            total=Count("pk"),
            critical=Count("pk", filter=Q(priority="critical")),
            reopened=Count("pk", filter=Q(reopened_count__gt=0)),
            still_open=Count("pk", filter=Q(status__in=Case.OPEN_STATUSES)),
        )
        .order_by("-total", "incident_type")
    )
    labels = dict(Case._meta.get_field("incident_type").choices)
    for row in rows:
        row["label"] = labels.get(row["incident_type"], row["incident_type"])  # lazy: worded when read
    for row in rows[:5]:  # the worst ones, with their highest-priority cases as examples
        row["examples"] = list(
            cases.filter(incident_type=row["incident_type"]).order_by("-priority_score").values("pk", "subject")[:3]
        )
    return {"team": team, "since": since, "until": until, "rows": rows, "total": sum(row["total"] for row in rows)}


def team_digests_send(*, now=None, period: timedelta = timedelta(days=7)) -> int:
    now = now or timezone.now()
    sent = 0
    for team in OwnerTeam.objects.filter(is_active=True).exclude(digest_emails=""):
        digest = team_digest(team, since=now - period, until=now)
        if not digest["total"] or not team.recipients:
            continue
        # One message per language and time zone of the recipients, each in its own.
        for (language, time_zone), emails in readers_by_locale(team.recipients).items():
            with reading_as(language, time_zone):
                body = render_to_string("feedback/team_digest.txt", {**digest, "public_url": settings.PUBLIC_URL})
                send_mail(
                    _("%(team)s: %(count)d customer incidents this week")
                    % {"team": team.name, "count": digest["total"]},
                    body,
                    settings.DEFAULT_FROM_EMAIL,
                    emails,
                )
        sent += 1
    return sent
