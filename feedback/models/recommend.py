"""What a rep is offered on the case page: which intervention fits which incident
and customer (`RecommendationRule`), and the words for a soft one (`ApologyTemplate`)."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from appease.core.money import is_known_currency
from appease.issuance.models.customers import AMOUNT, Customer, IncidentType
from feedback.models.choices import LANGUAGES, Intervention


class RecommendationRule(models.Model):
    """Incident type × customer tier × history → an intervention and its size.

    A tier means that tier or higher (tiers are ordered: standard, silver, gold,
    platinum); empty incident type or tier matches any. Rules rank the recommendations
    while an arm has too few answers, and give the "why". The suggested value is
    `(base + order total × percent) × tier factor`, capped at `max_amount`.
    """

    name = models.CharField(_("name"), max_length=100)
    incident_type = models.CharField(_("incident type"), max_length=20, choices=IncidentType.choices, blank=True)
    tier = models.CharField(
        _("customer tier"),
        max_length=10,
        choices=Customer.Tier.choices,
        blank=True,
        help_text=_("This tier or higher (gold: gold and platinum). Empty: any."),
    )
    min_past_incidents = models.PositiveSmallIntegerField(
        _("at least this many past incidents"), default=0, help_text=_("In the last 90 days, this case excluded.")
    )
    intervention = models.CharField(_("intervention"), max_length=15, choices=Intervention.choices)
    offer = models.ForeignKey(
        "coupons.Offer",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("The offer to give. Empty: the best matching offer the rep may give."),
        verbose_name=_("offer"),
    )
    base_amount = models.DecimalField(_("base value"), **AMOUNT, default=Decimal("0"))
    percent_of_order = models.DecimalField(
        _("percent of the order"),
        max_digits=5,
        decimal_places=2,
        default=Decimal("0"),
        validators=[MinValueValidator(0), MaxValueValidator(100)],
    )
    max_amount = models.DecimalField(_("at most"), **AMOUNT, null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=3, default=settings.DEFAULT_CURRENCY)
    reason = models.CharField(
        _("why"), max_length=255, help_text=_("Shown to the rep, e.g. “Staff attitude: respect and an apology first.”")
    )
    rank = models.PositiveSmallIntegerField(_("rank"), default=100, help_text=_("Lower comes first."))
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("recommendation rule")
        verbose_name_plural = _("recommendation rules")
        ordering = ["rank", "pk"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.currency and not is_known_currency(self.currency):
            raise ValidationError({"currency": _("Give a known ISO 4217 currency code, e.g. USD.")})


class ApologyTemplate(models.Model):
    """Words for a soft intervention, per language, that a rep sends from the case page.

    `{first_name}` and `{shop_name}` are filled in."""

    name = models.CharField(_("name"), max_length=100)
    language = models.CharField(_("language"), max_length=10, choices=LANGUAGES)
    incident_type = models.CharField(
        _("incident type"), max_length=20, choices=IncidentType.choices, blank=True, help_text=_("Empty: any.")
    )
    text = models.TextField(_("text"), max_length=2000)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("apology template")
        verbose_name_plural = _("apology templates")
        ordering = ["language", "incident_type", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.language})"

    def render(self, customer) -> str:
        first_name = customer.name.split(" ")[0] if customer else ""
        return self.text.replace("{first_name}", first_name).replace("{shop_name}", settings.SHOP_NAME)
