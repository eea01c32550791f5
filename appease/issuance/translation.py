"""Translatable fields (django-modeltranslation adds one column per language)."""

from modeltranslation.translator import TranslationOptions, register

from appease.issuance.models import ReasonCode, Team


@register(ReasonCode)
class ReasonCodeTranslationOptions(TranslationOptions):
    fields = ("label",)


@register(Team)
class TeamTranslationOptions(TranslationOptions):
    fields = ("name",)
