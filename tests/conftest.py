"""Shared fixtures. Fast by default (SQLite, MD5 hasher, locmem cache); PostgreSQL and
Redis when DATABASE_URL / REDIS_URL point at them (as `.ci/run` does)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.cache import cache
from django.utils import translation
from rest_framework.test import APIClient

from tests.factories import merchant_with_key

ON_POSTGRES = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
ON_REDIS = settings.CACHES["default"]["BACKEND"].endswith("RedisCache")


def pytest_collection_modifyitems(config, items):
    skip_pg = pytest.mark.skip(
        reason="needs PostgreSQL: row locks and real concurrency mean nothing on SQLite "
        "(run with DATABASE_URL=postgres://…, as .ci/run does)"
    )
    skip_redis = pytest.mark.skip(reason="needs Redis (run with REDIS_URL=redis://…, as .ci/run does)")
    for item in items:
        if "postgres" in item.keywords and not ON_POSTGRES:
            item.add_marker(skip_pg)
        if "redis" in item.keywords and not ON_REDIS:
            item.add_marker(skip_redis)


@pytest.fixture(autouse=True)
def _fast_and_isolated(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    yield
    cache.clear()
    # A request with Accept-Language leaves its language active in this thread
    # (LocaleMiddleware activates, nothing deactivates): the next test starts in English.
    translation.deactivate()


@pytest.fixture
def merchant_key(db):
    """(merchant, plaintext API key)."""
    return merchant_with_key()


@pytest.fixture
def api(merchant_key):
    """An API client authenticated as a merchant."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {merchant_key[1]}")
    return client
