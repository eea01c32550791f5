from django.contrib import admin

from appease.accounts.models import GroupMapping
from appease.core.admin import AuditedModelAdmin


@admin.register(GroupMapping)
class GroupMappingAdmin(AuditedModelAdmin):
    """Which identity-provider group gives which role and team. Administrators only (it
    grants roles); every change is in the audit log."""

    list_display = ["idp_group", "role", "team"]
    list_filter = ["role", "team"]
    search_fields = ["idp_group"]
    autocomplete_fields = []
