"""`{{ amount|money:currency }}`: money as the reader's language writes it,
`{{ count|number }}`: a number as the reader's language writes it (1,234 · 1.234), and
`{{ breach|breach_message:offer }}`: a stored limit breach worded in the reader's
language (builtins)."""

from babel.numbers import format_decimal
from django import template
from django.utils import translation

from appease.core.money import format_money
from appease.issuance.services.limits import breach_message as word

register = template.Library()


@register.filter
def money(amount, currency) -> str:
    return format_money(amount, str(currency))


@register.filter
def number(value) -> str:
    if value is None or value == "":
        return ""
    locale = translation.to_locale(translation.get_language() or "en")
    try:
        return format_decimal(value, locale=locale)
    except (ValueError, LookupError):  # an unknown locale: the neutral form
        return format_decimal(value, locale="en")


@register.filter
def breach_message(breach: dict, offer=None) -> str:

    return word(breach, offer=offer)
