"""Our deployment checks (`manage.py check --deploy`, which `make prod-check` runs and
fails on any warning): what Django's own checks cannot know about this application.

| id | what |
|---|---|
| appease.W001 | the cache is per process (no REDIS_URL): rate limits counted per web process |
| appease.W002 | METRICS_TOKEN is unset: /metrics answers 403 to Prometheus |
| appease.W003 | the email backend does not send mail (console, file, memory, dummy) |
| appease.W004 | PUBLIC_URL is not https: survey links and the widget snippet would be plain HTTP |
| appease.E001 | DEBUG is on |
| appease.E002 | a demo key (SECRET_KEY, CODE_HASH_KEY, CODE_ENCRYPTION_KEYS) is in use |
| appease.E003 | the database is SQLite |
| appease.E004 | the Celery broker is the file system (or memory): one machine only, no worker elsewhere sees it |
"""

from django.conf import settings
from django.core.checks import Error, Warning, register

from appease.core.env import DEMO_CODE_ENCRYPTION_KEY, DEMO_CODE_HASH_KEY, DEMO_SECRET_KEY

NOT_SENDING_EMAIL = ("console.EmailBackend", "filebased.EmailBackend", "locmem.EmailBackend", "dummy.EmailBackend")


@register(deploy=True)
def shared_cache_check(app_configs, **kwargs):
    """Rate-limit counters must be shared by every web process."""
    backend = settings.CACHES["default"]["BACKEND"]
    if backend.endswith("LocMemCache"):
        return [
            Warning(
                "The cache is per process (REDIS_URL is not set): failed-look-up limits "
                "are counted separately in each web process.",
                hint="Set REDIS_URL so every web process shares one counter.",
                id="appease.W001",
            )
        ]
    return []


@register(deploy=True)
def production_settings_check(app_configs, **kwargs):
    """The demo's defaults that must not reach production."""
    problems = []
    if settings.DEBUG:
        problems.append(
            Error(
                "DEBUG is on: error pages show settings and code, demo keys are accepted.",
                hint="Set DEBUG=0.",
                id="appease.E001",
            )
        )
    demo_keys = [
        name
        for name, in_use in (
            ("SECRET_KEY", settings.SECRET_KEY == DEMO_SECRET_KEY),
            ("CODE_HASH_KEY", settings.CODE_HASH_KEY == DEMO_CODE_HASH_KEY),
            ("CODE_ENCRYPTION_KEYS", DEMO_CODE_ENCRYPTION_KEY in settings.CODE_ENCRYPTION_KEYS),
        )
        if in_use
    ]
    if demo_keys:
        problems.append(
            Error(
                f"The demo value of {', '.join(demo_keys)} is in use: it is public (in appease/core/env.py).",
                hint="Set each to a secret of its own (docs/deploy.md, step 3).",
                id="appease.E002",
            )
        )
    if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        problems.append(
            Error(
                "The database is SQLite: one machine, one writer at a time, no row locks.",
                hint="Set DATABASE_URL=postgres://…",
                id="appease.E003",
            )
        )
    if settings.CELERY_BROKER_URL.split("://")[0] in ("filesystem", "memory"):
        problems.append(
            Error(
                f"The Celery broker is {settings.CELERY_BROKER_URL!r}: only processes on this "
                "machine (or in this process) see its messages.",
                hint="Set REDIS_URL (or CELERY_BROKER_URL=redis://…).",
                id="appease.E004",
            )
        )
    if not settings.METRICS_TOKEN:
        problems.append(
            Warning(
                "METRICS_TOKEN is not set: /metrics answers 403 to everyone in production.",
                hint="Set METRICS_TOKEN to a long random string and give it to Prometheus as a bearer token.",
                id="appease.W002",
            )
        )
    if settings.EMAIL_BACKEND.endswith(NOT_SENDING_EMAIL):
        problems.append(
            Warning(
                f"EMAIL_BACKEND is {settings.EMAIL_BACKEND}: no email reaches a customer or a supervisor.",
                hint="Set EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend and EMAIL_HOST.",
                id="appease.W003",
            )
        )
    if not settings.PUBLIC_URL.startswith("https://"):
        problems.append(
            Warning(
                f"PUBLIC_URL is {settings.PUBLIC_URL}: survey links and the widget snippet would use plain HTTP.",
                hint="Set PUBLIC_URL=https://<your host>.",
                id="appease.W004",
            )
        )
    return problems
