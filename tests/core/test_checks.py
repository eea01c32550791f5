"""Our deployment checks (appease/core/checks.py): each one speaks when, and only when, its
demo default reaches production."""

from __future__ import annotations

import warnings

import pytest

from appease import settings as defaults
from appease.core.checks import production_settings_check, shared_cache_check


@pytest.fixture
def production(settings):
    """Settings as the example production environment has them."""
    settings.DEBUG = False
    settings.SECRET_KEY = "k3Yq-9vLm" * 7
    settings.CODE_HASH_KEY = "h" * 40
    settings.CODE_ENCRYPTION_KEYS = ["a" * 43 + "="]
    # The check reads settings.DATABASES; the open connections keep theirs (hence
    # Django's warning about overriding it, which does not apply here).
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Overriding setting DATABASES", UserWarning)
        settings.DATABASES = {
            **settings.DATABASES,
            "default": {**settings.DATABASES["default"], "ENGINE": "django.db.backends.postgresql"},
        }
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/0"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://"}}
    settings.METRICS_TOKEN = "t" * 32
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.PUBLIC_URL = "https://appease.example.com"
    return settings


def ids() -> list[str]:
    return [problem.id for problem in production_settings_check(None) + shared_cache_check(None)]


def test_production_settings_raise_nothing(production):
    # given production settings, when the checks run, then they say nothing
    assert ids() == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"DEBUG": True}, "appease.E001"),
        ({"SECRET_KEY": defaults.DEMO_SECRET_KEY}, "appease.E002"),
        ({"CODE_HASH_KEY": defaults.DEMO_CODE_HASH_KEY}, "appease.E002"),
        ({"CODE_ENCRYPTION_KEYS": ["a" * 43 + "=", defaults.DEMO_CODE_ENCRYPTION_KEY]}, "appease.E002"),
        ({"CELERY_BROKER_URL": "filesystem://"}, "appease.E004"),
        ({"CELERY_BROKER_URL": "memory://"}, "appease.E004"),
        ({"METRICS_TOKEN": ""}, "appease.W002"),
        ({"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}, "appease.W003"),
        ({"EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"}, "appease.W003"),
        ({"PUBLIC_URL": "http://127.0.0.1:8000"}, "appease.W004"),
        ({"CACHES": {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}}, "appease.W001"),
    ],
)
def test_each_demo_default_in_production_is_named(production, change, expected):
    # given production settings with one demo default left in
    for name, value in change.items():
        setattr(production, name, value)

    # when the deployment checks run
    # then exactly that check speaks
    assert ids() == [expected]


def test_sqlite_in_production_is_an_error(production):
    # given the SQLite file of the demo
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Overriding setting DATABASES", UserWarning)
        production.DATABASES = {
            **production.DATABASES,
            "default": {**production.DATABASES["default"], "ENGINE": "django.db.backends.sqlite3"},
        }

    # when the deployment checks run
    # then
    assert ids() == ["appease.E003"]


def test_the_demo_keys_are_named_in_the_message(production):
    # given two demo keys left in
    production.SECRET_KEY = defaults.DEMO_SECRET_KEY
    production.CODE_HASH_KEY = defaults.DEMO_CODE_HASH_KEY

    # when the deployment checks run
    (problem,) = production_settings_check(None)

    # then one error names both
    assert "SECRET_KEY, CODE_HASH_KEY" in problem.msg
    assert problem.level >= 40  # an error, not a warning
