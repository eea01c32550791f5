"""Audit writes. Each appends one row, in the caller's transaction (append-only)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import models
from django.forms.models import model_to_dict

from appease.core.context import Actor
from appease.core.models import AuditEvent


def snapshot(obj: models.Model, fields: list[str] | None = None) -> dict[str, Any]:
    """A JSON-able picture of a row for before/after."""
    data = model_to_dict(obj, fields=fields)
    return {key: _jsonable(value) for key, value in data.items()}


def _jsonable(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        return [_jsonable(item.pk if isinstance(item, models.Model) else item) for item in value]
    if isinstance(value, models.Model):
        return value.pk
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def audit_event_record(
    *, actor: Actor, action: str, obj: models.Model, before: dict | None = None, after: dict | None = None
) -> AuditEvent:
    return AuditEvent.objects.create(
        actor=actor.user,
        actor_label=actor.label[:100],
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        before=before,
        after=after,
        request_id=actor.request_id[:64],
        ip=actor.ip,
    )


def model_changed_event(*, actor: Actor, obj: models.Model, before: dict | None, action: str) -> AuditEvent:
    """A supervisor changed configuration (a limit, an offer, a reason code)."""
    return audit_event_record(actor=actor, action=action, obj=obj, before=before, after=snapshot(obj))


# --- Roles and credentials (who may do what) -------------------------------------------


def _permission_names(permissions) -> list[str]:
    return sorted(f"{p.content_type.app_label}.{p.codename}" for p in permissions.select_related("content_type"))


def user_roles_snapshot(user) -> dict[str, Any]:
    """What a user may do: the flags, groups and own permissions (never the password)."""
    return {
        "username": user.get_username(),
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "groups": sorted(user.groups.values_list("name", flat=True)),
        "user_permissions": _permission_names(user.user_permissions.all()),
    }


def group_roles_snapshot(group) -> dict[str, Any]:
    return {"name": group.name, "permissions": _permission_names(group.permissions.all())}


def api_key_snapshot(key) -> dict[str, Any]:
    """A merchant's or a rep's API key as an auditor needs it: whose, which (its prefix,
    never its hash), and whether it still works."""
    owner = {"merchant": key.merchant_id} if hasattr(key, "merchant_id") else {"user": key.user_id}
    expiry = key.expiry_date.isoformat() if key.expiry_date else None
    return {
        "name": key.name,
        "prefix": key.prefix,
        **owner,
        "scopes": list(key.scopes or []),
        "expiry_date": expiry,
        "revoked": key.revoked,
    }


def roles_changed_event(*, actor: Actor, obj: models.Model, action: str, before: dict | None, after: dict | None):
    """A user's or a group's roles, or an API key, created, changed or deleted. API keys
    are named by their prefix (their primary key holds the key's hash)."""
    object_id = getattr(obj, "prefix", None) or str(obj.pk)
    return AuditEvent.objects.create(
        actor=actor.user,
        actor_label=actor.label[:100],
        action=action,
        object_type=obj._meta.label_lower,
        object_id=object_id,
        before=before,
        after=after,
        request_id=actor.request_id[:64],
        ip=actor.ip,
    )
