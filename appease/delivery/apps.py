from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DeliveryConfig(AppConfig):
    """The outbox: every message to a customer, its channel adapters, provider callbacks
    and retries. It knows no caller: each kind of message is registered by its owner."""

    name = "appease.delivery"
    label = "delivery"
    verbose_name = _("Delivery")

    def ready(self) -> None:
        from appease.delivery.privacy import personal_data_register

        personal_data_register()
