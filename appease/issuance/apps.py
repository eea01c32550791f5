from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

from appease.delivery.kinds import register


class IssuanceConfig(AppConfig):
    """The issuance domain: customers, reason codes, limits and budgets, appeasements.
    It keeps the `appease` label, so its tables, migrations and permissions are those
    it always had (ADR 0010)."""

    name = "appease.issuance"
    label = "appease"
    verbose_name = _("Appeasement")

    def ready(self) -> None:
        from appease.core import readers
        from appease.issuance.messages import appeasement_compose
        from appease.issuance.privacy import personal_data_register
        from appease.issuance.selectors import staff_reading_preferences
        from appease.issuance.services.deliveries import appeasement_delivery_outcome, appeasement_requeue_refusal

        readers.preferences_lookup_register(staff_reading_preferences)
        # The outbox's `appeasement` messages: composed here, and the issuance follows them.
        register(
            "appeasement",
            compose=appeasement_compose,
            on_outcome=appeasement_delivery_outcome,
            requeue_refusal=appeasement_requeue_refusal,
        )
        personal_data_register()  # the customer's personal data, for the kernel's privacy tools
