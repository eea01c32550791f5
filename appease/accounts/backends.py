"""Authentication backends: passwords (limited to break-glass administrators while
single sign-on is on) and OpenID Connect (mozilla-django-oidc), whose people get their
role and team from the identity provider's groups (services.staff_sso_sign_in)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.backends import ModelBackend
from django.utils.translation import gettext
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from appease.accounts.services import SignInRefused, local_login_allowed, sso_mfa_asserted, staff_sso_sign_in
from appease.core.context import Actor


class LocalBackend(ModelBackend):
    """Username and password. With OIDC on and SSO_LOCAL_LOGIN_SUPERUSERS_ONLY, only
    administrators (superusers) get in this way: everyone else signs in at the provider,
    and a password session of theirs ends at the next request."""

    def user_can_authenticate(self, user) -> bool:
        return super().user_can_authenticate(user) and local_login_allowed(user)


class OIDCBackend(OIDCAuthenticationBackend):
    """The provider's callback: the ID token is checked (signature, nonce, audience,
    issuer), then the person is created or updated from the claims. A refusal leaves a
    message for the login page and returns no user."""

    def __init__(self, *args, **kwargs):
        # Django builds every backend for every authenticate() call: with single sign-on
        # off, the library's settings need not exist.
        self.enabled = settings.OIDC_ENABLED
        if self.enabled:
            super().__init__(*args, **kwargs)

    def authenticate(self, request, **kwargs):
        if not self.enabled or request is None:
            return None
        return super().authenticate(request, **kwargs)

    def _refuse(self, message: str) -> None:
        self.request.sso_refused = True
        messages.error(self.request, message)

    def get_or_create_user(self, access_token, id_token, payload):
        audience = payload.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        issuer = settings.OIDC_OP_ISSUER
        if self.OIDC_RP_CLIENT_ID not in audiences or (issuer and payload.get("iss") != issuer):
            self._refuse(gettext("The identity provider's answer was not meant for Appease: sign-in refused."))
            return None
        userinfo = self.get_userinfo(access_token, id_token, payload)
        if userinfo.get("sub") != payload.get("sub"):
            self._refuse(gettext("The identity provider's answer was not meant for Appease: sign-in refused."))
            return None
        # The ID token's claims, completed by the user info (groups, email): `amr` is
        # only ever in the ID token.
        claims = {**payload, **userinfo, "amr": payload.get("amr")}
        try:
            user = staff_sso_sign_in(claims=claims, actor=Actor.from_request(self.request))
        except SignInRefused as refusal:
            self._refuse(refusal.message)
            return None
        user.sso_mfa = sso_mfa_asserted(claims)
        return user


def axes_exempt(request, credentials) -> bool:
    """django-axes' AXES_WHITELIST_CALLABLE: the provider's callback is not a password
    guess. Refusals there (no mapped group, say) must not count towards a lockout, which
    would shut out every colleague behind the same office address."""
    from django.urls import reverse

    return request is not None and request.path_info == reverse("oidc_authentication_callback")
