"""Single sign-on's settings, read at start-up like every other (a real process each)."""

from __future__ import annotations

from tests.appease.test_settings import PROD, start_django

SSO = {
    "OIDC_ENABLED": "1",
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "https://idp.example.com/authorize",
    "OIDC_OP_TOKEN_ENDPOINT": "https://idp.example.com/token",
    "OIDC_OP_USER_ENDPOINT": "https://idp.example.com/userinfo",
    "OIDC_OP_JWKS_ENDPOINT": "https://idp.example.com/jwks",
    "OIDC_RP_CLIENT_ID": "appease",
    "OIDC_RP_CLIENT_SECRET": "s3cret",
}


def test_production_starts_with_single_sign_on_configured():
    result = start_django(**PROD, **SSO)
    assert result.returncode == 0, result.stderr


def test_single_sign_on_without_its_client_secret_is_refused_in_production():
    env = {**PROD, **SSO}
    del env["OIDC_RP_CLIENT_SECRET"]
    result = start_django(**env)
    assert result.returncode != 0
    assert "OIDC_RP_CLIENT_SECRET" in result.stderr


def test_single_sign_on_without_its_endpoints_is_refused():
    result = start_django(DEBUG="1", OIDC_ENABLED="1")
    assert result.returncode != 0
    assert "OIDC_OP_AUTHORIZATION_ENDPOINT" in result.stderr


def test_a_signed_id_token_needs_the_providers_keys():
    env = {**SSO, "DEBUG": "1"}
    del env["OIDC_OP_JWKS_ENDPOINT"]
    result = start_django(**env)
    assert result.returncode != 0
    assert "OIDC_OP_JWKS_ENDPOINT" in result.stderr
