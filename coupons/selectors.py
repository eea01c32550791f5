"""Reads of the code inventory shared by more than one caller."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from coupons import codes
from coupons.models import Code, Merchant, Offer, Redemption


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


def offers() -> QuerySet[Offer]:
    """Every offer, as other apps list and filter by them."""
    return Offer.objects.all()


def offer_names() -> dict[int, str]:
    """{offer id: name} of every offer."""
    return {pk: offer.name for pk, offer in Offer.objects.in_bulk().items()}


def offer_currencies() -> set[str]:
    """The currencies offers are in."""
    return set(Offer.objects.values_list("currency", flat=True).distinct())


def redemptions_active() -> QuerySet[Redemption]:
    """Redemptions that stand (not reversed): what checkouts took off codes."""
    return Redemption.objects.filter(status=Redemption.Status.ACTIVE)


def redemptions_changed_since(since) -> QuerySet[Redemption]:
    """Redemptions made or reversed since `since` (indexed timestamps)."""
    return Redemption.objects.filter(Q(redeemed_at__gte=since) | Q(reversed_at__gte=since))


def redemptions_visible_to(*, merchant: Merchant | None) -> QuerySet[Redemption]:
    """A merchant's own redemptions; every merchant's for `merchant=None` (a supervisor
    reading them all). Newest first, with the code (for its last four) and the merchant."""
    queryset = Redemption.objects.select_related("code", "merchant").order_by("-redeemed_at", "-pk")
    if merchant is not None:
        queryset = queryset.filter(merchant=merchant)
    return queryset
