"""The appeasement message: what the customer reads about what they were given.

Registered as the `appeasement` kind of the delivery outbox (apps.py), which calls it at
send time in the customer's language, on the shop's clock; the templates are in
templates/messages/appeasement/. A supervisor's wording for the offer (OfferMessage)
replaces the default apology and redemption instructions. The code is decrypted here,
at send time, and nowhere else.
"""

from __future__ import annotations

from django.conf import settings

from appease.core.money import format_money
from appease.delivery.channels.base import OutboundMessage
from appease.delivery.messages import message_render, shop_date
from appease.delivery.models import Delivery
from appease.issuance.models import Issuance, OfferMessage
from coupons import codes


def _context(delivery: Delivery) -> dict:
    issuance = Issuance.objects.select_related("customer", "offer", "reason_code", "code").get(pk=delivery.issuance_id)
    offer = issuance.offer
    wording = OfferMessage.objects.filter(offer=offer, language=delivery.language).first()
    code = codes.decrypt(issuance.code.ciphertext) if issuance.code_id else None
    value = None
    if offer.kind == offer.Kind.PERCENT_OFF:
        value = f"{offer.percent.normalize()}%"
    elif not offer.is_soft:
        # What was given, as frozen on the issuance: the code's own currency and value,
        # whatever the offer says since.
        currency = issuance.code.currency if issuance.code_id else issuance.currency
        value = format_money(issuance.face_value_amount, currency)
    return {
        "customer": issuance.customer,
        "first_name": issuance.customer.name.split(" ")[0],
        "offer": offer,
        "gift": offer.description,
        "reason": issuance.reason_code.label,
        "code": code,
        "value": value,
        "expires": shop_date(issuance.code.expires_at) if code and issuance.code.expires_at else None,
        "apology": issuance.apology_text or (wording.apology if wording and wording.apology else ""),
        "how_to_redeem": wording.how_to_redeem if wording and wording.how_to_redeem else "",
        "shop_name": settings.SHOP_NAME,
        "shop_url": settings.SHOP_URL,
    }


def appeasement_compose(delivery: Delivery) -> OutboundMessage:
    """The appeasement message for this delivery (the outbox sets the language and clock)."""
    return message_render(delivery, _context(delivery), metadata={"issuance_id": str(delivery.issuance_id)})
