"""Single sign-on in a real browser: "Sign in with …" on the login page, the identity
provider's own page (a real provider on 127.0.0.1, tests/accounts/oidc_provider.py), and
back in Appease as the person, with the role and team their groups map to."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User

from appease.accounts.models import GroupMapping
from appease.issuance.models import StaffProfile, Team
from tests.accounts.conftest import oidc_provider, sso  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_rep_signs_in_at_the_identity_provider(page, sso):  # noqa: F811
    # given: the provider knows Ana, in the helpdesk group that maps to CSR in North
    north = Team.objects.create(name="North")
    GroupMapping.objects.create(idp_group="helpdesk", role=GroupMapping.Role.CSR, team=north)
    sso.people["ana@example.com"] = {
        "email": "ana@example.com",
        "email_verified": True,
        "given_name": "Ana",
        "family_name": "Souza",
        "groups": ["helpdesk"],
    }
    # when
    page.goto("/csr/")
    page.get_by_role("link", name="Sign in with Test IdP").click()
    page.wait_for_url(re.compile(re.escape(sso.url) + r"/authorize"))
    page.get_by_role("button", name="Continue as ana@example.com").click()
    # then: back in Appease, signed in, on the page first asked for
    page.wait_for_url(re.compile(r"/csr/$"))
    assert page.locator(".who").inner_text() == "Ana Souza"
    ana = User.objects.get(email="ana@example.com")
    assert list(ana.groups.values_list("name", flat=True)) == ["CSR"]
    assert StaffProfile.objects.get(user=ana).team == north


def test_a_person_without_a_mapped_group_reads_why_on_the_login_page(page, sso):  # noqa: F811
    sso.people["eve@example.com"] = {"email": "eve@example.com", "email_verified": True, "groups": ["marketing"]}
    page.goto("/accounts/login/")
    page.get_by_role("link", name="Sign in with Test IdP").click()
    page.get_by_role("button", name="Continue as eve@example.com").click()
    page.wait_for_url(re.compile(r"/accounts/login/$"))
    assert "no group that gives a role" in page.locator(".messages").inner_text()
    assert not User.objects.filter(email="eve@example.com").exists()
