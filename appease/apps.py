from django.apps import AppConfig
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
        admin_two_factor()


def admin_two_factor() -> None:
    """The admin (and the reports in it) becomes `TwoFactorAdminSite`: with
    APPEASE_SUPERVISOR_2FA on, it asks for a one-time password from an authenticator app
    (django-otp's TOTP) at login and lets in only a session verified by one."""
    from django.contrib import admin

    from appease.admin_site import TwoFactorAdminSite

    admin.site.__class__ = TwoFactorAdminSite
