"""The weekly digest reaches every supervisor with the week's figures and flags."""

from __future__ import annotations

import pytest
from django.core import mail

from reporting.digest import supervisor_digest_send
from tests.factories import staff_user
from tests.reporting.test_reports import history  # noqa: F401  (the fixture)

pytestmark = pytest.mark.django_db


def test_the_weekly_digest_goes_to_supervisors_with_the_top_reasons(history):  # noqa: F811
    boss = staff_user("Supervisor")
    staff_user("CSR")

    sent = supervisor_digest_send()

    assert sent == 1
    (message,) = mail.outbox
    assert message.to == [boss.email]
    assert "7 given" in message.subject
    body = message.body
    assert f"{history['late'].label}: 4" in body and f"{history['rude'].label}: 3" in body
    assert "$75.00 face value" in body
    assert "/admin/reports/" in body


def test_no_supervisors_no_digest(db):
    assert supervisor_digest_send() == 0
    assert mail.outbox == []


def _supervisor(language: str, time_zone: str):
    from appease.issuance.models import StaffProfile

    user = staff_user("Supervisor")
    StaffProfile.objects.filter(user=user).update(language=language, time_zone=time_zone)
    return user


def test_each_supervisor_reads_the_digest_in_their_language_and_time_zone(history):  # noqa: F811
    # given a Spanish supervisor in Madrid, a Brazilian one in São Paulo, an English one
    from zoneinfo import ZoneInfo

    from django.utils import timezone

    madrid = _supervisor("es", "Europe/Madrid")
    sao_paulo = _supervisor("pt-br", "America/Sao_Paulo")
    english = _supervisor("", "")
    now = timezone.now()
    madrid_time = now.astimezone(ZoneInfo("Europe/Madrid")).strftime("%H:%M")
    sao_paulo_time = now.astimezone(ZoneInfo("America/Sao_Paulo")).strftime("%H:%M")

    # when the weekly digest goes out
    sent = supervisor_digest_send(now=now)

    # then each gets one message in their language, with their local time
    assert sent == 3
    by_reader = {tuple(message.to): message for message in mail.outbox}
    spanish, portuguese, plain = by_reader[(madrid.email,)], by_reader[(sao_paulo.email,)], by_reader[(english.email,)]
    assert spanish.subject.startswith("Compensaciones esta semana")
    assert "Motivos principales" in spanish.body and madrid_time in spanish.body
    assert "Principais motivos" in portuguese.body and sao_paulo_time in portuguese.body
    assert "Top reasons" in plain.body and "Top reasons" not in spanish.body + portuguese.body
