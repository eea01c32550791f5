"""What the customer reads: a delivery's message, composed by its kind's owner.

`message_compose` asks the kind registered for the delivery (appease/delivery/kinds.py)
for its message, in the customer's language and with dates and times on the shop's
clock (SHOP_TIME_ZONE). `message_render` is what composers share: the kind's templates
in templates/messages/<kind>/ rendered for the delivery's channel (an email with text
and HTML, a short text for SMS, chat and social, an SMS fitted to SMS_MAX_SEGMENTS).
"""

from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import formats, timezone, translation

from appease.delivery.channels.base import OutboundMessage
from appease.delivery.channels.sms import fit_sms
from appease.delivery.kinds import kind_for
from appease.delivery.models import Delivery


def shop_zone() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(settings.SHOP_TIME_ZONE)


def shop_date(moment) -> str:
    """The day of `moment` on the shop's clock, as the active language writes a date."""
    return formats.date_format(timezone.localtime(moment, shop_zone()), "DATE_FORMAT")


def message_compose(*, delivery: Delivery) -> OutboundMessage:
    """The message to send for this delivery, in the customer's language. UnknownKind
    if no app registered its kind."""
    kind = kind_for(delivery.kind)
    # The customer's language, the shop's clock (for any |date in a template too).
    with translation.override(delivery.language), timezone.override(shop_zone()):
        return kind.compose(delivery)


def message_render(delivery: Delivery, context: dict, *, metadata: dict) -> OutboundMessage:
    """The delivery's message from the templates of its kind, for its channel.

    `context["code"]` is the part an SMS must never cut; `metadata` goes to the provider
    beside the delivery id (never the code)."""
    folder = f"messages/{delivery.kind}"
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
        metadata={"delivery_id": str(delivery.pk), **metadata},
    )
