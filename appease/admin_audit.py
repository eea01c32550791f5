"""Admin base classes: audited configuration, and read-only records."""

from __future__ import annotations

from django.contrib import admin

from appease.context import Actor
from appease.services.config import (
    config_object_delete,
    config_object_save,
    config_relations_audit,
    config_snapshot,
)


class AuditedAdminMixin:
    """Every add, change and delete in this admin is written to the audit log, in the
    same transaction, with before and after."""

    def save_model(self, request, obj, form, change):
        config_object_save(actor=Actor.from_request(request), obj=obj, before=config_snapshot(obj) if change else None)

    def delete_model(self, request, obj):
        config_object_delete(actor=Actor.from_request(request), obj=obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            config_object_delete(actor=Actor.from_request(request), obj=obj)

    def save_related(self, request, form, formsets, change):
        m2m_before = {name: set(getattr(form.instance, name).all()) for name in self._m2m_names(form)} if change else {}
        super().save_related(request, form, formsets, change)
        changed = any(set(getattr(form.instance, name).all()) != old for name, old in m2m_before.items())
        if changed or (not change and self._m2m_names(form)):
            config_relations_audit(
                actor=Actor.from_request(request),
                obj=form.instance,
                before={name: sorted(item.pk for item in old) for name, old in m2m_before.items()} or None,
            )

    @staticmethod
    def _m2m_names(form) -> list[str]:
        return [field.name for field in form.instance._meta.many_to_many if field.name in form.fields]

    def save_formset(self, request, form, formset, change):
        actor = Actor.from_request(request)
        instances = formset.save(commit=False)
        for obj in formset.deleted_objects:
            config_object_delete(actor=actor, obj=obj)
        for instance in instances:
            config_object_save(actor=actor, obj=instance, before=config_snapshot(instance))
        formset.save_m2m()


class AuditedModelAdmin(AuditedAdminMixin, admin.ModelAdmin):
    pass


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written only by services (ledgers, logs, issuances): nobody adds, edits
    or deletes them here; actions may still call services."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
