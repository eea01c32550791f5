from django.apps import AppConfig
from django.conf import settings
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class AppeaseConfig(AppConfig):
    name = "appease"
    verbose_name = _("Appeasement")

    def ready(self) -> None:
        from appease import checks  # noqa: F401  (registers system checks)
        from appease.roles import roles_sync

        # Setup, not domain flow: permissions exist only after migrate has run.
        post_migrate.connect(roles_sync, dispatch_uid="appease.roles_sync")
        admin_two_factor(settings.ADMIN_REQUIRE_2FA)


def admin_two_factor(required: bool) -> None:
    """With ADMIN_REQUIRE_2FA, the admin (and the reports in it) asks for a one-time
    password from an authenticator app (django-otp's TOTP) at login."""
    from django.contrib import admin
    from django.contrib.admin.sites import AdminSite
    from django_otp.admin import OTPAdminSite

    admin.site.__class__ = OTPAdminSite if required else AdminSite
