"""Login throttling, two-factor for the admin, and the security headers."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.factories import staff_user

pytestmark = pytest.mark.django_db


def log_in(client, username, password, url="/accounts/login/"):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR="10.0.0.7")


def test_five_wrong_passwords_lock_the_account_from_that_address(client, settings):
    settings.AXES_FAILURE_LIMIT = 5
    staff_user(username="ana")

    statuses = [log_in(client, "ana", "wrong").status_code for _ in range(5)]
    locked = log_in(client, "ana", "pw")  # even the right password, now

    assert statuses[:4] == [200, 200, 200, 200]  # the form again, with an error
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session
    # another address is not locked out
    assert (
        client.post("/accounts/login/", {"username": "ana", "password": "pw"}, REMOTE_ADDR="10.0.0.8").status_code
        == 302
    )


def test_a_successful_login_resets_the_count(client, settings):
    settings.AXES_FAILURE_LIMIT = 3
    staff_user(username="bea")

    log_in(client, "bea", "wrong")
    log_in(client, "bea", "wrong")
    assert log_in(client, "bea", "pw").status_code == 302
    client.logout()
    log_in(client, "bea", "wrong")
    log_in(client, "bea", "wrong")

    assert log_in(client, "bea", "pw").status_code == 302


@pytest.fixture
def two_factor(settings):
    settings.APPEASE_SUPERVISOR_2FA = True


def test_with_two_factor_the_admin_needs_a_one_time_password(client, two_factor):
    boss = staff_user("Supervisor", username="boss")
    device = TOTPDevice.objects.create(user=boss, name="phone", confirmed=True)

    # a password alone is not enough
    client.force_login(boss)
    assert client.get("/admin/").status_code == 302
    assert client.get("/admin/reports/").status_code == 302

    # the password and the code from the authenticator app are
    client.logout()
    token = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits)
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": "boss", "password": "pw", "otp_device": device.persistent_id, "otp_token": f"{token:06d}"},
    )
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/reports/").status_code == 200


def test_a_wrong_or_missing_code_keeps_a_supervisor_out(client, two_factor):
    # given a supervisor with a confirmed authenticator
    boss = staff_user("Supervisor", username="boss4")
    device = TOTPDevice.objects.create(user=boss, name="phone", confirmed=True)
    right = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits)

    # when they log in to the admin with the password and a wrong code, or none
    wrong = client.post(
        "/admin/login/?next=/admin/",
        {
            "username": "boss4",
            "password": "pw",
            "otp_device": device.persistent_id,
            "otp_token": f"{(right + 1) % 10**6:06d}",
        },
    )
    missing = client.post("/admin/login/?next=/admin/", {"username": "boss4", "password": "pw"})

    # then the login form comes back and the admin stays closed
    assert wrong.status_code == 200 and missing.status_code == 200
    assert client.get("/admin/").status_code == 302


def test_a_supervisor_without_an_authenticator_cannot_enter_the_admin(client, two_factor):
    # given two-factor on and a supervisor who has not enrolled a device
    staff_user("Supervisor", username="boss5")

    # when they log in with the right password only
    response = client.post("/admin/login/?next=/admin/", {"username": "boss5", "password": "pw"})

    # then they are not let in (they enrol first at /accounts/two-factor/)
    assert response.status_code == 200
    assert client.get("/admin/").status_code == 302


def test_the_setting_is_read_from_the_environment():
    # given the environment of a production machine with two-factor on
    from tests.appease.test_settings import PROD, run_django

    code = (
        "from django.conf import settings; from django.contrib import admin; "
        "print(settings.APPEASE_SUPERVISOR_2FA, admin.site.__class__.__name__, admin.site.login_form.__name__)"
    )
    # when Django starts
    on = run_django(code, **PROD, APPEASE_SUPERVISOR_2FA="1")
    former_name = run_django(code, **PROD, ADMIN_REQUIRE_2FA="1")
    off = run_django(code.replace(", admin.site.login_form.__name__", ""), **PROD)

    # then the admin asks for the code only when it is on (off by default)
    assert on.stdout.split() == ["True", "TwoFactorAdminSite", "OTPAdminAuthenticationForm"], on.stderr
    assert former_name.stdout.split()[0] == "True", former_name.stderr
    assert off.stdout.split() == ["False", "TwoFactorAdminSite"], off.stderr


def test_without_two_factor_the_password_is_enough(client):
    client.force_login(staff_user("Supervisor"))

    assert client.get("/admin/").status_code == 200


def test_pages_carry_the_security_headers(client):
    response = client.get("/accounts/login/")

    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_the_reports_give_their_inline_plotly_scripts_the_nonce(client):
    client.force_login(staff_user("Supervisor"))

    response = client.get("/admin/reports/")

    nonce = response["Content-Security-Policy"].split("'nonce-")[1].split("'")[0]
    body = response.content.decode()
    assert body.count(f'<script nonce="{nonce}"') >= 6
    assert "<script>" not in body and '<script type="text/javascript">' not in body
    assert User.objects.count() == 1


def test_each_member_of_staff_enrols_their_own_authenticator(client):
    boss = staff_user("Supervisor", username="boss2")
    client.force_login(boss)

    page = client.get("/accounts/two-factor/")
    device = TOTPDevice.objects.get(user=boss)
    assert page.status_code == 200 and not device.confirmed
    import base64

    assert base64.b32encode(device.bin_key).decode() in page.content.decode()

    wrong = client.post("/accounts/two-factor/", {"token": "000000" if totp(device.bin_key) != 0 else "111111"})
    assert wrong.status_code == 200 and "token" in wrong.context["form"].errors
    device.refresh_from_db()
    assert not device.confirmed
    assert device.throttling_failure_count == 1  # django-otp slows down guessing after a wrong code
    device.throttle_reset()  # what waiting a few seconds would do

    token = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits)
    right = client.post("/accounts/two-factor/", {"token": f"{token:06d}"})
    assert right.status_code == 302
    device.refresh_from_db()
    assert device.confirmed
    assert "two-factor-on" in client.get("/accounts/two-factor/").content.decode()


def test_the_admin_never_shows_anyones_totp_secret(client):
    admin_user = User.objects.create_superuser("root", "root@example.com", "pw")
    boss = staff_user("Supervisor", username="boss3")
    device = TOTPDevice.objects.create(user=boss, name="phone", confirmed=True)
    client.force_login(admin_user)

    page = client.get(f"/admin/otp_totp/totpdevice/{device.pk}/change/").content.decode()

    assert device.key not in page


def test_a_supervisor_cannot_raise_their_own_limits(client):
    from appease.issuance.models import LimitPolicy, StaffProfile
    from tests.factories import policy_create

    own = policy_create(day_cost_amount=100)
    other = policy_create(day_cost_amount=50)
    boss = staff_user("Supervisor", username="boss4", policy=own)
    rep = staff_user(username="rep4", policy=other)
    client.force_login(boss)

    assert client.get(f"/admin/appease/limitpolicy/{own.pk}/change/").context["has_change_permission"] is False
    refused = client.post(f"/admin/appease/limitpolicy/{own.pk}/change/", {"name": "mine, bigger"})
    assert refused.status_code == 403
    assert LimitPolicy.objects.get(pk=own.pk).name == own.name
    own_profile = StaffProfile.objects.get(user=boss)
    assert client.post(f"/admin/appease/staffprofile/{own_profile.pk}/change/", {"user": boss.pk}).status_code == 403
    # someone else's limits, as before
    assert client.get(f"/admin/appease/limitpolicy/{other.pk}/change/").context["has_change_permission"] is True
    assert StaffProfile.objects.get(user=rep).policy == other


# --- Behind the proxy: per (username, the real client address) ---------------------------

PROXY = "10.0.0.1"  # every request reaches Django from the proxy's address


def via_proxy(path, username, password, client_address):
    """A login as the proxy forwards it: it appends the client's address to
    X-Forwarded-For (whatever the client wrote there itself comes first)."""

    return Client().post(
        path,
        {"username": username, "password": password},
        REMOTE_ADDR=PROXY,
        HTTP_X_FORWARDED_FOR=client_address,
    )


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_behind_the_proxy_a_stranger_cannot_lock_a_user_out(settings, path):
    from axes.models import AccessAttempt

    # given: one proxy in front (NUM_PROXIES=1), a supervisor, and a stranger guessing
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    settings.AXES_FAILURE_LIMIT = 5
    staff_user("Supervisor", username="boss")
    stranger = "198.51.100.66"

    # when: the stranger tries six wrong passwords, writing a made-up address first
    tries = [via_proxy(path, "boss", "wrong", f"192.0.2.{i}, {stranger}").status_code for i in range(6)]

    # then: the stranger's own address is locked out, even with the right password ...
    assert tries[:4] == [200] * 4 and tries[5] == 429
    assert via_proxy(path, "boss", "pw", stranger).status_code == 429
    # ... and the supervisor, from their own address behind the same proxy, gets in
    assert via_proxy(path, "boss", "pw", "203.0.113.7").status_code == 302
    # the attempts are recorded under the stranger's real address, not the proxy's
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {stranger}


def test_without_a_proxy_the_forwarded_header_is_not_believed(settings):
    from axes.models import AccessAttempt

    # given: no proxy (NUM_PROXIES=0): X-Forwarded-For is whatever the client wrote
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 0}
    settings.AXES_FAILURE_LIMIT = 3
    staff_user(username="cleo")
    client = Client()

    # when: a client rotates the header on every try
    for i in range(3):
        client.post(
            "/accounts/login/",
            {"username": "cleo", "password": "wrong"},
            REMOTE_ADDR="10.0.0.9",
            HTTP_X_FORWARDED_FOR=f"192.0.2.{i}",
        )

    # then: it is counted, and locked, by its connection's address
    assert (
        client.post("/accounts/login/", {"username": "cleo", "password": "pw"}, REMOTE_ADDR="10.0.0.9").status_code
        == 429
    )
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"10.0.0.9"}


def test_a_forwarded_address_that_is_no_address_is_not_a_500(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    staff_user(username="dina")

    response = via_proxy("/accounts/login/", "dina", "wrong", "not-an-address")

    assert response.status_code == 200  # the form again; counted under the proxy's address
