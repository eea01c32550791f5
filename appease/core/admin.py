"""Admin base classes (audited configuration, read-only records) and the kernel's own
admin: the audit log, users and groups (role grants audited), staff API keys."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.utils.translation import gettext_lazy as _
from rest_framework_api_key.admin import APIKeyModelAdmin

from appease.core.audit import api_key_snapshot, group_roles_snapshot, user_roles_snapshot
from appease.core.config import (
    config_object_delete,
    config_object_save,
    config_relations_audit,
    config_snapshot,
    roles_change_audit,
)
from appease.core.context import Actor
from appease.core.models import AuditEvent, StaffAPIKey
from appease.core.scopes import STAFF, VOCABULARIES, scope_choices


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


class AuditedRolesMixin:
    """For who-may-do-what (users, groups, API keys): every add, change and delete is
    audited with `audit_snapshot(obj)` before and after, the after taken once the form's
    many-to-many fields (groups, permissions) are saved, in the admin's transaction."""

    @staticmethod
    def audit_snapshot(obj) -> dict:
        raise NotImplementedError

    def audit_action(self, obj, before: dict | None, after: dict) -> str:
        return f"{obj._meta.model_name}.{'create' if before is None else 'change'}"

    def save_model(self, request, obj, form, change):
        stored = type(obj)._default_manager.filter(pk=obj.pk).first() if change else None
        # Kept on the request: the admin instance is shared by every thread.
        request._roles_before = self.audit_snapshot(stored) if stored is not None else None
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        before, after = getattr(request, "_roles_before", None), self.audit_snapshot(form.instance)
        if before != after:
            action = self.audit_action(form.instance, before, after)
            roles_change_audit(
                actor=Actor.from_request(request), obj=form.instance, action=action, before=before, after=after
            )

    def delete_model(self, request, obj):
        self._audit_delete(request, obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self._audit_delete(request, obj)
        super().delete_queryset(request, queryset)

    def _audit_delete(self, request, obj) -> None:
        action = f"{obj._meta.model_name}.delete"
        roles_change_audit(
            actor=Actor.from_request(request), obj=obj, action=action, before=self.audit_snapshot(obj), after=None
        )


class AuditedAPIKeyMixin(AuditedRolesMixin):
    """API keys: created, revoked (the library's one-way switch), changed, deleted."""

    @staticmethod
    def audit_snapshot(obj) -> dict:
        return api_key_snapshot(obj)

    def audit_action(self, obj, before: dict | None, after: dict) -> str:
        if before is not None and after["revoked"] and not before["revoked"]:
            return f"{obj._meta.model_name}.revoke"
        return super().audit_action(obj, before, after)


def scoped_key_form(key_model, kind: str, owner: str) -> type[forms.ModelForm]:
    """The API key's admin form: its scopes as one checkbox each, labelled in the
    administrator's language (the model keeps a JSON list)."""
    field = key_model._meta.get_field("scopes")

    class ScopedKeyForm(forms.ModelForm):
        scopes = forms.MultipleChoiceField(
            label=field.verbose_name,
            help_text=field.help_text,
            choices=lambda: scope_choices(kind),
            widget=forms.CheckboxSelectMultiple,
            required=False,
            initial=field.default,  # a new key: every scope of its kind, untick what it does not need
        )

        class Meta:
            model = key_model
            fields = ["name", owner, "scopes", "expiry_date", "revoked"]

        def clean_scopes(self) -> list[str]:
            chosen = set(self.cleaned_data["scopes"])
            return [scope for scope in VOCABULARIES[kind] if scope in chosen]  # the vocabulary's order

    ScopedKeyForm.__name__ = ScopedKeyForm.__qualname__ = f"{key_model.__name__}Form"
    return ScopedKeyForm


class ScopedKeyAdminMixin:
    """The scopes in the list of keys, in the administrator's language."""

    @admin.display(description=_("scopes"))
    def scopes_shown(self, obj) -> str:
        return ", ".join(obj.scopes or []) or "—"


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written only by services (ledgers, logs, issuances): nobody adds, edits
    or deletes them here; actions may still call services."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """The audit log: visible to supervisors, editable by nobody."""

    list_display = ["created_at", "actor_label", "action", "object_type", "object_id", "ip", "request_id"]
    list_filter = ["action", "object_type"]
    search_fields = ["object_id", "actor_label", "request_id"]
    readonly_fields = [field.name for field in AuditEvent._meta.fields]
    show_full_result_count = False


# Who made whom a supervisor: role grants are audited like every configuration change.
admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class AuditedUserAdmin(AuditedRolesMixin, UserAdmin):
    @staticmethod
    def audit_snapshot(obj) -> dict:
        return user_roles_snapshot(obj)


@admin.register(Group)
class AuditedGroupAdmin(AuditedRolesMixin, GroupAdmin):
    @staticmethod
    def audit_snapshot(obj) -> dict:
        return group_roles_snapshot(obj)


@admin.register(StaffAPIKey)
class StaffAPIKeyAdmin(ScopedKeyAdminMixin, AuditedAPIKeyMixin, APIKeyModelAdmin):
    form = scoped_key_form(StaffAPIKey, STAFF, owner="user")
    list_display = [*APIKeyModelAdmin.list_display, "user", "scopes_shown"]
    search_fields = [*APIKeyModelAdmin.search_fields, "user__username"]
    autocomplete_fields = ["user"]
