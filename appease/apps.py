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
