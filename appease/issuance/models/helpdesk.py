"""Helpdesk integrations: a helpdesk's app opens the sidebar with a launch token signed
with the integration's shared secret (docs/integrations.md, "The helpdesk sidebar")."""

from __future__ import annotations

import re
import secrets

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

# An origin a helpdesk frames us from, as CSP `frame-ancestors` takes it: a scheme, a
# host (its leftmost label may be `*`, e.g. https://*.zendesk.com) and an optional port.
# Plain http only for the local machine (a helpdesk's local app server while developing).
_ORIGIN = re.compile(r"^https://(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$")
_LOOPBACK = re.compile(r"^http://(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?$")


def frame_ancestors_parse(text: str) -> list[str]:
    """The origins of `text`, one a line (blank lines skipped); ValidationError naming
    the first that is not an origin. Strict on purpose: they go into a response header."""
    origins = []
    for line in (text or "").splitlines():
        origin = line.strip().rstrip("/").lower()
        if not origin:
            continue
        if not (_ORIGIN.match(origin) or _LOOPBACK.match(origin)):
            raise ValidationError(
                _("“%(origin)s” is not an origin such as https://example.zendesk.com or https://*.zendesk.com."),
                params={"origin": line.strip()[:100]},
                code="invalid_origin",
            )
        origins.append(origin)
    return origins


def validate_frame_ancestors(text: str) -> None:
    frame_ancestors_parse(text)


def secret_generate() -> str:
    return secrets.token_urlsafe(48)


class HelpdeskIntegration(models.Model):
    """One helpdesk app that may open the sidebar. Its shared secret verifies the launch
    token's HMAC, so it is stored as it is (a hash could not verify a signature); it is
    shown once, when made or rotated, never in a form or the audit log (not editable)."""

    class Kind(models.TextChoices):
        ZENDESK = "zendesk", _("Zendesk")
        FRESHDESK = "freshdesk", _("Freshdesk")
        INTERCOM = "intercom", _("Intercom")
        SALESFORCE = "salesforce", _("Salesforce")
        OTHER = "other", _("Other")

    name = models.CharField(_("name"), max_length=100, unique=True)
    kind = models.CharField(_("helpdesk"), max_length=20, choices=Kind.choices, default=Kind.OTHER)
    key_id = models.SlugField(
        _("key id"),
        max_length=50,
        unique=True,
        help_text=_("The launch token's issuer (its “iss” claim): tells which integration's secret signed it."),
    )
    secret = models.CharField(_("shared secret"), max_length=128, editable=False, default=secret_generate)
    frame_ancestors = models.TextField(
        _("allowed frame ancestors"),
        blank=True,
        validators=[validate_frame_ancestors],
        help_text=_(
            "The helpdesk's origins that may show the sidebar in a frame, one a line, "
            "e.g. https://example.zendesk.com or https://*.zendesk.com."
        ),
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    secret_rotated_at = models.DateTimeField(_("secret rotated"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("helpdesk integration")
        verbose_name_plural = _("helpdesk integrations")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def frame_ancestor_origins(self) -> list[str]:
        try:
            return frame_ancestors_parse(self.frame_ancestors)
        except ValidationError:
            return []  # saved around the form (a shell): frame nowhere rather than anywhere


class HelpdeskLaunch(models.Model):
    """A launch token's id (`jti`), kept until the token expires: a second launch with
    it is a replay and is refused (the unique constraint decides, under any race)."""

    integration = models.ForeignKey(
        HelpdeskIntegration, on_delete=models.CASCADE, related_name="+", verbose_name=_("helpdesk integration")
    )
    jti = models.CharField(_("token id"), max_length=128)
    expires_at = models.DateTimeField(_("expires at"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("sidebar launch")
        verbose_name_plural = _("sidebar launches")
        constraints = [models.UniqueConstraint(fields=["integration", "jti"], name="helpdesk_launch_jti_once")]
        indexes = [models.Index(fields=["expires_at"], name="helpdesk_launch_expiry_idx")]

    def __str__(self) -> str:
        return self.jti
