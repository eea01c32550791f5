"""Login (password or single sign-on), password reset by email, and the staff import
page of the admin."""

from __future__ import annotations

import logging

import requests
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import views as auth_views
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.translation import gettext, ngettext
from mozilla_django_oidc import views as oidc_views

from appease.accounts.forms import StaffAuthenticationForm, StaffImportForm, StaffPasswordResetForm
from appease.accounts.services import StaffImportInvalid, staff_csv_read, staff_import
from appease.core.admin_site import IDP_MFA_SESSION_KEY
from appease.core.api import client_ip
from appease.core.context import Actor
from appease.core.ratelimit import FailureLimiter
from appease.core.roles import SUPERVISOR, has_role

logger = logging.getLogger(__name__)


def _password_reset_offered() -> bool:
    return not (settings.OIDC_ENABLED and settings.SSO_LOCAL_LOGIN_SUPERUSERS_ONLY)


class LoginView(auth_views.LoginView):
    authentication_form = StaffAuthenticationForm
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            **kwargs,
            oidc_enabled=settings.OIDC_ENABLED,
            oidc_provider_name=settings.OIDC_PROVIDER_NAME,
            password_reset_offered=_password_reset_offered(),
        )

    def form_valid(self, form):
        # A password login never inherits a provider's second factor.
        self.request.session.pop(IDP_MFA_SESSION_KEY, None)
        return super().form_valid(form)


class SSOStartView(oidc_views.OIDCAuthenticationRequestView):
    """To the identity provider (404 while single sign-on is off)."""

    def __init__(self, *args, **kwargs):
        if settings.OIDC_ENABLED:
            super().__init__(*args, **kwargs)

    def get(self, request):
        if not settings.OIDC_ENABLED:
            raise Http404
        return super().get(request)


class SSOCallbackView(oidc_views.OIDCAuthenticationCallbackView):
    """Back from the identity provider: signed in, or on the login page with the reason."""

    def get(self, request):
        if not settings.OIDC_ENABLED:
            raise Http404
        try:
            return super().get(request)
        except requests.RequestException:
            # The provider unreachable, or refusing the code (reused, expired): the
            # person starts again from the login page, told so.
            logger.warning("single sign-on: the identity provider failed", exc_info=True)
            self.request.sso_refused = True
            messages.error(
                request,
                gettext("%(provider)s did not answer as expected: please try again in a moment.")
                % {"provider": settings.OIDC_PROVIDER_NAME},
            )
            return self.login_failure()

    def login_success(self):
        response = super().login_success()
        self.request.session[IDP_MFA_SESSION_KEY] = bool(getattr(self.user, "sso_mfa", False))
        return response

    def login_failure(self):
        if not getattr(self.request, "sso_refused", False):
            messages.error(
                self.request,
                gettext("Signing in with %(provider)s did not complete: please try again.")
                % {"provider": settings.OIDC_PROVIDER_NAME},
            )
        return super().login_failure()


class PasswordResetView(auth_views.PasswordResetView):
    """Django's view, rate-limited by address asked for and by client: each request
    counts, whether or not the address has an account (the page never says which)."""

    form_class = StaffPasswordResetForm
    success_url = reverse_lazy("password_reset_done")

    def dispatch(self, request, *args, **kwargs):
        if not _password_reset_offered():
            raise Http404
        return super().dispatch(request, *args, **kwargs)

    def form_valid(self, form):
        email = form.cleaned_data["email"].strip().lower()
        by_email = FailureLimiter(scope="password-reset", limit=settings.PASSWORD_RESET_PER_HOUR, window_seconds=3600)
        by_ip = FailureLimiter(
            scope="password-reset-ip", limit=settings.PASSWORD_RESET_PER_IP_PER_HOUR, window_seconds=3600
        )
        wait = by_email.record_failure([f"email:{email}"]) or by_ip.record_failure([f"ip:{client_ip(self.request)}"])
        if wait:
            minutes = max(1, round(wait / 60))
            form.add_error(
                None,
                ngettext(
                    "Too many password reset requests: try again in %(minutes)d minute.",
                    "Too many password reset requests: try again in %(minutes)d minutes.",
                    minutes,
                )
                % {"minutes": minutes},
            )
            response = self.form_invalid(form)
            response.status_code = 429
            response["Retry-After"] = str(wait)
            return response
        return super().form_valid(form)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    success_url = reverse_lazy("password_reset_complete")


def staff_import_page(request):
    """The admin's staff import: a CSV file checked whole, then applied whole."""
    if not (request.user.is_superuser or has_role(request.user, SUPERVISOR)):
        raise Http404
    form = StaffImportForm(request.POST or None, request.FILES or None)
    problems = []
    if request.method == "POST" and form.is_valid():
        try:
            rows = staff_csv_read(form.cleaned_data["file"])
            result = staff_import(rows=rows, actor=Actor.from_request(request), invite=form.cleaned_data["invite"])
        except StaffImportInvalid as invalid:
            problems = invalid.problems
        else:
            messages.success(
                request,
                gettext(
                    "Staff imported: %(created)d created, %(updated)d updated, %(unchanged)d unchanged, %(invited)d invited."  # noqa: E501
                )
                % {
                    "created": len(result.created),
                    "updated": len(result.updated),
                    "unchanged": len(result.unchanged),
                    "invited": len(result.invited),
                },
            )
            return redirect("staff-import")
    context = {
        **admin.site.each_context(request),
        "title": gettext("Import staff"),
        "form": form,
        "problems": problems,
        # New accounts are never administrators: invitations only while staff have passwords.
        "invites_possible": _password_reset_offered(),
    }
    return render(request, "accounts/staff_import.html", context)
