from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    """The kernel: errors, money, the actor, the audit log, idempotency, rate limits, roles,
    API plumbing and privacy orchestration. It imports no other app of ours."""

    name = "appease.core"
    label = "core"
    verbose_name = _("Core")

    def ready(self) -> None:
        from appease.core import checks, schema  # noqa: F401  (registers system checks, the OpenAPI token scheme)
        from appease.core.roles import roles_sync

        # Setup, not domain flow: permissions exist only after migrate has run. post_migrate
        # is sent once per app, and each role's permissions are set whole, so it runs once,
        # for the last app (every app's permissions made): not ~40 times a migrate, nor a
        # flush (the teardown of every transactional test).
        def roles_sync_after_the_last_app(sender, **kwargs) -> None:
            from django.apps import apps

            with_models = [config for config in apps.get_app_configs() if config.models_module is not None]
            if with_models and sender is with_models[-1]:
                roles_sync(sender=sender, **kwargs)

        post_migrate.connect(roles_sync_after_the_last_app, weak=False, dispatch_uid="appease.roles_sync")
        admin_two_factor()


def admin_two_factor() -> None:
    """The admin (and the reports in it) becomes `TwoFactorAdminSite`: with
    APPEASE_SUPERVISOR_2FA on, it asks for a one-time password from an authenticator app
    (django-otp's TOTP) at login and lets in only a session verified by one."""
    from django.contrib import admin

    from appease.core.admin_site import TwoFactorAdminSite

    admin.site.__class__ = TwoFactorAdminSite
