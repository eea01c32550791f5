"""Supervisors' wording of the appeasement message, per offer and language."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class OfferMessage(models.Model):
    """A supervisor's wording for one offer in one language, used instead of the
    default template text. Empty fields fall back to the defaults."""

    offer = models.ForeignKey(
        "coupons.Offer", on_delete=models.CASCADE, related_name="messages", verbose_name=_("offer")
    )
    language = models.CharField(_("language"), max_length=10, choices=settings.LANGUAGES)
    apology = models.TextField(_("apology"), blank=True, help_text=_("Opens every message, e.g. “We're sorry…”."))
    how_to_redeem = models.TextField(_("how to redeem"), blank=True)

    class Meta:
        verbose_name = _("offer message")
        verbose_name_plural = _("offer messages")
        constraints = [models.UniqueConstraint(fields=["offer", "language"], name="one_message_per_language")]

    def __str__(self) -> str:
        return f"{self.offer} ({self.language})"
