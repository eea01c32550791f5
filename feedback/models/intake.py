"""Intake: the sites that embed the widget (`FeedbackSite`) and each thing a customer
told us, as received (`Feedback`)."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from appease.delivery.models import Channel
from appease.issuance.models.customers import Customer, IncidentType
from feedback.models.cases import Case
from feedback.models.choices import LANGUAGES


def _public_key() -> str:
    return "pk_" + secrets.token_urlsafe(18)


class FeedbackSite(models.Model):
    """A shop page or app that embeds the widget. Its key is public (it sits in the
    page's HTML): it names the site, it does not prove anything, so intake is rate
    limited per key and per IP and guarded by a honeypot."""

    name = models.CharField(_("name"), max_length=100)
    public_key = models.CharField(_("public key"), max_length=40, unique=True, default=_public_key, editable=False)
    allowed_origins = models.TextField(
        _("allowed origins"),
        blank=True,
        help_text=_(
            "Origins allowed to post, one per line, e.g. https://shop.example.com. Empty: no other website "
            "(only this server's own pages)."
        ),
    )
    default_language = models.CharField(_("default language"), max_length=10, choices=LANGUAGES, default="en")
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("feedback site")
        verbose_name_plural = _("feedback sites")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def origins(self) -> list[str]:
        return [line.strip().rstrip("/") for line in self.allowed_origins.splitlines() if line.strip()]


class Feedback(models.Model):
    """One thing a customer told us, as received. Low-impact feedback stays here,
    acknowledged; the rest opens (or joins) a case."""

    class Disposition(models.TextChoices):
        ACKNOWLEDGED = "acknowledged", _("Acknowledged automatically")
        QUEUED = "queued", _("Queued for a rep")
        CRITICAL = "critical", _("Critical")

    site = models.ForeignKey(
        FeedbackSite, null=True, blank=True, on_delete=models.PROTECT, related_name="feedback", verbose_name=_("site")
    )
    source = models.CharField(_("source"), max_length=10, choices=Case.Source.choices)
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.PROTECT, related_name="feedback", verbose_name=_("customer")
    )
    case = models.ForeignKey(
        Case, null=True, blank=True, on_delete=models.PROTECT, related_name="feedback", verbose_name=_("case")
    )
    rating = models.PositiveSmallIntegerField(
        _("rating"), null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    nps = models.PositiveSmallIntegerField(_("NPS"), null=True, blank=True, validators=[MaxValueValidator(10)])
    text = models.TextField(_("text"), blank=True, max_length=4000)
    incident_type = models.CharField(_("incident type"), max_length=20, choices=IncidentType.choices, blank=True)
    order_reference = models.CharField(_("order reference"), max_length=100, blank=True)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices, blank=True)
    page_url = models.URLField(_("page"), blank=True, max_length=500)
    language = models.CharField(_("language"), max_length=10, choices=LANGUAGES, default="en")
    sentiment = models.FloatField(_("sentiment"), null=True, blank=True)
    anger = models.FloatField(_("anger"), null=True, blank=True)
    disposition = models.CharField(_("disposition"), max_length=12, choices=Disposition.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("feedback")
        verbose_name_plural = _("feedback")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(rating__gte=1, rating__lte=5) | Q(rating=None), name="rating_1_to_5"),
            models.CheckConstraint(condition=Q(nps__lte=10) | Q(nps=None), name="nps_0_to_10"),
        ]

    def __str__(self) -> str:
        return f"{self.get_source_display()} {self.created_at:%Y-%m-%d %H:%M}"
