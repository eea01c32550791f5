"""Helpers shared by the coupons management commands."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from tqdm import tqdm

from coupons.models import Offer


def offer_from_option(value: str) -> Offer:
    """The offer named by `--offer`: its id, or else its exact name."""
    offer = None
    if value.isdigit():
        offer = Offer.objects.filter(pk=int(value)).first()
    if offer is None:
        offer = Offer.objects.filter(name=value).first()
    if offer is None:
        raise CommandError(_("No offer has the id or name %(offer)r.") % {"offer": value})
    return offer


def progress_bar(command: BaseCommand, *, total: int | None, verbosity: int) -> tqdm:
    """A progress bar of codes on the command's stderr; silent when that is not a terminal."""
    return tqdm(
        total=total,
        unit=_("codes"),
        unit_scale=True,
        # The raw stream: the command's OutputWrapper appends a newline to every write,
        # which would break the bar's in-place redraws.
        file=command.stderr._out,
        # None: shown on a terminal, hidden in cron mail and logs.
        disable=True if verbosity < 1 else None,
    )
