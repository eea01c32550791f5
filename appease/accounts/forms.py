"""The login form, the rate-limited password reset form and the staff import upload."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from appease.accounts.services import local_login_allowed


class StaffAuthenticationForm(AuthenticationForm):
    """Django's login form; while passwords are for administrators only, a refused
    password says where staff sign in instead."""

    def clean(self):
        try:
            return super().clean()
        except ValidationError:
            if settings.OIDC_ENABLED and settings.SSO_LOCAL_LOGIN_SUPERUSERS_ONLY:
                raise ValidationError(
                    gettext(
                        "Staff sign in with %(provider)s. Passwords here are for administrators only, "
                        "and that username and password did not match one."
                    )
                    % {"provider": settings.OIDC_PROVIDER_NAME},
                    code="sso_only",
                ) from None
            raise


class StaffPasswordResetForm(PasswordResetForm):
    """Django's form: mail only to accounts with a password (not single-sign-on-only
    ones), and only to those who may sign in with one."""

    def get_users(self, email):
        return [user for user in super().get_users(email) if local_login_allowed(user)]


class StaffImportForm(forms.Form):
    file = forms.FileField(label=_("CSV file"), help_text=_("Columns: name, email, role, team, languages."))
    invite = forms.BooleanField(label=_("Email new local accounts a link to choose their password"), required=False)

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > 2 * 1024 * 1024:
            raise ValidationError(gettext("The file is too large (2 MB at most)."))
        return upload.read()
