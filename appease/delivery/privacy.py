"""The outbox's personal data (appease.core.privacy): where each message went (the
address), and what providers answered (their errors, each attempt's detail), which
often repeat the address.

Registered in DeliveryConfig.ready.
"""

from __future__ import annotations

from appease.core.privacy import (
    DONE_WORDS,
    ERASED,
    EXPIRED,
    Identity,
    PersonalData,
    ids,
    in_batches,
    iso,
    register,
    set_values,
)
from appease.delivery.models import Delivery, DeliveryAttempt, DeliveryStatusEvent


def objects(customer) -> dict:
    return {Delivery: ids(Delivery.objects.filter(customer=customer))}


def export(customer, identity: Identity) -> dict:
    return {
        "deliveries": [
            {
                "id": str(delivery.pk),
                "kind": delivery.kind,
                "channel": delivery.channel,
                "address": delivery.address,
                "status": delivery.status,
                "created_at": iso(delivery.created_at),
                "sent_at": iso(delivery.sent_at),
                "last_error": delivery.last_error,
                "attempts": [
                    {"at": iso(attempt.started_at), "outcome": attempt.outcome, "detail": attempt.detail}
                    for attempt in delivery.attempt_log.all()
                ],
            }
            for delivery in Delivery.objects.filter(customer=customer).prefetch_related("attempt_log")
        ]
    }


def erase(customer, identity: Identity) -> dict:
    """Addresses erased; the mentions of the customer in providers' answers replaced."""
    deliveries = Delivery.objects.filter(customer=customer)
    done = {"delivery_errors": 0, "delivery_attempts": 0}
    for delivery in deliveries.exclude(last_error="").only("last_error"):
        done["delivery_errors"] += Delivery.objects.filter(pk=delivery.pk).update(
            last_error=identity.redact(delivery.last_error)
        )
    done["deliveries"] = deliveries.update(address=ERASED)
    for attempt in DeliveryAttempt.objects.filter(delivery__customer=customer).exclude(detail="").only("detail"):
        done["delivery_attempts"] += DeliveryAttempt.objects.filter(pk=attempt.pk).update(
            detail=identity.redact(attempt.detail)
        )
    return done


def expire(cutoff, *, size: int) -> dict:
    old = Delivery.objects.filter(created_at__lt=cutoff)
    return {
        "deliveries": in_batches(
            old.exclude(address__in=[ERASED, EXPIRED]), set_values(Delivery, address=EXPIRED), size=size
        ),
        "delivery_errors": in_batches(
            old.exclude(last_error__in=DONE_WORDS), set_values(Delivery, last_error=EXPIRED), size=size
        ),
        "delivery_attempts": in_batches(
            DeliveryAttempt.objects.filter(started_at__lt=cutoff).exclude(detail__in=DONE_WORDS),
            set_values(DeliveryAttempt, detail=EXPIRED),
            size=size,
        ),
    }


PERSONAL_DATA = PersonalData(
    app_label="delivery",
    models=(Delivery,),
    objects=objects,
    # These had the `appease` label until the outbox became its own app (issue 16);
    # audit rows written before then name them so, and are still the customer's.
    former_labels={
        Delivery: ("appease.delivery",),
        DeliveryAttempt: ("appease.deliveryattempt",),
        DeliveryStatusEvent: ("appease.deliverystatusevent",),
    },
    export=export,
    erase=erase,
    expire=expire,
    keys=frozenset({"address"}),
    words=frozenset({"last_error", "detail"}),
)


def personal_data_register() -> None:
    register(PERSONAL_DATA)
