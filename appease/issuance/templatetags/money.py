"""`{{ amount|money:currency }}`: money as the reader's language writes it, and
`{{ breach|breach_message:offer }}`: a stored limit breach worded in the reader's
language (builtins)."""

from django import template

from appease.core.money import format_money

register = template.Library()


@register.filter
def money(amount, currency) -> str:
    return format_money(amount, str(currency))


@register.filter
def breach_message(breach: dict, offer=None) -> str:
    from appease.issuance.services.limits import breach_message as word

    return word(breach, offer=offer)
