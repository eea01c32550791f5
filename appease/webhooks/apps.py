from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WebhooksConfig(AppConfig):
    """Outbound webhooks: the endpoints supervisors register, the events the other apps
    emit, and their delivery through the outbox as the `webhook` kind of message."""

    name = "appease.webhooks"
    label = "webhooks"
    verbose_name = _("Webhooks")

    def ready(self) -> None:
        from appease.delivery.kinds import outcome_listener_register, register
        from appease.delivery.models import Delivery
        from appease.webhooks.services import (
            webhook_compose,
            webhook_customer_delivery_outcome,
            webhook_requeue_refusal,
        )

        register(Delivery.Kind.WEBHOOK, compose=webhook_compose, requeue_refusal=webhook_requeue_refusal)
        outcome_listener_register(webhook_customer_delivery_outcome)
