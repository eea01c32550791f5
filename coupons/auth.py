"""Merchant authentication: `Authorization: Api-Key <key>`.

djangorestframework-api-key stores keys hashed and ships the admin to create and
revoke them; it offers a permission class only, so this authentication class puts the
key (and so the merchant) on the request for the views and the rate limits.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions, permissions
from rest_framework_api_key.permissions import KeyParser

from appease.core.roles import SUPERVISOR, has_role
from coupons.models import MerchantAPIKey


class MerchantApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Api-Key"
    key_parser = KeyParser()

    def authenticate(self, request):
        key = self.key_parser.get(request)
        if not key:
            return None
        try:
            api_key = MerchantAPIKey.objects.get_from_key(key)
        except MerchantAPIKey.DoesNotExist:
            raise exceptions.AuthenticationFailed(_("Invalid API key.")) from None
        if api_key.has_expired:
            raise exceptions.AuthenticationFailed(_("This API key has expired."))
        return AnonymousUser(), api_key

    def authenticate_header(self, request) -> str:
        return self.keyword


class IsMerchant(permissions.BasePermission):
    message = _("A merchant API key is required.")

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, MerchantAPIKey)


class IsMerchantOrSupervisor(permissions.BasePermission):
    """Reads a merchant makes of its own rows, and a supervisor of everyone's."""

    message = _("A merchant API key or a supervisor is required.")

    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, MerchantAPIKey) or has_role(request.user, SUPERVISOR)
