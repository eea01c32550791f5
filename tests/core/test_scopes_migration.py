"""The upgrade that brought API key scopes (core 0002, coupons 0008): keys made before
keep every scope of their kind, so no integration that worked stops working.

It migrates the test database back and forth, so it commits (transaction=True) and leaves
the database at the latest migrations whatever happens."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE_SCOPES = [("core", "0001_initial"), ("coupons", "0007_translatable_names")]


def _migrate(targets=None):
    executor = MigrationExecutor(connection)
    executor.migrate(targets or executor.loader.graph.leaf_nodes())
    loader = MigrationExecutor(connection).loader
    return loader.project_state(list(loader.applied_migrations)).apps


@pytest.fixture
def at_the_latest_afterwards():
    yield
    _migrate()


@pytest.mark.django_db(transaction=True)
def test_keys_made_before_scopes_keep_every_scope_of_their_kind(at_the_latest_afterwards):
    # given keys written before scopes existed
    old = _migrate(BEFORE_SCOPES)
    merchant = old.get_model("coupons", "Merchant").objects.create(name="Old shop")
    old.get_model("coupons", "MerchantAPIKey").objects.create(
        id="oldmerch.hash", prefix="oldmerch", hashed_key="hash", name="checkout", merchant=merchant
    )
    user = old.get_model("auth", "User").objects.create(username="old-rep")
    old.get_model("core", "StaffAPIKey").objects.create(
        id="oldstaff.hash", prefix="oldstaff", hashed_key="hash", name="crm", user=user
    )

    # when the database is upgraded
    new = _migrate()

    # then each holds every scope of its kind as it stood then
    merchant_key = new.get_model("coupons", "MerchantAPIKey").objects.get(prefix="oldmerch")
    staff_key = new.get_model("core", "StaffAPIKey").objects.get(prefix="oldstaff")
    assert merchant_key.scopes == ["validate", "redeem", "reverse", "events", "redemptions:read"]
    assert staff_key.scopes == ["issue", "cases", "read", "webhooks"]
