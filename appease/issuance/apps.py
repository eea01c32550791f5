from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IssuanceConfig(AppConfig):
    """The issuance domain: customers, reason codes, limits and budgets, appeasements.
    It keeps the `appease` label, so its tables, migrations and permissions are those
    it always had (ADR 0010)."""

    name = "appease.issuance"
    label = "appease"
    verbose_name = _("Appeasement")

    def ready(self) -> None:
        from appease.issuance.privacy import personal_data_register

        personal_data_register()
