"""Translatable fields (django-modeltranslation adds one column per language)."""

from modeltranslation.translator import TranslationOptions, register

from coupons.models import Offer


@register(Offer)
class OfferTranslationOptions(TranslationOptions):
    fields = ("name", "description")
