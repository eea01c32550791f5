"""Triage, all edited by supervisors in the admin: whose each incident type is
(`OwnerTeam`, `IncidentProfile`), which words reveal it or anger (`KeywordRule`), and
the priority bands with their service-level targets (`PriorityLevel`)."""

from __future__ import annotations

from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from appease.issuance.models.customers import IncidentType
from feedback.models.choices import LANGUAGES, Priority


class OwnerTeam(models.Model):
    """The team that fixes the cause (logistics, billing, product…), not the rep who
    appeases. It gets a periodic digest of its top issues."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    digest_emails = models.TextField(
        _("digest recipients"), blank=True, help_text=_("Email addresses, one per line, that get the digest.")
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("owning team")
        verbose_name_plural = _("owning teams")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def recipients(self) -> list[str]:
        return [line.strip() for line in self.digest_emails.splitlines() if line.strip()]


class IncidentProfile(models.Model):
    """How much an incident type weighs in the priority score, and whose it is."""

    incident_type = models.CharField(_("incident type"), max_length=20, choices=IncidentType.choices, unique=True)
    impact_weight = models.PositiveSmallIntegerField(
        _("impact weight"),
        default=20,
        validators=[MaxValueValidator(50)],
        help_text=_("Points this incident type adds to the priority score (0–50)."),
    )
    owner_team = models.ForeignKey(
        OwnerTeam,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="incident_profiles",
        verbose_name=_("owner team"),
    )

    class Meta:
        verbose_name = _("incident profile")
        verbose_name_plural = _("incident profiles")
        ordering = ["incident_type"]

    def __str__(self) -> str:
        return self.get_incident_type_display()


class KeywordRule(models.Model):
    """Words that reveal an incident type, or anger, in one language."""

    class Kind(models.TextChoices):
        INCIDENT = "incident", _("Incident type")
        ANGER = "anger", _("Anger")

    language = models.CharField(_("language"), max_length=10, choices=LANGUAGES)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.INCIDENT)
    incident_type = models.CharField(
        _("incident type"), max_length=20, choices=IncidentType.choices, blank=True, help_text=_("For incident rules.")
    )
    keywords = models.TextField(
        _("keywords"),
        help_text=_("One word or phrase per line. Matching ignores case and accents; a phrase matches whole words."),
    )
    weight = models.PositiveSmallIntegerField(
        _("weight"), default=1, help_text=_("Each matching keyword counts this many times.")
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("keyword rule")
        verbose_name_plural = _("keyword rules")
        ordering = ["language", "kind", "incident_type"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="anger", incident_type="") | (Q(kind="incident") & ~Q(incident_type="")),
                name="keyword_rule_kind_matches_type",
            )
        ]

    def __str__(self) -> str:
        target = self.get_incident_type_display() if self.kind == self.Kind.INCIDENT else self.get_kind_display()
        return f"{self.language}: {target}"

    @property
    def keyword_list(self) -> list[str]:
        return [line.strip() for line in self.keywords.splitlines() if line.strip()]


class PriorityLevel(models.Model):
    """A band of priority scores, and its service-level targets.

    The highest band whose `min_score` a case reaches is its priority. Feedback in a
    band that does not `create_case` is acknowledged automatically.
    """

    priority = models.CharField(_("priority"), max_length=10, choices=Priority.choices, unique=True)
    min_score = models.PositiveSmallIntegerField(_("minimum score"))
    creates_case = models.BooleanField(
        _("creates a case"), default=True, help_text=_("Off: feedback in this band is acknowledged automatically.")
    )
    first_response_seconds = models.PositiveIntegerField(_("first response within (seconds)"))
    resolution_seconds = models.PositiveIntegerField(_("resolution within (seconds)"))
    business_hours_only = models.BooleanField(
        _("business hours only"), default=True, help_text=_("Off: the clock runs around the clock.")
    )

    class Meta:
        verbose_name = _("priority level")
        verbose_name_plural = _("priority levels")
        ordering = ["-min_score"]

    def __str__(self) -> str:
        return self.get_priority_display()
