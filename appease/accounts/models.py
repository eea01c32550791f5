"""How the identity provider's groups become Appease roles and teams."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from appease.core.roles import CSR, SUPERVISOR
from appease.issuance.models import Team


class GroupMapping(models.Model):
    """One identity-provider group and what its members get here: a role, a team, or
    both. Read at every single sign-on, so a change applies at each person's next login."""

    class Role(models.TextChoices):
        CSR = CSR, _("CSR")
        SUPERVISOR = SUPERVISOR, _("Supervisor")

    idp_group = models.CharField(
        _("identity provider group"),
        max_length=200,
        unique=True,
        help_text=_("The group's name (or id) exactly as the provider sends it in the groups claim."),
    )
    role = models.CharField(_("role"), max_length=20, choices=Role.choices, blank=True)
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.CASCADE, related_name="+", verbose_name=_("team")
    )

    class Meta:
        verbose_name = _("group mapping")
        verbose_name_plural = _("group mappings")
        ordering = ["idp_group"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(role="") | Q(team__isnull=False), name="accounts_groupmapping_role_or_team"
            ),
        ]

    def __str__(self) -> str:
        return self.idp_group
