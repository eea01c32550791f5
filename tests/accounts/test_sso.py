"""Single sign-on against a real OpenID Connect provider on 127.0.0.1 (oidc_provider.py):
the redirect, the code exchange, the signed ID token, user info, then the mapping rules."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.contrib.auth.models import Group, User

from appease.accounts.models import GroupMapping
from appease.core.models import AuditEvent
from appease.issuance.models import StaffProfile, Team
from tests.factories import staff_user

pytestmark = pytest.mark.django_db


def sso_login(client, provider, sub: str, **headers):
    """Start at Appease, choose `sub` on the provider's page, come back: the callback's
    response (not followed)."""
    start = client.get("/accounts/sso/start/", **headers)
    assert start.status_code == 302
    authorize = urlsplit(start["Location"])
    assert f"{authorize.scheme}://{authorize.netloc}" == provider.url
    query = {key: values[0] for key, values in parse_qs(authorize.query).items()}
    chosen = requests.post(f"{provider.url}/authorize", data={**query, "sub": sub}, allow_redirects=False, timeout=5)
    assert chosen.status_code == 302
    callback = urlsplit(chosen.headers["Location"])
    return client.get(f"{callback.path}?{callback.query}", **headers)


def person(provider, sub="ana@example.com", groups=("helpdesk",), **claims):
    provider.people[sub] = {
        "email": sub,
        "email_verified": True,
        "given_name": "Ana",
        "family_name": "Souza",
        "groups": list(groups),
        **claims,
    }
    return sub


@pytest.fixture
def mappings(db):
    north = Team.objects.create(name="North")
    south = Team.objects.create(name="South")
    GroupMapping.objects.create(idp_group="helpdesk", role=GroupMapping.Role.CSR, team=north)
    GroupMapping.objects.create(idp_group="helpdesk-leads", role=GroupMapping.Role.SUPERVISOR)
    GroupMapping.objects.create(idp_group="south-office", team=south)
    GroupMapping.objects.create(idp_group="all-staff-south", team=south)
    return north, south


def refusal(client, response) -> str:
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert "_auth_user_id" not in client.session
    page = client.get("/accounts/login/")
    return " ".join(str(message) for message in page.context["messages"])


def test_first_login_creates_the_person_with_the_mapped_role_and_team(client, sso, mappings):
    # given
    north, _south = mappings
    sub = person(sso, groups=["helpdesk", "unrelated"])
    # when
    response = sso_login(client, sso, sub)
    # then
    assert response.status_code == 302
    assert response["Location"] == "/csr/"
    user = User.objects.get(email="ana@example.com")
    assert int(client.session["_auth_user_id"]) == user.pk
    assert list(user.groups.values_list("name", flat=True)) == ["CSR"]
    assert (user.first_name, user.last_name, user.is_staff) == ("Ana", "Souza", False)
    assert not user.has_usable_password()
    assert StaffProfile.objects.get(user=user).team == north
    event = AuditEvent.objects.get(action="user.sso_create", object_id=str(user.pk))
    assert event.after["groups"] == ["CSR"] and event.after["team"] == "North"
    assert sso.token_requests == 1
    assert client.get("/csr/").status_code == 200


def test_each_login_applies_the_groups_as_they_are_now(client, sso, mappings):
    # given: a CSR in North, then promoted and moved at the provider
    _north, south = mappings
    sub = person(sso, groups=["helpdesk"])
    sso_login(client, sso, sub)
    client.logout()
    sso.people[sub]["groups"] = ["helpdesk-leads", "south-office"]
    # when
    response = sso_login(client, sso, sub)
    # then
    assert response.status_code == 302
    user = User.objects.get(email=sub)
    assert list(user.groups.values_list("name", flat=True)) == ["Supervisor"]
    assert user.is_staff
    assert StaffProfile.objects.get(user=user).team == south
    change = AuditEvent.objects.get(action="user.sso_change", object_id=str(user.pk))
    assert change.before["groups"] == ["CSR"] and change.after["groups"] == ["Supervisor"]
    assert (change.before["team"], change.after["team"]) == ("North", "South")
    # and a login that changes nothing writes nothing
    client.logout()
    sso_login(client, sso, sub)
    assert AuditEvent.objects.filter(object_id=str(user.pk), action__startswith="user.sso").count() == 2


def test_no_group_mapped_to_a_role_is_refused_with_a_reason(client, sso, mappings):
    # given: a team-only group is not enough
    sub = person(sso, groups=["south-office", "marketing"])
    # when
    response = sso_login(client, sso, sub)
    # then
    assert "no group that gives a role" in refusal(client, response)
    assert not User.objects.filter(email=sub).exists()


def test_losing_the_role_group_refuses_an_existing_person(client, sso, mappings):
    sub = person(sso, groups=["helpdesk"])
    sso_login(client, sso, sub)
    client.logout()
    sso.people[sub]["groups"] = []
    assert "no group that gives a role" in refusal(client, sso_login(client, sso, sub))
    assert list(User.objects.get(email=sub).groups.values_list("name", flat=True)) == ["CSR"]  # nothing written


def test_a_deactivated_account_is_refused(client, sso, mappings):
    # given
    user = staff_user("CSR")
    user.email = "ana@example.com"
    user.is_active = False
    user.save()
    sub = person(sso)
    # when / then
    assert "deactivated" in refusal(client, sso_login(client, sso, sub))
    user.refresh_from_db()
    assert not user.is_active


@pytest.mark.parametrize("verified", [False, "false", None])
def test_an_unverified_email_is_refused(client, sso, mappings, verified):
    sub = person(sso, email_verified=verified)
    if verified is None:
        del sso.people[sub]["email_verified"]
    assert "not verified your email" in refusal(client, sso_login(client, sso, sub))
    assert not User.objects.filter(email=sub).exists()


def test_a_provider_without_email_verified_may_be_trusted_by_setting(client, sso, mappings, settings):
    settings.OIDC_REQUIRE_EMAIL_VERIFIED = False
    sub = person(sso)
    del sso.people[sub]["email_verified"]
    assert sso_login(client, sso, sub)["Location"] == "/csr/"
    # but a claim that says "not verified" is refused all the same
    client.logout()
    sso.people[sub]["email_verified"] = False
    assert "not verified your email" in refusal(client, sso_login(client, sso, sub))


def test_an_id_token_for_another_client_is_refused(client, sso, mappings):
    sso.audience = "someone-else"
    sub = person(sso)
    assert "not meant for Appease" in refusal(client, sso_login(client, sso, sub))
    assert not User.objects.filter(email=sub).exists()


def test_an_existing_local_account_is_matched_by_email(client, sso, mappings):
    # given: a supervisor made before single sign-on
    user = staff_user("Supervisor", username="ana")
    user.email = "Ana@Example.com"
    user.save()
    sub = person(sso, groups=["helpdesk"])
    # when
    sso_login(client, sso, sub)
    # then: the same account, with the role the provider says now
    assert int(client.session["_auth_user_id"]) == user.pk
    user.refresh_from_db()
    assert list(user.groups.values_list("name", flat=True)) == ["CSR"]
    assert not user.is_staff
    assert User.objects.count() == 1


def test_the_refusal_is_in_the_readers_language(client, sso, mappings):
    sub = person(sso, groups=["marketing"])
    response = sso_login(client, sso, sub, HTTP_ACCEPT_LANGUAGE="es")
    page = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="es")
    assert response.status_code == 302
    text = " ".join(str(message) for message in page.context["messages"])
    assert "ningún grupo" in text


def test_a_cancelled_login_says_so(client, sso):
    start = client.get("/accounts/sso/start/")
    state = parse_qs(urlsplit(start["Location"]).query)["state"][0]
    response = client.get(f"/accounts/sso/callback/?error=access_denied&state={state}")
    assert "did not complete" in refusal(client, response)


def test_a_forged_callback_state_is_refused(client, sso, mappings):
    client.get("/accounts/sso/start/")
    response = client.get("/accounts/sso/callback/?code=made-up&state=made-up")
    assert response.status_code == 400
    assert "_auth_user_id" not in client.session


# --- Two-factor --------------------------------------------------------------------------


@pytest.mark.parametrize(("amr", "admin_allowed"), [(["pwd", "mfa"], True), (["hwk"], True), (["pwd"], False)])
def test_the_providers_second_factor_counts_for_the_admin(client, sso, mappings, settings, amr, admin_allowed):
    settings.APPEASE_SUPERVISOR_2FA = True
    sub = person(sso, groups=["helpdesk-leads"], amr=amr)
    sso_login(client, sso, sub)
    response = client.get("/admin/")
    assert (response.status_code == 200) is admin_allowed
    if not admin_allowed:
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


# --- Local login while single sign-on is on --------------------------------------------------


def test_with_sso_on_only_administrators_use_a_password(client, sso, settings):
    rep = staff_user("CSR", username="rep")
    admin = User.objects.create_superuser("root", "root@example.com", "pw")
    refused = client.post("/accounts/login/", {"username": "rep", "password": "pw"})
    assert refused.status_code == 200
    assert "Passwords here are for administrators only" in refused.content.decode()
    assert "_auth_user_id" not in client.session
    assert client.post("/accounts/login/", {"username": "root", "password": "pw"}).status_code == 302
    assert int(client.session["_auth_user_id"]) == admin.pk
    # the setting off: everyone may
    client.logout()
    settings.SSO_LOCAL_LOGIN_SUPERUSERS_ONLY = False
    assert client.post("/accounts/login/", {"username": "rep", "password": "pw"}).status_code == 302
    assert int(client.session["_auth_user_id"]) == rep.pk


def test_a_password_session_ends_when_passwords_become_administrators_only(client, sso, settings):
    staff_user("CSR", username="rep")
    settings.OIDC_ENABLED = False
    client.post("/accounts/login/", {"username": "rep", "password": "pw"})
    assert client.get("/csr/").status_code == 200
    settings.OIDC_ENABLED = True
    assert client.get("/csr/").status_code == 302


def test_the_login_page_offers_the_provider_only_when_enabled(client, sso, settings):
    page = client.get("/accounts/login/").content.decode()
    assert "Sign in with Test IdP" in page
    assert "Forgot your password?" not in page  # passwords are for administrators only
    settings.OIDC_ENABLED = False
    page = client.get("/accounts/login/").content.decode()
    assert "Sign in with" not in page
    assert "Forgot your password?" in page
    assert client.get("/accounts/sso/start/").status_code == 404
    assert client.get("/accounts/sso/callback/?code=x&state=y").status_code == 404


def test_roles_not_ours_are_kept(client, sso, mappings):
    sub = person(sso)
    user = User.objects.create_user("ana", sub)
    other = Group.objects.create(name="Auditors")
    user.groups.add(other)
    sso_login(client, sso, sub)
    assert sorted(user.groups.values_list("name", flat=True)) == ["Auditors", "CSR"]


# --- The provider failing, hostile claims ------------------------------------------------


def provider_chosen(client, provider, sub: str) -> str:
    """Through the provider's page: the callback URL, not yet visited."""
    start = client.get("/accounts/sso/start/")
    query = {key: values[0] for key, values in parse_qs(urlsplit(start["Location"]).query).items()}
    chosen = requests.post(f"{provider.url}/authorize", data={**query, "sub": sub}, allow_redirects=False, timeout=5)
    callback = urlsplit(chosen.headers["Location"])
    return f"{callback.path}?{callback.query}"


