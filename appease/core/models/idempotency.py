"""Cross-cutting records of the appease domain.

Customers, reason codes, issuances and limits join this module with the issuance
capability; the idempotency keys that every write API shares live here from the start.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class IdempotencyKey(models.Model):
    """The first answer to a write request, replayed for retries with the same key."""

    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress", _("In progress")
        COMPLETED = "completed", _("Completed")

    scope = models.CharField(_("scope"), max_length=64, help_text=_("The operation, e.g. redemptions.create."))
    owner = models.CharField(_("owner"), max_length=64, help_text=_("Who sent it, e.g. merchant:3 or user:12."))
    key = models.CharField(_("key"), max_length=255)
    fingerprint = models.CharField(_("fingerprint"), max_length=64, help_text=_("SHA-256 of the request body."))
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(_("response status"), null=True, blank=True)
    result = models.JSONField(_("result"), null=True, blank=True)
    locked_at = models.DateTimeField(_("locked at"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)

    class Meta:
        db_table = "appease_idempotencykey"  # the table it had in the appease app (ADR 0010)
        verbose_name = _("idempotency key")
        verbose_name_plural = _("idempotency keys")
        constraints = [
            models.UniqueConstraint(fields=["scope", "owner", "key"], name="idempotency_key_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.scope} {self.owner} {self.key}"

    @property
    def is_completed(self) -> bool:
        return self.status == self.Status.COMPLETED
