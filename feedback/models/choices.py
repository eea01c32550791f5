"""The vocabularies every feedback model (and reporting) shares: the languages
feedback is written in, the interventions a rep can make, and the priorities."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

LANGUAGES = settings.LANGUAGES  # "en", "es", "pt-br": the codes Django and customers use


class Intervention(models.TextChoices):
    """What a rep does about an incident: soft (words, time) or hard (value)."""

    APOLOGY = "apology", _("Apology")
    EXPLANATION = "explanation", _("Explanation")
    CALLBACK = "callback", _("Callback")
    DISCOUNT = "discount", _("Discount")
    GIFT_CARD = "gift_card", _("Gift card")
    REFUND_CREDIT = "refund_credit", _("Refund credit")

    @classmethod
    def soft(cls) -> frozenset[str]:
        return frozenset({cls.APOLOGY, cls.EXPLANATION, cls.CALLBACK})

    @classmethod
    def for_offer_kind(cls, kind: str) -> str:
        return {
            "apology": cls.APOLOGY,
            "callback": cls.CALLBACK,
            "gift_card": cls.GIFT_CARD,
            "percent_off": cls.DISCOUNT,
            "amount_off": cls.REFUND_CREDIT,
            "free_item": cls.DISCOUNT,
        }[kind]


class Priority(models.TextChoices):
    CRITICAL = "critical", _("Critical")
    HIGH = "high", _("High")
    NORMAL = "normal", _("Normal")
    LOW = "low", _("Low")
