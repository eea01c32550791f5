"""Translatable fields (django-modeltranslation adds one column per language)."""

from modeltranslation.translator import TranslationOptions, register

from appease.models import ReasonCode


@register(ReasonCode)
class ReasonCodeTranslationOptions(TranslationOptions):
    fields = ("label",)