def test_a_code_the_provider_refuses_sends_the_person_back_with_a_reason(client, sso, mappings):
    callback = provider_chosen(client, sso, person(sso))
    sso.codes.clear()  # expired at the provider
    assert "did not answer as expected" in refusal(client, client.get(callback))
    assert not User.objects.exists()


def test_a_provider_gone_down_mid_login_sends_the_person_back_with_a_reason(client, oidc_provider, sso, mappings):
    callback = provider_chosen(client, sso, person(sso))
    server = oidc_provider.server
    server.shutdown()
    server.server_close()
    assert "did not answer as expected" in refusal(client, client.get(callback))


@pytest.mark.parametrize(
    "claims",
    [
        {"groups": {"helpdesk": True}},
        {"groups": [["helpdesk"]], "amr": {"mfa": 1}},
        {"email": ["ana@example.com"]},
        {"email": "not an address"},
        {"email_verified": "yes please"},
        {"given_name": {"a": 1}, "family_name": "x" * 1000},
    ],
)
def test_hostile_claims_are_refused_or_tamed_never_a_server_error(client, sso, mappings, claims):
    sub = person(sso)
    sso.people[sub].update(claims)
    response = sso_login(client, sso, sub)
    assert response.status_code == 302
    if "given_name" in claims:
        user = User.objects.get(email=sub)
        assert len(user.last_name) == 150
    else:
        assert refusal(client, response)
        assert not User.objects.exists()


def test_refused_single_sign_ons_never_lock_the_office_out(client, sso, mappings, settings):
    # given: more refusals from one address than the password lockout allows
    refused = person(sso, sub="eve@example.com", groups=["marketing"])
    for _attempt in range(settings.AXES_FAILURE_LIMIT + 1):
        assert "no group" in refusal(client, sso_login(client, sso, refused))
    # when a colleague signs in from the same address
    response = sso_login(client, sso, person(sso))
    # then
    assert response.status_code == 302 and response["Location"] == "/csr/"
