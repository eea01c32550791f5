"""Typed access to environment variables: the only way settings read the environment.

Every variable may instead be given as a file: `NAME_FILE=/run/secrets/name` reads the
value from that file (its trailing newline dropped), which is how Docker and compose
secrets, systemd's LoadCredential= and Kubernetes secret volumes hand secrets over
without putting them in the environment. Setting both NAME and NAME_FILE is an error.
"""

from __future__ import annotations

import os
from decimal import Decimal

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _get(name: str, default: str | None = None) -> str | None:
    """NAME from the environment, else the contents of the file NAME_FILE names, else `default`."""
    path = os.environ.get(f"{name}_FILE")
    if path is None:
        return os.environ.get(name, default)
    if name in os.environ:
        raise ImproperlyConfigured(f"Set {name} or {name}_FILE, not both.")
    try:
        with open(path, encoding="utf-8") as file:
            return file.read().rstrip("\r\n")
    except OSError as exc:
        raise ImproperlyConfigured(f"{name}_FILE: cannot read {path!r} ({exc.strerror}).") from exc


def env_str(name: str, default: str | None = None) -> str | None:
    return _get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = _get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {raw!r}.")


def env_int(name: str, default: int) -> int:
    raw = _get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}.") from exc


def env_decimal(name: str, default: str) -> Decimal:
    raw = _get(name, default)
    try:
        return Decimal(raw)
    except ArithmeticError as exc:
        raise ImproperlyConfigured(f"{name} must be a decimal number, not {raw!r}.") from exc


def env_float(name: str, default: float) -> float:
    raw = _get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}.") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    """Comma-separated (in a file, one a line works too)."""
    raw = _get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.replace("\n", ",").split(",") if item.strip()]


def env_secret(name: str, *, debug: bool, demo_default: str) -> str:
    """A secret: the demo default is only allowed while DEBUG is on."""
    value = _get(name)
    if value:
        return value
    if debug:
        return demo_default
    raise ImproperlyConfigured(f"{name} must be set when DEBUG is off.")


# The demo's keys: public (they are here), accepted only with DEBUG on, refused by the
# settings otherwise and reported by `manage.py check --deploy` (appease.E002).
DEMO_SECRET_KEY = "demo-insecure-secret-key-do-not-use-in-production"
DEMO_CODE_HASH_KEY = "demo-insecure-code-hash-key"
DEMO_CODE_ENCRYPTION_KEY = "ZGVtby1pbnNlY3VyZS1jb2RlLWVuY3J5cHRpb24ta2U="
