"""Who made whom a supervisor: role grants (users' groups, flags and permissions, groups'
permissions), merchant API keys and staff tokens, created, changed, revoked or deleted in
the admin, are in the append-only audit with before and after (not only in Django's
editable admin log). Every change here is a real admin form post."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Group, Permission, User

from appease.core.models import AuditEvent, StaffAPIKey
from coupons.models import Merchant, MerchantAPIKey
from tests.factories import staff_user

pytestmark = pytest.mark.django_db


def form_data(response) -> dict:
    """The admin form on `response` as the browser would post it back, unchanged."""
    form = response.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        if field.disabled:
            continue
        value = form[name].value()
        widget = field.widget
        if getattr(widget, "widgets", None) and hasattr(widget, "decompress"):  # split date and time
            parts = widget.decompress(value)
            for index, part in enumerate(parts):
                data[f"{name}_{index}"] = "" if part is None else str(part)
        elif isinstance(value, bool):
            if value:
                data[name] = "on"
        elif isinstance(value, list | tuple):
            data[name] = [str(item) for item in value]
        elif value is not None:
            data[name] = str(value)
    return data


def change(admin_client, url: str, **changes):
    data = {**form_data(admin_client.get(url)), **changes}
    response = admin_client.post(url, {k: v for k, v in data.items() if v is not None})
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    return response


def only_event(action: str) -> AuditEvent:
    events = AuditEvent.objects.filter(action=action)
    assert events.count() == 1, list(AuditEvent.objects.values_list("action", flat=True))
    return events.get()


def no_secrets(event: AuditEvent) -> None:
    text = json.dumps([event.before, event.after])
    assert "pbkdf2" not in text and "md5$" not in text and "hashed_key" not in text and "password" not in text


def test_making_a_rep_a_supervisor_is_audited_with_before_and_after(admin_client):
    # given: a rep
    rep = staff_user("CSR", username="rita")
    supervisor = Group.objects.get(name="Supervisor")
    admin = User.objects.get(username="admin")

    # when: an administrator moves her to the supervisors and makes her staff
    change(admin_client, f"/admin/auth/user/{rep.pk}/change/", groups=[str(supervisor.pk)], is_staff="on")

    # then
    event = only_event("user.change")
    assert (event.object_type, event.object_id) == ("auth.user", str(rep.pk))
    assert event.actor == admin and event.actor_label == "user:admin"
    assert (event.before["groups"], event.after["groups"]) == (["CSR"], ["Supervisor"])
    assert (event.before["is_staff"], event.after["is_staff"]) == (False, True)
    no_secrets(event)


def test_superuser_and_own_permissions_granted_and_taken_back_are_audited(admin_client):
    rep = staff_user("CSR", username="sam")
    permission = Permission.objects.get(codename="change_limitpolicy")
    url = f"/admin/auth/user/{rep.pk}/change/"

    change(admin_client, url, is_superuser="on", user_permissions=[str(permission.pk)])
    change(admin_client, url, is_superuser=None, user_permissions=[])

    granted, revoked = AuditEvent.objects.filter(action="user.change").order_by("id")
    assert (granted.before["is_superuser"], granted.after["is_superuser"]) == (False, True)
    assert granted.after["user_permissions"] == ["appease.change_limitpolicy"]
    assert (revoked.before["is_superuser"], revoked.after["is_superuser"]) == (True, False)
    assert revoked.after["user_permissions"] == []


def test_a_form_saved_unchanged_writes_no_audit_row(admin_client):
    rep = staff_user("CSR", username="ulla")

    change(admin_client, f"/admin/auth/user/{rep.pk}/change/")

    assert not AuditEvent.objects.filter(object_type="auth.user").exists()


def test_users_created_and_deleted_in_the_admin_are_audited(admin_client):
    created = admin_client.post(
        "/admin/auth/user/add/",
        {
            "username": "newbie",
            "password1": "a-Long-pass-9876",
            "password2": "a-Long-pass-9876",
            "usable_password": "true",
        },
    )
    assert created.status_code == 302
    user = User.objects.get(username="newbie")
    deleted = admin_client.post(f"/admin/auth/user/{user.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302

    create, delete = only_event("user.create"), only_event("user.delete")
    assert create.before is None and create.after["username"] == "newbie" and create.after["groups"] == []
    assert delete.before["username"] == "newbie" and delete.after is None
    no_secrets(create)


def test_a_groups_permissions_are_audited(admin_client):
    # given: the CSR group
    group = Group.objects.get(name="CSR")
    before = sorted(group.permissions.values_list("pk", flat=True))
    extra = Permission.objects.get(codename="delete_customer")

    # when: an administrator adds a permission to it
    change(admin_client, f"/admin/auth/group/{group.pk}/change/", permissions=[str(pk) for pk in [*before, extra.pk]])

    # then
    event = only_event("group.change")
    assert event.object_id == str(group.pk)
    assert "appease.delete_customer" not in event.before["permissions"]
    assert set(event.after["permissions"]) - set(event.before["permissions"]) == {"appease.delete_customer"}


def test_groups_created_and_deleted_are_audited(admin_client):
    permission = Permission.objects.get(codename="view_customer")
    assert (
        admin_client.post("/admin/auth/group/add/", {"name": "Auditors", "permissions": [permission.pk]}).status_code
        == 302
    )
    group = Group.objects.get(name="Auditors")
    assert admin_client.post(f"/admin/auth/group/{group.pk}/delete/", {"post": "yes"}).status_code == 302

    assert only_event("group.create").after == {"name": "Auditors", "permissions": ["appease.view_customer"]}
    assert only_event("group.delete").before["name"] == "Auditors"


def test_merchant_api_keys_created_revoked_and_deleted_are_audited(admin_client):
    merchant = Merchant.objects.create(name="Casa Verde")

    # when: a key is created, revoked, then deleted, in the admin
    created = admin_client.post(
        "/admin/coupons/merchantapikey/add/",
        {"name": "checkout", "merchant": merchant.pk, "scopes": ["validate", "redeem"]},
    )
    assert created.status_code == 302
    key = MerchantAPIKey.objects.get()
    change(admin_client, f"/admin/coupons/merchantapikey/{key.pk}/change/", scopes=["validate"])
    change(admin_client, f"/admin/coupons/merchantapikey/{key.pk}/change/", revoked="on")
    assert admin_client.post(f"/admin/coupons/merchantapikey/{key.pk}/delete/", {"post": "yes"}).status_code == 302

    # then: named by its prefix, never its hash
    create, revoke, delete = (only_event(f"merchantapikey.{a}") for a in ("create", "revoke", "delete"))
    assert create.object_id == key.prefix and create.object_type == "coupons.merchantapikey"
    assert create.after == {
        "name": "checkout",
        "prefix": key.prefix,
        "merchant": merchant.pk,
        "scopes": ["validate", "redeem"],
        "expiry_date": None,
        "revoked": False,
    }
    narrowed = only_event("merchantapikey.change")  # who took a scope away, and which
    assert (narrowed.before["scopes"], narrowed.after["scopes"]) == (["validate", "redeem"], ["validate"])
    assert (revoke.before["revoked"], revoke.after["revoked"]) == (False, True)
    assert delete.before["revoked"] is True and delete.after is None
    for event in (create, revoke, delete):
        no_secrets(event)
        assert key.hashed_key not in json.dumps([event.before, event.after])


def test_staff_tokens_created_and_revoked_are_audited(admin_client):
    rep = staff_user("CSR", username="tom")

    assert admin_client.post("/admin/core/staffapikey/add/", {"name": "crm", "user": rep.pk}).status_code == 302
    token = StaffAPIKey.objects.get()
    change(admin_client, f"/admin/core/staffapikey/{token.pk}/change/", revoked="on")

    create, revoke = only_event("staffapikey.create"), only_event("staffapikey.revoke")
    assert create.object_id == token.prefix and create.after["user"] == rep.pk
    assert (revoke.before["revoked"], revoke.after["revoked"]) == (False, True)
    no_secrets(create)
