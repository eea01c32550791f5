"""Reads of the outbox for other apps: its vocabulary and the deliveries reports count."""

from __future__ import annotations

from django.db.models import QuerySet

from appease.delivery.models import Channel as Channel
from appease.delivery.models import Delivery
from appease.delivery.models import failure_reason_label as failure_reason_label

# The outbox's words, for the apps that count and label deliveries (reporting's filters,
# rollup columns and tables): the channels, the statuses, a failure code's label.
DeliveryStatus = Delivery.Status


def appeasement_deliveries() -> QuerySet[Delivery]:
    """The deliveries of appeasements (not follow-ups), each with its issuance."""
    return Delivery.objects.filter(kind=Delivery.Kind.APPEASEMENT, issuance__isnull=False)
