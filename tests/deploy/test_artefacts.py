"""The Dockerfile, compose.yaml and the systemd units, checked without Docker or systemd
running (neither can run on these machines; docs/deploy.md says what was exercised):
everything they call exists and is what test_entrypoint.py starts for real, and the
environment compose gives is one the settings read and accept."""

from __future__ import annotations

import configparser
import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from secrets import token_urlsafe

import pytest
import yaml
from cryptography.fernet import Fernet

from tests.deploy.test_entrypoint import ENTRYPOINT, ROOT, production_env

SUBCOMMANDS = {"web", "worker", "beat", "migrate", "release"}
APP_SERVICES = {"migrate", "web", "worker", "beat"}
SYSTEMD = ROOT / "deploy" / "systemd"


def settings_variables() -> set[str]:
    """Every environment variable the settings, gunicorn's config and the entrypoint read."""
    settings = (ROOT / "appease" / "settings.py").read_text()
    gunicorn = (ROOT / "deploy" / "gunicorn.conf.py").read_text()
    names = set(re.findall(r'env_\w+\(\s*"([A-Z0-9_]+)"', settings))
    names |= set(re.findall(r'os\.environ\.get\("([A-Z0-9_]+)"', gunicorn))
    names |= set(re.findall(r"\$\{([A-Z0-9_]+):-", ENTRYPOINT.read_text()))
    return names


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?error} (the forms compose.yaml uses)."""

    def one(match: re.Match) -> str:
        name, operator, rest = match.group(1), match.group(2), match.group(3)
        if name in variables and variables[name] != "":
            return variables[name]
        assert operator != ":?", f"{name} is required and not in deploy/compose.env.example"
        return rest or ""

    return re.sub(r"\$\{([A-Z0-9_]+)(?:(:-|:\?)([^}]*))?\}", one, value)


def env_example() -> dict[str, str]:
    lines = (ROOT / "deploy" / "compose.env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


# --- compose.yaml --------------------------------------------------------------------------


def test_compose_has_the_services_of_a_deployment(compose):
    assert set(compose["services"]) == {"postgres", "redis", *APP_SERVICES}


def test_every_application_service_runs_an_entrypoint_subcommand_of_the_image(compose):
    for name in APP_SERVICES:
        service = compose["services"][name]
        assert service["build"] == "." and service["image"].startswith("${APPEASE_IMAGE")
        assert service["command"][0] in SUBCOMMANDS, name
    assert compose["services"]["migrate"]["command"] == ["migrate"]
    assert {compose["services"][name]["command"][0] for name in ("web", "worker", "beat")} == {"web", "worker", "beat"}


def test_web_worker_and_beat_wait_for_the_migrations_and_healthy_services(compose):
    for name in ("web", "worker", "beat"):
        depends = compose["services"][name]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}, name
        assert depends["postgres"] == depends["redis"] == {"condition": "service_healthy"}, name
    assert set(compose["services"]["migrate"]["depends_on"]) == {"postgres", "redis"}


def test_long_running_services_restart_and_have_health_checks_the_one_shot_does_not(compose):
    for name, service in compose["services"].items():
        if name == "migrate":
            assert service["restart"] == "no" and service["healthcheck"] == {"disable": True}
            continue
        assert service["restart"] in {"always", "unless-stopped"}, name
        assert service["healthcheck"]["test"][0] == "CMD", name
    for name in ("web", "worker", "beat"):
        assert compose["services"][name]["healthcheck"]["test"] == ["CMD", "python", "deploy/healthcheck.py", name]


def test_every_variable_compose_sets_is_one_the_settings_read(compose):
    known = settings_variables()
    for name in APP_SERVICES:
        for variable in compose["services"][name]["environment"]:
            assert variable.removesuffix("_FILE") in known, f"{name}: {variable} is read by nothing"


def test_every_secret_file_compose_names_is_declared_and_mounted(compose):
    declared = set(compose["secrets"])
    for name in APP_SERVICES:
        service = compose["services"][name]
        mounted = set(service["secrets"])
        assert mounted <= declared
        for variable, value in service["environment"].items():
            if variable.endswith("_FILE"):
                assert value.startswith("/run/secrets/") and value.removeprefix("/run/secrets/") in mounted, variable
    assert compose["services"]["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"


def test_compose_environment_is_a_production_configuration_the_deploy_checks_accept(compose, tmp_path):
    # given the web service's environment, with .env from the example and each secret a file
    example = env_example()
    secrets = {
        "database_url": "postgres://appease:pw@postgres:5432/appease",
        "secret_key": token_urlsafe(50),
        "code_hash_key": token_urlsafe(32),
        "code_encryption_keys": Fernet.generate_key().decode(),
        "metrics_token": token_urlsafe(32),
        "email_host_password": "smtp password",
    }
    env = production_env(tmp_path)
    for variable in ("SECRET_KEY", "CODE_HASH_KEY", "CODE_ENCRYPTION_KEYS", "DATABASE_URL", "ALLOWED_HOSTS"):
        env.pop(variable)
    for variable, value in compose["services"]["web"]["environment"].items():
        value = interpolate(str(value), example)
        if value.startswith("/run/secrets/"):
            secret = value.removeprefix("/run/secrets/")
            (tmp_path / secret).write_text(secrets[secret] + "\n")
            value = str(tmp_path / secret)
        env[variable] = value

    # when Django's and our deployment checks run on it, through the entrypoint
    result = subprocess.run(  # noqa: S603 (the entrypoint with fixed arguments)
        [str(ENTRYPOINT), "python", "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    # then they find nothing
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


# --- Dockerfile --------------------------------------------------------------------------


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text().replace("\\\n", " ")


def dockerignored(path: str) -> bool:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    parts = Path(path).parts
    return any(
        fnmatch.fnmatch(path, pattern) or any(fnmatch.fnmatch(part, pattern.removeprefix("**/")) for part in parts)
        for pattern in patterns
    )


def test_the_dockerfile_is_multi_stage_non_root_with_a_health_check():
    text = dockerfile()
    stages = re.findall(r"^FROM (\S+) AS (\w+)", text, re.MULTILINE)
    assert [name for _, name in stages] == ["builder", "runtime"]
    assert "COPY --from=builder /opt/venv /opt/venv" in text
    runtime = text.split("AS runtime", 1)[1]
    assert re.search(r"^USER appease$", runtime, re.MULTILINE)
    assert 'CMD ["python", "deploy/healthcheck.py", "web"]' in runtime
    assert 'ENTRYPOINT ["deploy/entrypoint.sh"]' in runtime and 'CMD ["web"]' in runtime


def test_every_file_the_dockerfile_names_exists_and_reaches_the_image():
    text = dockerfile()
    named = re.findall(r"^COPY (?!--from)(\S+) ", text, re.MULTILINE)
    named += ["deploy/entrypoint.sh", "deploy/healthcheck.py", "manage.py", "deploy/gunicorn.conf.py"]
    for path in named:
        if path == ".":
            continue
        assert (ROOT / path).exists(), path
        assert not dockerignored(path), path
    assert os.access(ENTRYPOINT, os.X_OK)
    mode = subprocess.run(
        ["git", "ls-files", "--stage", "deploy/entrypoint.sh"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert mode.startswith("100755"), "deploy/entrypoint.sh must be committed executable"


def test_the_dockerfiles_collectstatic_runs_without_secrets(tmp_path):
    # given the build's collectstatic line, as the image runs it (DEBUG=0 in the image's env)
    line = next(line for line in dockerfile().splitlines() if line.startswith("RUN ") and "collectstatic" in line)
    command = shlex.split(line.removeprefix("RUN "))
    assignments = dict(word.split("=", 1) for word in command if re.fullmatch(r"[A-Z_]+=.*", word))
    argv = [word for word in command if not re.fullmatch(r"[A-Z_]+=.*", word)]
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}/usr/bin{os.pathsep}/bin",
        "DEBUG": "0",
        "STATIC_ROOT": str(tmp_path / "static"),
        "APPEASE_VAR_DIR": str(tmp_path / "var"),
        **assignments,
    }

    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)  # noqa: S603

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "static" / "staticfiles.json").exists()


def test_the_image_leaves_tests_benchmarks_and_local_data_out():
    for path in (".venv/bin/python", "var/appease.sqlite3", "tests/conftest.py", "bench/common.py", "secrets/x"):
        assert dockerignored(path), path
    for path in ("appease/settings.py", "deploy/entrypoint.sh", "locale/es/LC_MESSAGES/django.mo", "static/x.js"):
        assert not dockerignored(path), path


# --- systemd --------------------------------------------------------------------------------


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(SYSTEMD / name)
    return parser


def test_every_process_has_a_unit_that_restarts_it_through_the_entrypoint():
    for name, subcommand in (
        ("appease-web@.service", "web"),
        ("appease-worker@.service", "worker"),
        ("appease-beat.service", "beat"),
    ):
        service = unit(name)["Service"]
        assert service["Restart"] == "always", name
        assert shlex.split(service["ExecStart"])[:2] == ["/srv/appease/deploy/entrypoint.sh", subcommand], name
        assert service["User"] == "appease" and service["EnvironmentFile"] == "/etc/appease.core.env"
        assert unit(name)["Install"]["WantedBy"] == "appease.target"
    release = unit("appease-release.service")["Service"]
    assert release["Type"] == "oneshot" and release["ExecStart"] == "/srv/appease/deploy/entrypoint.sh release"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_accepts_the_units(tmp_path):
    # given the units with this checkout in place of /srv/appease
    for path in SYSTEMD.iterdir():
        (tmp_path / path.name).write_text(path.read_text().replace("/srv/appease", str(ROOT)))

    # when systemd checks them (syntax, settings, executables)
    names = [path.name for path in sorted(tmp_path.iterdir())]
    result = subprocess.run(  # noqa: S603
        ["systemd-analyze", "verify", "--man=no", *names],  # noqa: S607
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    # then it finds nothing
    assert result.returncode == 0, result.stdout + result.stderr
    assert "appease-web@.service" in names and "appease.target" in names
