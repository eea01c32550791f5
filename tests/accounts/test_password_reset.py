"""Password reset by email for local accounts, through the real SMTP path."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User

from tests.factories import staff_user

pytestmark = pytest.mark.django_db


def reset_link(message) -> str:
    body = message.get_body(preferencelist=("plain",)).get_content()
    return re.search(r"https?://[^/\s]+(/accounts/reset/\S+/)", body).group(1)


def test_a_local_account_resets_its_password_by_email(client, smtp_server, settings):
    # given
    settings.PUBLIC_URL = "https://appease.example"
    rep = staff_user("CSR", username="rep")
    rep.email = "rep@example.com"
    rep.save()
    # when: the link on the login page, then the form
    login = client.get("/accounts/login/").content.decode()
    assert 'href="/accounts/password-reset/"' in login
    sent = client.post("/accounts/password-reset/", {"email": "REP@example.com"})
    # then
    assert sent.status_code == 302 and sent["Location"] == "/accounts/password-reset/sent/"
    (message,) = smtp_server.handler.messages
    assert smtp_server.handler.envelopes[0][1] == ["rep@example.com"]
    assert message["Subject"] == "Reset your Appease password"
    link = reset_link(message)
    # and the link sets a new password, once
    form = client.get(link, follow=True)
    assert form.status_code == 200 and form.context["validlink"]
    done = client.post(
        form.redirect_chain[-1][0], {"new_password1": "a long new secret 42", "new_password2": "a long new secret 42"}
    )
    assert done.status_code == 302 and done["Location"] == "/accounts/reset/done/"
    rep.refresh_from_db()
    assert rep.check_password("a long new secret 42")
    assert client.get(link, follow=True).context["validlink"] is False
    assert client.post("/accounts/login/", {"username": "rep", "password": "a long new secret 42"}).status_code == 302


def test_the_email_is_in_the_askers_language(client, smtp_server):
    rep = staff_user("CSR", username="rep")
    rep.email = "rep@example.com"
    rep.save()
    client.post("/accounts/password-reset/", {"email": "rep@example.com"}, HTTP_ACCEPT_LANGUAGE="pt-br")
    (message,) = smtp_server.handler.messages
    assert message["Subject"] == "Redefina sua senha do Appease"


def test_no_mail_for_unknown_addresses_or_sso_only_accounts_and_the_page_says_the_same(client, smtp_server):
    # given: an account made by single sign-on has no usable password
    sso_only = User.objects.create_user("ana@example.com", "ana@example.com")
    sso_only.set_unusable_password()
    sso_only.save()
    known = client.post("/accounts/password-reset/", {"email": "ana@example.com"})
    unknown = client.post("/accounts/password-reset/", {"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 302
    assert known["Location"] == unknown["Location"]
    assert smtp_server.handler.messages == []


def test_requests_are_limited_per_address(client, smtp_server, settings):
    # given
    settings.PASSWORD_RESET_PER_HOUR = 2
    rep = staff_user("CSR", username="rep")
    rep.email = "rep@example.com"
    rep.save()
    # when
    answers = [client.post("/accounts/password-reset/", {"email": "rep@example.com"}).status_code for _ in range(4)]
    # then
    assert answers == [302, 302, 429, 429]
    assert len(smtp_server.handler.messages) == 2
    page = client.post("/accounts/password-reset/", {"email": "rep@example.com"}, HTTP_ACCEPT_LANGUAGE="es")
    assert page.status_code == 429 and int(page["Retry-After"]) > 0
    assert "Demasiadas solicitudes" in page.content.decode()
    # another address is not held back by this one
    assert client.post("/accounts/password-reset/", {"email": "other@example.com"}).status_code == 302


def test_requests_are_limited_per_client(client, smtp_server, settings):
    settings.PASSWORD_RESET_PER_IP_PER_HOUR = 3
    answers = [
        client.post("/accounts/password-reset/", {"email": f"n{index}@example.com"}).status_code for index in range(5)
    ]
    assert answers == [302, 302, 302, 429, 429]


@pytest.mark.parametrize(
    "email", ["", "not an address", "a" * 300 + "@example.com", "x@example.com\r\nBcc: y@example.com"]
)
def test_hostile_input_is_a_form_error(client, smtp_server, email):
    response = client.post("/accounts/password-reset/", {"email": email})
    assert response.status_code == 200
    assert response.context["form"].errors
    assert smtp_server.handler.messages == []


def test_with_sso_on_reset_is_for_administrators_only(client, smtp_server, sso):
    # the page is gone for staff: they change their password at the provider
    assert client.get("/accounts/password-reset/").status_code == 404
