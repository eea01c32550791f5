"""Plotly figures carry inline scripts: give them the request's CSP nonce."""

import re

from django import template
from django.utils.safestring import mark_safe
from django.utils.translation import gettext

from appease.issuance.selectors import IssuanceStatus

register = template.Library()
SCRIPT = re.compile(r"<script(?=[\s>])")


@register.filter
def nonced(html: str, nonce) -> str:
    """Figure HTML from reporting.charts (ours, trusted) with `nonce` on its scripts."""
    return mark_safe(SCRIPT.sub(f'<script nonce="{nonce}"', str(html)))  # noqa: S308


@register.filter
def issuance_status(issuance) -> str:
    """What became of an issuance, in the reader's language (redeemed, if its code was)."""

    status = issuance.effective_status
    if status == "redeemed":
        return gettext("Redeemed")
    return str(dict(IssuanceStatus.choices).get(status, status))


@register.filter
def percent(share) -> str:
    """A share (0 to 1) as a whole percentage, or a dash when there is none."""
    if share is None:
        return "—"
    return f"{round(float(share) * 100)}%"
