"""Translatable fields (django-modeltranslation adds one column per language)."""

from modeltranslation.translator import TranslationOptions, register

from feedback.models import OwnerTeam


@register(OwnerTeam)
class OwnerTeamTranslationOptions(TranslationOptions):
    fields = ("name",)
