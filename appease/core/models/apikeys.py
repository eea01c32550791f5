"""API keys for staff API clients (a CRM or a telephony integration acting as a rep)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from rest_framework_api_key.models import AbstractAPIKey, BaseAPIKeyManager

from appease.core.scopes import STAFF, staff_scopes_all, validate_staff_scopes

SCOPES_HELP = _("What this key may call. A request outside these scopes is refused (403 insufficient_scope).")


class APIKey(AbstractAPIKey):
    """The library's API key with its fields named in our catalogs (the library's own
    names and help texts are English only). Same columns, so no schema change."""

    id = models.CharField(_("ID"), max_length=150, unique=True, primary_key=True, editable=False)
    prefix = models.CharField(_("prefix"), max_length=8, unique=True, editable=False)
    hashed_key = models.CharField(_("hashed key"), max_length=150, editable=False)
    created = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    name = models.CharField(
        _("name"),
        max_length=50,
        blank=False,
        default=None,
        help_text=_("A free-form name for the API key. Need not be unique. 50 characters max."),
    )
    revoked = models.BooleanField(
        _("revoked"),
        blank=True,
        default=False,
        help_text=_("If the API key is revoked, clients cannot use it anymore. (This cannot be undone.)"),
    )
    expiry_date = models.DateTimeField(
        _("expires"),
        blank=True,
        null=True,
        help_text=_("Once the API key expires, clients cannot use it anymore."),
    )

    class Meta(AbstractAPIKey.Meta):
        abstract = True
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")


class StaffAPIKeyManager(BaseAPIKeyManager):
    def get_usable_keys(self):
        return super().get_usable_keys().filter(user__is_active=True).select_related("user")


class StaffAPIKey(APIKey):
    """`Authorization: Token <key>`: acts as its user, with that user's role and limits.
    Stored hashed (SHA-512), shown once at creation."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys", verbose_name=_("user")
    )
    scopes = models.JSONField(
        _("scopes"), default=staff_scopes_all, blank=True, validators=[validate_staff_scopes], help_text=SCOPES_HELP
    )
    scope_kind = STAFF

    objects = StaffAPIKeyManager()

    class Meta(APIKey.Meta):
        db_table = "appease_staffapikey"  # the table it had in the appease app (ADR 0010)
        verbose_name = _("staff API key")
        verbose_name_plural = _("staff API keys")
