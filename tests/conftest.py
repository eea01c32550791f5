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


def _one_request_at_a_time_on_sqlite() -> None:
    """On SQLite the test database is in memory, and the live server's request threads
    share its one connection (Django hands it over): two requests at once, as a page
    that loads blocks while the rep gives makes, misuse it ("bad parameter or other API
    misuse", a 500 no real deployment can have). The application then handles one
    request at a time; the server's threads still read and write sockets in parallel (a
    browser's idle preconnection must not hold the server). PostgreSQL runs are as is."""
    import threading

    from django.core.handlers.wsgi import WSGIHandler

    lock = threading.Lock()
    handle = WSGIHandler.__call__

    def one_at_a_time(self, environ, start_response):
        with lock:
            return handle(self, environ, start_response)

    WSGIHandler.__call__ = one_at_a_time


if not ON_POSTGRES:
    _one_request_at_a_time_on_sqlite()


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


@pytest.fixture(scope="session")
def chromium():
    """One headless Chromium for the whole run, shared by tests/browser and tests/journeys:
    Playwright's sync API runs an event loop in this thread, so a second `sync_playwright()`
    started while the first is alive fails ("Sync API inside the asyncio loop")."""
    import os
    import shutil

    from tests.browser.conftest import CHROMIUM, _launch

    if not shutil.which(CHROMIUM):
        pytest.skip(f"needs Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)")
    from playwright.sync_api import sync_playwright

    # The ORM calls the tests make between browser steps are plain synchronous code all
    # the same, while Playwright's loop runs in this thread.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        yield from _launch(sync_playwright)
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


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
