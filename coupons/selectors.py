"""Reads of the code inventory shared by more than one caller."""

from __future__ import annotations

from coupons import codes
from coupons.models import Code


def code_get_by_plaintext(*, raw_code: str) -> Code | None:
    """The code for what a customer typed, or None. Available (never issued) codes
    are not visible to the outside: they answer like unknown ones."""
    normalised = codes.normalise(raw_code)
    if not normalised:
        return None
    return (
        Code.objects.select_related("offer")
        .exclude(status=Code.Status.AVAILABLE)
        .filter(lookup_hash=codes.lookup_hash(normalised))
        .first()
    )
