from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DemoConfig(AppConfig):
    """The demo's data (`manage.py demo_data`): sits on top, may use every app."""

    name = "appease.demo"
    label = "demo"
    verbose_name = _("Demo")
