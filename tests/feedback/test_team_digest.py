"""Each owning team gets its top issues by email, so the cause gets fixed."""

from __future__ import annotations

import pytest
from django.core import mail

from feedback.models import IncidentProfile, OwnerTeam
from feedback.services.digest import team_digests_send
from tests.factories import customer_create
from tests.feedback.conftest import open_case

pytestmark = pytest.mark.django_db


def test_each_team_gets_its_own_incidents_worst_first():
    logistics = OwnerTeam.objects.get(name="Logistics")
    logistics.digest_emails = "ops@example.com\nwarehouse@example.com"
    logistics.save()
    assert IncidentProfile.objects.get(incident_type="late_delivery").owner_team == logistics
    for i in range(3):
        open_case(customer=customer_create(), incident_type="late_delivery", text=f"Parcel {i} is late")
    open_case(customer=customer_create(), incident_type="damaged_item", text="Box crushed")
    open_case(customer=customer_create(), incident_type="overcharge", text="Charged twice")  # Billing: no recipients

    sent = team_digests_send()

    assert sent == 1
    (message,) = mail.outbox
    assert message.to == ["ops@example.com", "warehouse@example.com"]
    assert "4 customer incidents" in message.subject
    body = message.body
    assert body.index("Late delivery: 3 cases") < body.index("Damaged item: 1 case")
    assert "Charged twice" not in body
    assert "/csr/cases/" in body


def test_no_incidents_no_email():
    team = OwnerTeam.objects.get(name="Product")
    team.digest_emails = "product@example.com"
    team.save()

    assert team_digests_send() == 0
    assert mail.outbox == []
