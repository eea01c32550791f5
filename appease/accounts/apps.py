from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    """Staff accounts: single sign-on (OpenID Connect) with the identity provider's groups
    mapped to roles and teams, password reset by email, and the staff CSV import."""

    name = "appease.accounts"
    label = "accounts"
    verbose_name = _("Staff accounts")
