from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CouponsConfig(AppConfig):
    name = "coupons"
    verbose_name = _("Offers and codes")

    def ready(self) -> None:
        from coupons import schema  # noqa: F401  (registers the OpenAPI auth scheme)
        from coupons.privacy import personal_data_register

        personal_data_register()
