"""The import contracts in pyproject.toml hold on the tree, and they are not decoration:
the same check fails on a copy of the tree with one import that breaks a layer."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("appease", "coupons", "feedback", "reporting")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603  (our own lint-imports, beside this Python)
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def tree_copy(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tree / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def test_the_tree_keeps_every_contract():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_kernel_importing_an_app_breaks_the_layers(tmp_path):
    tree = tree_copy(tmp_path)
    money = tree / "appease" / "core" / "money.py"
    money.write_text(money.read_text() + "\n\ndef _violation():\n    from feedback.models import Case  # noqa: F401\n")
    result = lint_imports(tree)
    assert result.returncode == 1, result.stdout
    assert "appease.core is not allowed to import feedback" in " ".join(result.stdout.split())
    assert "appease.core.money -> feedback.models" in result.stdout


def test_an_api_importing_another_apps_api_breaks_its_contract(tmp_path):
    tree = tree_copy(tmp_path)
    apis = tree / "feedback" / "apis.py"
    apis.write_text(
        apis.read_text() + "\nfrom appease.issuance.apis import IssuanceOutputSerializer  # noqa: E402, F401\n"
    )
    result = lint_imports(tree)
    assert result.returncode == 1, result.stdout
    assert "feedback.apis is not allowed to import appease.issuance.apis" in " ".join(result.stdout.split())


def test_reporting_importing_another_apps_models_breaks_its_contract(tmp_path):
    tree = tree_copy(tmp_path)
    views = tree / "reporting" / "views.py"
    views.write_text(views.read_text() + "\nfrom appease.issuance.models import Issuance  # noqa: E402, F401\n")
    result = lint_imports(tree)
    assert result.returncode == 1, result.stdout
    assert "Reporting reads the other apps only through their selectors BROKEN" in " ".join(result.stdout.split())
    assert "reporting is not allowed to import appease.issuance" in " ".join(result.stdout.split())
    assert "reporting.views -> appease.issuance.models" in result.stdout
