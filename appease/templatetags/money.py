"""`{{ amount|money:currency }}`: money as the reader's language writes it (a builtin)."""

from django import template

from appease.money import format_money

register = template.Library()


@register.filter
def money(amount, currency) -> str:
    return format_money(amount, str(currency))
