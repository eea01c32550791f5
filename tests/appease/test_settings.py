"""Settings are read at import time, so each case runs in a fresh interpreter."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

PROD = {
    "DEBUG": "0",
    "SECRET_KEY": "s" * 50,
    "CODE_HASH_KEY": "h" * 40,
    "CODE_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    "ALLOWED_HOSTS": "appease.example.com",
}


# Never inherited by the subprocesses: the browser tests set it for their own process.
NOT_INHERITED = {*PROD, "DJANGO_ALLOW_ASYNC_UNSAFE"}


def start_django(**env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
        env={**clean, "DJANGO_SETTINGS_MODULE": "appease.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_production_settings_start_with_every_secret_given():
    result = start_django(**PROD)
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


@pytest.mark.parametrize("missing", ["SECRET_KEY", "CODE_HASH_KEY", "CODE_ENCRYPTION_KEYS"])
def test_a_missing_secret_with_debug_off_is_improperly_configured(missing):
    env = {k: v for k, v in PROD.items() if k != missing}
    result = start_django(**env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert missing in result.stderr


def test_demo_keys_are_refused_with_debug_off():
    from appease import settings as demo

    result = start_django(**{**PROD, "CODE_HASH_KEY": demo.DEMO_CODE_HASH_KEY})
    assert result.returncode != 0
    assert "demo keys" in result.stderr


def test_a_malformed_encryption_key_is_refused():
    result = start_django(**{**PROD, "CODE_ENCRYPTION_KEYS": "not-a-fernet-key"})
    assert result.returncode != 0
    assert "Fernet" in result.stderr


def test_an_unknown_default_currency_is_refused():
    result = start_django(**{**PROD, "DEFAULT_CURRENCY": "ABC"})
    assert result.returncode != 0
    assert "DEFAULT_CURRENCY" in result.stderr


def test_debug_on_runs_the_demo_with_no_environment():
    result = start_django(DEBUG="1")
    assert result.returncode == 0, result.stderr


def prod_check(env_file=None) -> subprocess.CompletedProcess:
    """`make prod-check`, as an operator or CI runs it."""
    command = ["make", "--no-print-directory", "prod-check"] + ([f"ENV_FILE={env_file}"] if env_file else [])
    return subprocess.run(  # noqa: S603 (a fixed command; only the env file varies)
        command,
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_make_prod_check_passes_on_the_example_production_environment():
    """HTTPS-only cookies, HSTS, CSP and friends, and our own checks."""
    # given deploy/production.env.example, the default ENV_FILE
    # when the deployment checks run on it
    result = prod_check()

    # then there is nothing to say
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("line", "check"),
    [
        ("METRICS_TOKEN=", "appease.W002"),
        ("DATABASE_URL=sqlite:///var/prod.sqlite3", "appease.E003"),
        ("REDIS_URL=", "appease.W001"),
        ("EMAIL_BACKEND=django.core.mail.backends.console.EmailBackend", "appease.W003"),
        ("PUBLIC_URL=http://appease.example.com", "appease.W004"),
        ("SECURE_HSTS_SECONDS=0", "security.W004"),
    ],
)
def test_make_prod_check_fails_on_any_warning(tmp_path, line, check):
    # given the example environment with one thing wrong
    example = Path(__file__).resolve().parents[2] / "deploy" / "production.env.example"
    env_file = tmp_path / "appease.core.env"
    env_file.write_text(example.read_text() + line + "\n")

    # when the deployment checks run on it
    result = prod_check(env_file)

    # then they fail, naming the check
    assert result.returncode != 0
    assert check in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("name", "value"),
    [("FEEDBACK_PRAISE_RATING", "6"), ("FEEDBACK_PRAISE_NPS", "x"), ("FEEDBACK_PRAISE_MAX_ANGER", "2")],
)
def test_praise_thresholds_out_of_range_are_refused(name, value):
    result = start_django(**{name: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and name in result.stderr


def run_django(code: str, **env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
    return subprocess.run(  # noqa: S603 (our own test code; only the environment varies)
        [sys.executable, "-c", "import django; django.setup()\n" + code],
        env={**clean, "DJANGO_SETTINGS_MODULE": "appease.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


LANGUAGE_COOKIE = """
from django.test import Client
response = Client().post(
    "/i18n/setlang/", {"language": "es", "next": "/"}, secure=True, HTTP_HOST="appease.example.com"
)
print(response.cookies["django_language"].output())
"""


def test_in_production_the_language_cookie_is_https_only_http_only_and_same_site():
    # given production settings
    # when a visitor picks a language
    result = run_django(LANGUAGE_COOKIE, **PROD)

    # then the cookie is sent back like the session cookie: Secure, HttpOnly, SameSite
    assert result.returncode == 0, result.stderr
    cookie = result.stdout.strip()
    assert "django_language=es" in cookie
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_in_the_demo_the_language_cookie_also_works_over_plain_http():
    # given the demo (DEBUG on, plain HTTP on 127.0.0.1)
    # when a visitor picks a language
    result = run_django(LANGUAGE_COOKIE.replace("appease.example.com", "127.0.0.1"), DEBUG="1")

    # then the cookie is not restricted to HTTPS, still hidden from scripts
    assert result.returncode == 0, result.stderr
    assert "Secure" not in result.stdout and "HttpOnly" in result.stdout
