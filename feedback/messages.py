"""The follow-up message: after a resolved case, or an appeasement given outside a case,
the one-question survey's link.

Registered as the `follow_up` kind of the delivery outbox (apps.py), which calls it at
send time in the customer's language, on the shop's clock; the templates are in
templates/messages/follow_up/.
"""

from __future__ import annotations

from django.conf import settings

from appease.delivery.channels.base import OutboundMessage
from appease.delivery.messages import message_render, shop_date
from appease.delivery.models import Delivery
from feedback.models import FollowUp
from feedback.services.surveys import survey_url


def _context(delivery: Delivery) -> dict:
    follow_up: FollowUp = delivery.follow_up
    issuance = follow_up.issuance if follow_up.case_id is None else None
    return {
        "customer": delivery.customer,
        "first_name": delivery.customer.name.split(" ")[0],
        "case": follow_up.case,
        # An appeasement without a case: "did our apology and <offer> put things right?",
        # the offer's name in the customer's language (the outbox set it).
        "issuance": issuance,
        "offer_name": issuance.offer.name if issuance is not None else "",
        "apology_only": issuance is not None and issuance.offer.kind == "apology",
        "code": survey_url(follow_up),  # the part an SMS must never cut
        "survey_url": survey_url(follow_up),
        "expires": shop_date(follow_up.expires_at),
        "shop_name": settings.SHOP_NAME,
        "shop_url": settings.SHOP_URL,
    }


def follow_up_compose(delivery: Delivery) -> OutboundMessage:
    """The follow-up message for this delivery (the outbox sets the language and clock)."""
    # The provider metadata as it always was for follow-ups: an empty issuance id.
    return message_render(delivery, _context(delivery), metadata={"issuance_id": ""})
