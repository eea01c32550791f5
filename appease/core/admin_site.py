"""The admin site, with two-factor authentication for supervisors when the setting says so."""

from __future__ import annotations

from django.conf import settings
from django.contrib.admin.sites import AdminSite
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite

# Set in the session by a single sign-on whose identity provider asserted a second
# factor (its `amr` claim): that login counts as two-factor here (docs/integrations.md).
IDP_MFA_SESSION_KEY = "appease_idp_mfa"


class TwoFactorAdminSite(AdminSite):
    """Django's admin site; with APPEASE_SUPERVISOR_2FA on, django-otp's: the login form
    asks for the code of the user's TOTP device, and a session that has not verified one
    (a password-only login at /accounts/login/) is treated as not allowed in.

    The setting is read on every request (properties, not attributes set once), so it is
    the same in every thread of a gthread worker and a test can turn it on."""

    @property
    def login_form(self):
        return OTPAdminAuthenticationForm if settings.APPEASE_SUPERVISOR_2FA else None

    @property
    def login_template(self):
        return OTPAdminSite.login_template if settings.APPEASE_SUPERVISOR_2FA else None

    def has_permission(self, request) -> bool:
        allowed = super().has_permission(request)
        if allowed and settings.APPEASE_SUPERVISOR_2FA:
            return request.user.is_verified() or bool(request.session.get(IDP_MFA_SESSION_KEY))
        return allowed
