"""A staff profile's time zone is a real zone name, refused at the field otherwise."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from appease.issuance.models import StaffProfile
from tests.factories import staff_user

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "Europe/madrid", "GMT+3", "../../etc/passwd"])
def test_a_time_zone_that_does_not_exist_is_a_field_error(name):
    # given a profile with a zone the tz database does not know
    profile = StaffProfile.objects.get(user=staff_user())
    profile.time_zone = name

    # when it is validated
    with pytest.raises(ValidationError) as error:
        profile.full_clean()

    # then the error is on the time zone field, and says so
    assert list(error.value.message_dict) == ["time_zone"]
    assert "is not a time zone name" in error.value.message_dict["time_zone"][0]


@pytest.mark.parametrize("name", ["Europe/Madrid", "America/Sao_Paulo", "UTC", ""])
def test_real_zones_and_none_are_fine(name):
    # given a profile with a real zone, or none (the server's)
    profile = StaffProfile.objects.get(user=staff_user())
    profile.time_zone = name

    # when / then it validates
    profile.full_clean()


def test_the_error_is_in_the_readers_language():
    # given a wrong zone
    profile = StaffProfile.objects.get(user=staff_user())
    profile.time_zone = "Madrid"

    # when a Spanish supervisor saves it and reads why not
    with translation.override("es"):
        with pytest.raises(ValidationError) as error:
            profile.full_clean()
        message = error.value.message_dict["time_zone"][0]

    # then the message is Spanish
    assert "no es el nombre de una zona horaria" in message


def test_the_admin_shows_the_error_next_to_the_field(client):
    # given a supervisor editing a rep's profile
    boss = staff_user("Supervisor")
    boss.is_superuser = True
    boss.save()
    profile = StaffProfile.objects.get(user=staff_user())
    client.force_login(boss)

    # when a made-up zone is saved
    response = client.post(
        f"/admin/appease/staffprofile/{profile.pk}/change/",
        {"user": profile.user_id, "team": "", "policy": "", "language": "", "time_zone": "Europe/Atlantis"},
    )

    # then the form comes back with the field's error and nothing is saved
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["time_zone"]
    profile.refresh_from_db()
    assert profile.time_zone == ""
