"""Configuration changes made by supervisors (limits, offers, reason codes), audited."""

from __future__ import annotations

from django.db import models, transaction

from appease.core.audit import audit_event_record, roles_changed_event, snapshot
from appease.core.context import Actor


def config_snapshot(obj: models.Model) -> dict | None:
    """The row as stored now, before a change (None for a new row)."""
    if obj.pk is None:
        return None
    stored = type(obj)._default_manager.filter(pk=obj.pk).first()
    return snapshot(stored) if stored is not None else None


@transaction.atomic
def config_object_save(
    *, actor: Actor, obj: models.Model, before: dict | None, update_fields: list[str] | None = None
) -> models.Model:
    """`update_fields` leaves the others alone: counters that services update
    concurrently must not be overwritten by a form loaded before they moved."""
    obj.save(update_fields=update_fields if before is not None else None)
    action = f"{obj._meta.model_name}.{'change' if before is not None else 'create'}"
    audit_event_record(actor=actor, action=action, obj=obj, before=before, after=snapshot(obj))
    return obj


@transaction.atomic
def config_object_delete(*, actor: Actor, obj: models.Model) -> None:
    before = snapshot(obj)
    audit_event_record(actor=actor, action=f"{obj._meta.model_name}.delete", obj=obj, before=before)
    obj.delete()


@transaction.atomic
def config_relations_audit(*, actor: Actor, obj: models.Model, before: dict | None) -> None:
    """After many-to-many fields or inlines changed: one more audit row with the result."""
    audit_event_record(
        actor=actor, action=f"{obj._meta.model_name}.change", obj=obj, before=before, after=snapshot(obj)
    )


@transaction.atomic
def roles_change_audit(*, actor: Actor, obj: models.Model, action: str, before: dict | None, after: dict | None):
    """A role grant or a credential (a user's groups, flags and permissions, a group's
    permissions, an API key) created, changed, revoked or deleted: written where the
    admin saved it, in its transaction (docs/deploy.md, "Security in production")."""
    return roles_changed_event(actor=actor, obj=obj, action=action, before=before, after=after)
