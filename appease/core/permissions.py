"""Who may do what, by role. Every view and endpoint names one of these."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions, permissions
from rest_framework_api_key.permissions import KeyParser

from appease.core.models import StaffAPIKey
from appease.core.roles import CSR, SUPERVISOR, has_role


class IsStaffMember(permissions.BasePermission):
    """A rep or a supervisor (or an administrator)."""

    message = _("Only reps and supervisors can do this.")

    def has_permission(self, request, view) -> bool:
        return has_role(request.user, CSR, SUPERVISOR)


class IsSupervisor(permissions.BasePermission):
    message = _("Only supervisors can do this.")

    def has_permission(self, request, view) -> bool:
        return has_role(request.user, SUPERVISOR)


class _TokenParser(KeyParser):
    keyword = "Token"


class StaffApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Token <key>` for API clients that act as a rep or supervisor."""

    keyword = "Token"
    key_parser = _TokenParser()

    def authenticate(self, request):
        key = self.key_parser.get(request)
        if not key:
            return None
        try:
            api_key = StaffAPIKey.objects.get_from_key(key)
        except StaffAPIKey.DoesNotExist:
            raise exceptions.AuthenticationFailed(_("Invalid token.")) from None
        if api_key.has_expired:
            raise exceptions.AuthenticationFailed(_("This token has expired."))
        return api_key.user, api_key

    def authenticate_header(self, request) -> str:
        return self.keyword


__all__ = ["IsStaffMember", "IsSupervisor", "StaffApiKeyAuthentication", "has_role"]
