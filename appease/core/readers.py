"""Mail to staff in each reader's own language and time zone.

A digest or an alert is rendered once per (language, time zone) of its recipients, with
both activated, so a supervisor in São Paulo reads Portuguese and São Paulo times and
one in Madrid Spanish and Madrid times. An address with no staff profile (a team's
mailing list) reads the shop's defaults: LANGUAGE_CODE and TIME_ZONE.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from django.conf import settings
from django.utils import timezone, translation

# Where a reader's language and time zone are kept (the staff profile, in the issuance
# app) is that app's business: it registers the look-up when it is ready, so the kernel
# imports no app. Without one, every reader gets the shop's defaults.
PreferencesLookup = Callable[[list[str]], dict[str, tuple[str, str]]]
_preferences_lookup: PreferencesLookup | None = None


def preferences_lookup_register(lookup: PreferencesLookup) -> None:
    """`lookup(emails)` answers {lowercased email: (language, time zone)} for the active
    staff among them; missing or empty values mean the defaults."""
    global _preferences_lookup
    _preferences_lookup = lookup


def readers_by_locale(emails: Iterable[str]) -> dict[tuple[str, str], list[str]]:
    """The addresses grouped by their owner's (language, time zone), defaults filled in;
    in the order given."""
    emails = list(dict.fromkeys(emails))
    preferences = _preferences_lookup(emails) if _preferences_lookup is not None else {}
    groups: dict[tuple[str, str], list[str]] = {}
    for email in emails:
        language, zone = preferences.get(email.lower(), ("", ""))
        groups.setdefault((language or settings.LANGUAGE_CODE, _zone_name(zone)), []).append(email)
    return groups


def _zone_name(name: str) -> str:
    try:
        return str(zoneinfo.ZoneInfo(name)) if name else settings.TIME_ZONE
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return settings.TIME_ZONE


@contextmanager
def reading_as(language: str, zone: str) -> Iterator[None]:
    """Translations and local times for one reader while the body is rendered."""
    with translation.override(language), timezone.override(zoneinfo.ZoneInfo(zone)):
        yield
