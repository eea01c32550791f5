"""The appeasement's deliveries: resending it, and keeping the issuance's status in step
with what the outbox did (the `appeasement` message kind's hooks, registered in apps.py).

- `delivery_resend`: a rep sends a given appeasement again, through any channel the
  customer agreed to.
- `appeasement_delivery_outcome`: sent or delivered → the issuance is `delivered`;
  failed or dead → `failed` (a bounce of a message we thought sent undoes `delivered`;
  a later resend that fails does not undo an earlier success).
- `appeasement_requeue_refusal`: a dead delivery goes again only while its issuance is
  still to be delivered and nothing was sent for it since.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from appease.core.audit import audit_event_record
from appease.core.context import Actor
from appease.core.exceptions import ApplicationError
from appease.delivery.kinds import Outcome
from appease.delivery.models import Channel, Delivery
from appease.delivery.services import address_checked, delivery_create
from appease.issuance.models import Issuance

RESENDABLE = (Issuance.Status.ISSUED, Issuance.Status.DELIVERED, Issuance.Status.FAILED)


@transaction.atomic
def delivery_resend(*, actor: Actor, issuance_id, channel: str, address: str = "") -> Delivery:
    """Send a given appeasement again, at any time, through any channel the customer
    agreed to, to their contact or to `address` (a contact the rep corrected on the
    call). Audited. Exactly once still holds: each resend is one new outbox row,
    and while the last one is on its way a second is refused (a double click)."""
    issuance = Issuance.objects.select_for_update(of=("self",)).select_related("customer").get(pk=issuance_id)
    if channel not in Channel.values:
        raise ValidationError({"channel": _("Choose one of: %(channels)s.") % {"channels": ", ".join(Channel.values)}})
    address = address_checked(channel, address)
    customer = issuance.customer
    if not address and not customer.address_for(channel):
        raise ValidationError(
            {"channel": _("We have no %(channel)s contact for this customer.") % {"channel": channel}}
        )
    if not customer.consents_to(channel):
        raise ValidationError(
            {"channel": _("The customer has not agreed to be contacted by %(channel)s.") % {"channel": channel}}
        )
    if issuance.status not in RESENDABLE:
        raise ApplicationError("not_resendable", _("Only a given appeasement can be sent again."), status=409)
    last = issuance.deliveries.order_by("-created_at").first()
    if last is not None and last.status in (Delivery.Status.PENDING, Delivery.Status.SENDING):
        raise ApplicationError(
            "delivery_in_flight",
            _("It is being sent right now: wait for the result before sending it again."),
            status=409,
        )
    delivery = delivery_create(issuance=issuance, channel=channel, resend_of=last, actor=actor, address=address)
    after = {"channel": channel}
    if address:
        after["address"] = address
    audit_event_record(
        actor=actor,
        action="delivery.resend",
        obj=delivery,
        before={"delivery": str(last.pk), "channel": last.channel, "status": last.status} if last else None,
        after=after,
    )
    return delivery


def appeasement_delivery_outcome(delivery: Delivery, outcome: Outcome) -> None:
    """The issuance follows its delivery (in the outbox's transaction)."""
    issuance = Issuance.objects.filter(pk=delivery.issuance_id)
    if outcome.status == Delivery.Status.SENT:
        issuance.filter(status__in=[Issuance.Status.ISSUED, Issuance.Status.FAILED]).update(
            status=Issuance.Status.DELIVERED, delivered_at=outcome.at
        )
    elif outcome.status == Delivery.Status.DELIVERED:
        issuance.filter(status__in=[Issuance.Status.ISSUED, Issuance.Status.DELIVERED]).update(
            status=Issuance.Status.DELIVERED, delivered_at=outcome.at
        )
    elif outcome.status in (Delivery.Status.FAILED, Delivery.Status.DEAD):
        # A provider's bounce undoes the `delivered` this very message gave; a send that
        # failed leaves an issuance an earlier delivery reached as it is.
        undone = [Issuance.Status.ISSUED, Issuance.Status.DELIVERED] if outcome.reported else [Issuance.Status.ISSUED]
        issuance.filter(status__in=undone).update(status=Issuance.Status.FAILED)


def appeasement_requeue_refusal(delivery: Delivery) -> str:
    """Why a dead appeasement delivery is not sent again ("" when it is)."""
    issuance = delivery.issuance
    if issuance.status not in (Issuance.Status.ISSUED, Issuance.Status.FAILED):
        return f"issuance {issuance.status}"
    if issuance.deliveries.order_by("-created_at").values_list("pk", flat=True).first() != delivery.pk:
        return "a later delivery exists"
    return ""
