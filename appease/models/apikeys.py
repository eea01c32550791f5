"""API keys for staff API clients (a CRM or a telephony integration acting as a rep)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from rest_framework_api_key.models import AbstractAPIKey, BaseAPIKeyManager


class StaffAPIKeyManager(BaseAPIKeyManager):
    def get_usable_keys(self):
        return super().get_usable_keys().filter(user__is_active=True).select_related("user")


class StaffAPIKey(AbstractAPIKey):
    """`Authorization: Token <key>`: acts as its user, with that user's role and limits.
    Stored hashed (SHA-512), shown once at creation."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")

    objects = StaffAPIKeyManager()

    class Meta(AbstractAPIKey.Meta):
        verbose_name = _("staff API key")
        verbose_name_plural = _("staff API keys")
