"""Money is a Decimal amount plus an ISO 4217 currency; never a float."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from functools import cache

from babel.numbers import get_currency_precision, list_currencies


@cache
def known_currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def is_known_currency(currency: str) -> bool:
    return currency in known_currencies()


def default_currency() -> str:
    """The shop's currency (DEFAULT_CURRENCY): what a new customer or offer pays in
    unless told otherwise. A callable, so migrations do not freeze today's value."""
    from django.conf import settings

    return settings.DEFAULT_CURRENCY


def validate_currency(value: str) -> None:
    from django.core.exceptions import ValidationError
    from django.utils.translation import gettext_lazy as _

    if not is_known_currency(value):
        raise ValidationError(_("%(value)s is not an ISO 4217 currency code."), params={"value": value})


@cache
def currency_exponent(currency: str) -> int:
    """Number of minor-unit digits: 2 for EUR, 0 for JPY, 3 for KWD."""
    return get_currency_precision(currency)


def decimal_places(amount: Decimal) -> int:
    exponent = amount.as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def fits_currency(amount: Decimal, currency: str) -> bool:
    """True when the amount has no more decimals than the currency allows."""
    return decimal_places(amount.normalize()) <= currency_exponent(currency)


def quantize(amount: Decimal, currency: str) -> Decimal:
    step = Decimal(1).scaleb(-currency_exponent(currency))
    return amount.quantize(step, rounding=ROUND_HALF_UP)


def format_money(amount: Decimal | None, currency: str, language: str | None = None) -> str:
    """`amount` in `currency` as people of the current (or given) language write it,
    with Babel's CLDR data: R$ 1.234,56 (pt-br), 1234,56 € (es), $1,234.56 (en)."""
    from babel.numbers import format_currency
    from django.utils import translation

    if amount is None:
        return ""
    locale = translation.to_locale(language or translation.get_language() or "en")
    try:
        return format_currency(quantize(Decimal(amount), currency), currency, locale=locale)
    except (ValueError, LookupError):  # an unknown locale: the neutral form
        return format_currency(quantize(Decimal(amount), currency), currency, locale="en")
