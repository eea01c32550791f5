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
