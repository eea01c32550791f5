from __future__ import annotations

import pytest

from tests.accounts.oidc_provider import CLIENT_ID, CLIENT_SECRET, provider_start


@pytest.fixture
def oidc_provider():
    provider, server = provider_start()
    yield provider
    server.shutdown()
    server.server_close()


@pytest.fixture
def sso(settings, oidc_provider):
    """Single sign-on on, pointed at the test provider (its discovery document's values)."""
    config = oidc_provider.discovery()
    settings.OIDC_ENABLED = True
    settings.OIDC_PROVIDER_NAME = "Test IdP"
    settings.OIDC_OP_ISSUER = config["issuer"]
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = config["authorization_endpoint"]
    settings.OIDC_OP_TOKEN_ENDPOINT = config["token_endpoint"]
    settings.OIDC_OP_USER_ENDPOINT = config["userinfo_endpoint"]
    settings.OIDC_OP_JWKS_ENDPOINT = config["jwks_uri"]
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_RP_SIGN_ALGO = "RS256"
    return oidc_provider


# A real SMTP server on 127.0.0.1 (aiosmtpd) with Django's SMTP backend pointed at it.
from tests.delivery.channels.conftest import smtp_server  # noqa: E402, F401
