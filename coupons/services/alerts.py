"""Inventory alerts: supervisors hear when an offer is about to run out of codes."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _

from appease.core.queue import enqueue_on_commit
from appease.core.roles import SUPERVISOR, role_emails
from coupons.models import Code, CodeBatch, Offer


def inventory_check_low(*, offer: Offer) -> bool:
    """After a code was taken: alert once when the offer's stock reaches its threshold.

    Counts at most `threshold + 1` rows (not the whole inventory). The alert is armed
    again by the next batch of codes: the conditional update below fires only if no
    alert was sent since the offer's latest batch finished, so concurrent issuances
    send one email, not one each.
    """
    threshold = offer.low_inventory_threshold
    if not threshold or offer.generate_on_demand or offer.is_soft:
        return False
    plenty = Code.objects.filter(offer=offer, status=Code.Status.AVAILABLE).order_by("pk")[threshold : threshold + 1]
    if plenty.exists():
        return False
    latest_batch = (
        CodeBatch.objects.filter(offer=OuterRef("pk"), status=CodeBatch.Status.DONE)
        .order_by("-finished_at")
        .values("finished_at")[:1]
    )
    armed = Offer.objects.filter(pk=offer.pk).filter(
        Q(low_inventory_alerted_at__isnull=True) | Q(low_inventory_alerted_at__lt=Subquery(latest_batch))
    )
    if not armed.update(low_inventory_alerted_at=timezone.now()):
        return False
    from coupons.tasks import inventory_low_alert_task  # a service and its own task: the task module imports this one

    enqueue_on_commit(inventory_low_alert_task, offer.pk)
    return True


def inventory_low_alert_send(*, offer_id: int) -> int:
    offer = Offer.objects.get(pk=offer_id)
    left = Code.objects.filter(offer=offer, status=Code.Status.AVAILABLE).count()
    recipients = role_emails(SUPERVISOR)
    if not recipients:
        return 0
    return send_mail(
        _("“%(offer)s” is running out of codes") % {"offer": offer.name},
        _("Only %(left)d codes are left for “%(offer)s”. Add codes in the admin: Offers → %(offer)s → Add codes.")
        % {"left": left, "offer": offer.name},
        settings.DEFAULT_FROM_EMAIL,
        recipients,
    )
