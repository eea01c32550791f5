"""What the customer reads: the message for a delivery, per channel and language.

Templates live in templates/messages/ and are rendered in the customer's language, with
dates and times on the shop's clock (SHOP_TIME_ZONE); a
supervisor's wording for the offer (OfferMessage) replaces the default apology and
redemption instructions. The code is decrypted here, at send time, and nowhere else.
"""

from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import formats, timezone, translation

from appease.core.money import format_money
from appease.delivery.channels.base import OutboundMessage
from appease.delivery.channels.sms import fit_sms
from appease.delivery.models import Delivery
from appease.issuance.models import OfferMessage
from coupons import codes


def shop_zone() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(settings.SHOP_TIME_ZONE)


def shop_date(moment) -> str:
    """The day of `moment` on the shop's clock, as the active language writes a date."""
    return formats.date_format(timezone.localtime(moment, shop_zone()), "DATE_FORMAT")


def _context(delivery: Delivery) -> dict:
    issuance = delivery.issuance
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


def _follow_up_context(delivery: Delivery) -> dict:
    from feedback.services.surveys import survey_url

    follow_up = delivery.follow_up
    return {
        "customer": delivery.customer,
        "first_name": delivery.customer.name.split(" ")[0],
        "case": follow_up.case,
        "code": survey_url(follow_up),  # the part an SMS must never cut
        "survey_url": survey_url(follow_up),
        "expires": shop_date(follow_up.expires_at),
        "shop_name": settings.SHOP_NAME,
        "shop_url": settings.SHOP_URL,
    }


def message_compose(*, delivery: Delivery) -> OutboundMessage:
    """The message to send for this delivery, in the customer's language."""
    folder = f"messages/{delivery.kind}"
    # The customer's language, the shop's clock (for any |date in a template too).
    with translation.override(delivery.language), timezone.override(shop_zone()):
        context = _follow_up_context(delivery) if delivery.kind == Delivery.Kind.FOLLOW_UP else _context(delivery)
        if delivery.channel == "email":
            subject = " ".join(render_to_string(f"{folder}/subject.txt", context).split())
            text = render_to_string(f"{folder}/body.txt", context).strip()
            html = render_to_string(f"{folder}/body.html", context)
        else:
            subject, html = "", None
            parts = [
                " ".join(render_to_string(f"{folder}/short_{name}.txt", context).split())
                for name in ("apology", "gift", "code", "redeem")
            ]
            if delivery.channel == "sms":
                text = fit_sms([part for part in parts if part], context["code"], settings.SMS_MAX_SEGMENTS)
            else:
                text = "\n".join(part for part in parts if part)
    return OutboundMessage(
        channel=delivery.channel,
        to=delivery.address,
        subject=subject,
        text=text,
        html=html,
        idempotency_key=delivery.idempotency_key,
        metadata={"delivery_id": str(delivery.pk), "issuance_id": str(delivery.issuance_id or "")},
    )
