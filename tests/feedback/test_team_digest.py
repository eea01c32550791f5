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


def test_a_team_digest_reaches_each_reader_in_their_language_and_time_zone():
    # given a team mailing a Spanish rep in Madrid, a Brazilian one in São Paulo and a list
    from zoneinfo import ZoneInfo

    from django.utils import timezone

    from appease.issuance.models import StaffProfile
    from tests.factories import staff_user

    madrid, sao_paulo = staff_user(), staff_user()
    StaffProfile.objects.filter(user=madrid).update(language="es", time_zone="Europe/Madrid")
    StaffProfile.objects.filter(user=sao_paulo).update(language="pt-br", time_zone="America/Sao_Paulo")
    logistics = OwnerTeam.objects.get(name="Logistics")
    logistics.digest_emails = f"{madrid.email}\n{sao_paulo.email}\nops@example.com"
    logistics.save()
    open_case(customer=customer_create(), incident_type="late_delivery", text="Parcel is late")

    now = timezone.now()
    madrid_time = now.astimezone(ZoneInfo("Europe/Madrid")).strftime("%H:%M")
    sao_paulo_time = now.astimezone(ZoneInfo("America/Sao_Paulo")).strftime("%H:%M")

    # when the digests go out
    sent = team_digests_send(now=now)

    # then one team, three messages: Spanish at Madrid time, Portuguese at São Paulo time
    assert sent == 1
    by_reader = {tuple(message.to): message for message in mail.outbox}
    spanish, portuguese = by_reader[(madrid.email,)], by_reader[(sao_paulo.email,)]
    assert "Entrega tardía: 1 caso" in spanish.body and madrid_time in spanish.body
    assert "incidencias" in spanish.subject
    assert "Entrega atrasada: 1 caso" in portuguese.body and sao_paulo_time in portuguese.body
    assert "Late delivery: 1 case" in by_reader[("ops@example.com",)].body
