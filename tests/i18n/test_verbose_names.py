"""Every model and field of our four apps is named through gettext_lazy, and the names
are translated: the admin, filters, form labels and error messages all show them."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.utils import translation
from django.utils.functional import Promise

APPS = ["appease", "coupons", "feedback", "reporting"]


def _models():
    return [model for label in APPS for model in apps.get_app_config(label).get_models()]


def _own_fields(model):
    """The model's columns and relations, less Django's automatic primary key (named
    "ID" in every language)."""
    return [
        field
        for field in model._meta.get_fields(include_parents=False)
        if field.concrete and not (field.auto_created and field.primary_key)
    ]


def _names():
    for model in _models():
        yield f"{model.__name__}.Meta.verbose_name", model._meta.original_attrs.get("verbose_name")
        yield f"{model.__name__}.Meta.verbose_name_plural", model._meta.original_attrs.get("verbose_name_plural")
        for field in _own_fields(model):
            yield f"{model.__name__}.{field.name}", field.verbose_name


def test_every_model_and_field_name_is_a_lazy_translation():
    # given every model of our apps
    assert len(_models()) > 40

    # when their names are read
    plain = [where for where, name in _names() if not isinstance(name, Promise)]

    # then none is a plain string (or missing, which Django fills in with English)
    assert not plain, f"{len(plain)} names are not gettext_lazy: {plain[:20]}"


# Names that are the same word in the translation.
SAME = {"ID", "error", "site", "NPS", "CSAT", "email", "status", "offer", "feedback", "total", "prefix", "SMS"}


@pytest.mark.parametrize("language", ["es", "pt-br"])
def test_every_model_and_field_name_is_translated(language):
    # given the names in English
    english = {where: str(name) for where, name in _names()}

    # when they are read in Spanish / Portuguese
    with translation.override(language):
        translated = {where: str(name) for where, name in _names()}

    # then each one reads differently (but for words the languages share)
    untranslated = sorted(
        f"{where}: {english[where]!r}"
        for where in english
        if translated[where] == english[where] and english[where] not in SAME
    )
    assert not untranslated, f"{len(untranslated)} names not translated: {untranslated[:20]}"


def test_a_field_name_reads_in_the_language():
    # given a money field named through gettext_lazy
    from coupons.models import Redemption

    field = Redemption._meta.get_field("order_total_amount")

    # when it is read in each language
    with translation.override("es"):
        spanish = str(field.verbose_name)
    with translation.override("pt-br"):
        portuguese = str(field.verbose_name)

    # then it is each language's word
    assert (str(field.verbose_name), spanish, portuguese) == ("order total", "total del pedido", "total do pedido")
