"""Guessing-guard counters kept in the database while the cache is down (appease.core.ratelimit)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class FailureCounter(models.Model):
    """One fixed window's count for one identity (an API key, an IP), as in the cache:
    the key names the scope, the identity and the window. Written with one upsert;
    expired windows are purged by beat."""

    key = models.CharField(_("key"), max_length=255, primary_key=True)
    count = models.PositiveIntegerField(_("count"), default=0)
    expires_at = models.DateTimeField(_("expires at"), db_index=True)

    class Meta:
        db_table = "appease_failurecounter"  # the table it had in the appease app (ADR 0010)
        verbose_name = _("failure counter")
        verbose_name_plural = _("failure counters")

    def __str__(self) -> str:
        return f"{self.key}={self.count}"
