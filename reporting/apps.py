from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReportingConfig(AppConfig):
    """Supervisor dashboards and charts; reads other apps through their selectors."""

    name = "reporting"
    verbose_name = _("Reporting")
