"""`{{ amount|money:currency }}`: money as the reader's language writes it, and
`{{ breach|breach_message:offer }}`: a stored limit breach worded in the reader's
language (builtins)."""

from django import template

from appease.core.money import format_money
from appease.issuance.services.limits import breach_message as word

register = template.Library()


@register.filter
def money(amount, currency) -> str:
    return format_money(amount, str(currency))


@register.filter
def breach_message(breach: dict, offer=None) -> str:

    return word(breach, offer=offer)
