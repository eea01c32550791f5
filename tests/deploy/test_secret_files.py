"""Secrets from files (`NAME_FILE`, appease/core/env.py) and SECRET_KEY_FALLBACKS: how Docker
and compose secrets, systemd credentials and Kubernetes volumes hand them over."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from appease.core.env import env_bool, env_int, env_list, env_secret, env_str
from tests.appease.test_settings import NOT_INHERITED, PROD

SECRETS = ("SECRET_KEY", "SECRET_KEY_FALLBACKS", "CODE_HASH_KEY", "CODE_ENCRYPTION_KEYS", "DATABASE_URL", "REDIS_URL")
SECRETS += ("METRICS_TOKEN", "EMAIL_HOST_PASSWORD")


def start_django(code: str = "print('started')", **env) -> subprocess.CompletedProcess:
    """A fresh interpreter (settings are read at import) with only `env` of ours."""
    clean = {
        key: value
        for key, value in os.environ.items()
        if key not in NOT_INHERITED and key.removesuffix("_FILE") not in SECRETS
    }
    return subprocess.run(  # noqa: S603 (this interpreter, fixed code)
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        env={**clean, "DJANGO_SETTINGS_MODULE": "appease.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_variable_is_read_from_the_file_its_file_variable_names(monkeypatch, tmp_path):
    (tmp_path / "secret").write_text("s3cret value\n")  # as `echo` writes it: the newline is dropped
    (tmp_path / "keys").write_text("key-one\nkey-two\n")  # one a line
    (tmp_path / "port").write_text("2525")
    monkeypatch.setenv("EMAIL_HOST_PASSWORD_FILE", str(tmp_path / "secret"))
    monkeypatch.setenv("CODE_ENCRYPTION_KEYS_FILE", str(tmp_path / "keys"))
    monkeypatch.setenv("EMAIL_PORT_FILE", str(tmp_path / "port"))
    monkeypatch.delenv("EMAIL_HOST_PASSWORD", raising=False)
    monkeypatch.delenv("CODE_ENCRYPTION_KEYS", raising=False)
    monkeypatch.delenv("EMAIL_PORT", raising=False)

    assert env_str("EMAIL_HOST_PASSWORD", "") == "s3cret value"
    assert env_secret("EMAIL_HOST_PASSWORD", debug=False, demo_default="x") == "s3cret value"
    assert env_list("CODE_ENCRYPTION_KEYS", []) == ["key-one", "key-two"]
    assert env_int("EMAIL_PORT", 25) == 2525


def test_both_the_variable_and_its_file_is_refused(monkeypatch, tmp_path):
    (tmp_path / "debug").write_text("0")
    monkeypatch.setenv("DEBUG", "1")
    monkeypatch.setenv("DEBUG_FILE", str(tmp_path / "debug"))

    with pytest.raises(ImproperlyConfigured, match="DEBUG or DEBUG_FILE, not both"):
        env_bool("DEBUG", True)


def test_a_file_that_cannot_be_read_is_refused_with_its_path(monkeypatch, tmp_path):
    monkeypatch.delenv("METRICS_TOKEN", raising=False)
    monkeypatch.setenv("METRICS_TOKEN_FILE", str(tmp_path / "missing"))

    with pytest.raises(ImproperlyConfigured, match=r"METRICS_TOKEN_FILE: cannot read .*missing"):
        env_str("METRICS_TOKEN", "")


def test_production_starts_with_every_secret_in_a_file(tmp_path):
    # given every secret as a file (compose.yaml's and the systemd units' way), none in the environment
    secrets = {
        "SECRET_KEY": "k" * 50,
        "SECRET_KEY_FALLBACKS": "old-key-" + "o" * 42,
        "CODE_HASH_KEY": "h" * 40,
        "CODE_ENCRYPTION_KEYS": Fernet.generate_key().decode() + "\n" + Fernet.generate_key().decode(),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "REDIS_URL": "redis://127.0.0.1:6379/15",
        "METRICS_TOKEN": "m" * 32,
        "EMAIL_HOST_PASSWORD": "smtp password",
    }
    env = {key: value for key, value in PROD.items() if key not in secrets}
    for name, value in secrets.items():
        (tmp_path / name).write_text(value + "\n")
        env[f"{name}_FILE"] = str(tmp_path / name)
    show = (
        "from django.conf import settings as s; print(s.SECRET_KEY == 'k' * 50, s.SECRET_KEY_FALLBACKS,"
        " len(s.CODE_ENCRYPTION_KEYS), s.DATABASES['default']['NAME'], s.REDIS_URL, s.METRICS_TOKEN == 'm' * 32,"
        " s.EMAIL_HOST_PASSWORD)"
    )

    # when Django starts
    result = start_django(show, **env)

    # then each was read from its file
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == (
        f"True ['old-key-{'o' * 42}'] 2 {tmp_path / 'db.sqlite3'} redis://127.0.0.1:6379/15 True smtp password"
    )


def test_the_demo_secret_key_is_refused_as_a_fallback_too():
    from appease import settings as demo

    result = start_django(**{**PROD, "SECRET_KEY_FALLBACKS": demo.DEMO_SECRET_KEY})

    assert result.returncode != 0
    assert "demo keys" in result.stderr
