"""The roles have every permission they name after a migrate and after a flush (what a
transactional test's teardown runs), with roles_sync run once per migrate, for the last
app (appease/core/apps.py), instead of once per app."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from appease.core.roles import ROLE_PERMISSIONS


def _role_permissions() -> dict[str, set[str]]:
    roles = Group.objects.filter(name__in=ROLE_PERMISSIONS).prefetch_related("permissions__content_type")
    return {role.name: {f"{p.content_type.app_label}.{p.codename}" for p in role.permissions.all()} for role in roles}


def _wanted() -> dict[str, set[str]]:
    return {role: set(perms) for role, perms in ROLE_PERMISSIONS.items()}


@pytest.mark.django_db
def test_after_migrate_every_role_has_every_permission_it_names():
    assert _role_permissions() == _wanted()


@pytest.mark.django_db(transaction=True)
def test_after_a_flush_every_role_has_every_permission_it_names():
    # given: the roles emptied, as a flush leaves them before post_migrate
    Group.objects.filter(name__in=ROLE_PERMISSIONS).delete()
    # when
    call_command("flush", interactive=False, verbosity=0)
    # then
    assert _role_permissions() == _wanted()
