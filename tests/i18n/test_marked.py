"""Every string a person reads is marked for translation, and the catalogs are complete.

- Templates: text between tags and the human-facing attributes (title, placeholder,
  aria-label, alt, value of buttons) must come from {% translate %} / {% blocktranslate %}.
- Python: messages to users (ValidationError, ApplicationError, messages.*, form and
  model labels and help texts, admin action descriptions) must be gettext calls.
- Catalogs: no untranslated or fuzzy entry in Spanish or Portuguese, and none missing
  (makemessages on a copy of the tree adds nothing untranslated).
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from django.template.base import Lexer, TokenType

ROOT = Path(__file__).resolve().parents[2]
LANGUAGES = ["es", "pt_BR"]
CODE_DIRS = ["appease", "coupons", "feedback", "reporting"]

# Words that are the same in every language: names, units, symbols.
ALLOWED = {
    "Appease", "CSAT", "NPS", "CSV", "SMS", "API", "ID", "JSON", "OK", "USD", "EUR", "BRL", "n", "h", "m", "s",
    "Casa", "Verde", "CV-1042", "Monstera", "deliciosa", "Español", "English", "Português",
}  # fmt: skip
TAG = re.compile(r"<[^>]*>", re.S)
ENTITY = re.compile(r"&[#\w]+;")
WORD = re.compile(r"[A-Za-zÀ-ÿ]{2,}")
ATTRIBUTE = re.compile(r'\b(?:title|placeholder|aria-label|alt)="([^"{]*[A-Za-z]{2,}[^"{]*)"')


def visible_words(text: str) -> list[str]:
    text = ENTITY.sub(" ", TAG.sub(" ", text))
    return [word for word in WORD.findall(text) if word not in ALLOWED]


def flatten(source: str) -> tuple[str, list[tuple[int, int]]]:
    """The template's literal text, every tag and variable replaced by a mark with no
    letters; text inside {% blocktranslate %} and {% comment %} (translated, or not shown)
    left out. Returns the text and (offset, line) pairs to report line numbers."""
    parts, lines, offset, skipping = [], [], 0, None
    for token in Lexer(source).tokenize():
        if token.token_type is TokenType.BLOCK:
            command = token.contents.split()[0] if token.contents.split() else ""
            if command in ("blocktranslate", "blocktrans", "comment"):
                skipping = "end" + command
            elif command == skipping:
                skipping = None
        piece = token.contents if token.token_type is TokenType.TEXT and skipping is None else "\x00"
        lines.append((offset, token.lineno))
        parts.append(piece)
        offset += len(piece)
    return "".join(parts), lines


def _line(lines: list[tuple[int, int]], position: int) -> int:
    return max((line for offset, line in lines if offset <= position), default=1)


URL_PATH = re.compile(r"\x00?/[\w/.-]*")  # {{ public_url }}/csr/cases/: a path, not words
SCRIPT_OR_STYLE = re.compile(r"<(script|style)\b.*?</\1>", re.S | re.I)


def template_problems(path: Path) -> list[str]:
    text, lines = flatten(path.read_text(encoding="utf-8"))
    where = str(path.relative_to(ROOT))
    problems = [f"{where}:{_line(lines, m.start())}: attribute {m.group(1)!r}" for m in ATTRIBUTE.finditer(text)]
    text = SCRIPT_OR_STYLE.sub(lambda m: " " * len(m.group(0)), text)
    text = TAG.sub(lambda m: " " * len(m.group(0)), text)
    text = ENTITY.sub(lambda m: " " * len(m.group(0)), text)
    text = URL_PATH.sub(lambda m: " " * len(m.group(0)), text)
    for match in WORD.finditer(text):
        if match.group(0) not in ALLOWED:
            problems.append(f"{where}:{_line(lines, match.start())}: {match.group(0)!r}")
    return problems


# Templates that are not ours to translate: a pretend third-party shop page (its visible
# text is marked anyway; its inline CSS and product names would trip the heuristic).
SKIP_TEMPLATES = {"templates/feedback/demo_shop.html"}


def test_templates_mark_every_visible_string():
    problems = []
    for path in sorted((ROOT / "templates").rglob("*")):
        if path.suffix not in (".html", ".txt") or str(path.relative_to(ROOT)) in SKIP_TEMPLATES:
            continue
        problems += template_problems(path)
    assert not problems, "Unmarked text in templates:\n" + "\n".join(problems)


GETTEXT = {"_", "gettext", "gettext_lazy", "ngettext", "ngettext_lazy", "pgettext", "pgettext_lazy", "str"}
MESSAGE_CALLS = {"error", "success", "warning", "info"}  # messages.*
# Exceptions whose first argument reaches an API client or a person.
ERRORS = {"ValidationError", "AuthenticationFailed", "PermissionDenied", "NotFound", "ParseError", "Throttled"}
# Class attributes that DRF shows: a permission's `message`, an exception's `default_detail`.
MESSAGE_ATTRIBUTES = {"message", "default_detail"}
LABEL_KEYWORDS = {"label", "help_text", "verbose_name", "verbose_name_plural", "description", "empty_label"}


def _is_literal_text(node) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and bool(WORD.search(node.value))


def _literal_texts(node):
    """String literals in a value that would reach a person as they are."""
    if _is_literal_text(node):
        yield node
    elif isinstance(node, ast.Dict):
        for value in node.values:
            yield from _literal_texts(value)
    elif isinstance(node, ast.List | ast.Tuple):
        for value in node.elts:
            yield from _literal_texts(value)
    elif isinstance(node, ast.JoinedStr) and any(_is_literal_text(part) for part in node.values):
        yield node


def python_problems(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id in MESSAGE_ATTRIBUTES for target in node.targets
        ):
            problems += [
                f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(v)[:80]}" for v in _literal_texts(node.value)
            ]
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        owner = (
            node.func.value.id if isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name) else ""
        )
        suspects = []
        if name in ERRORS and node.args:
            suspects += list(_literal_texts(node.args[0]))
        if name == "Response" and node.args:  # {"error": "code", "detail": "<human text>"}
            suspects += [
                value
                for key, value in zip(
                    getattr(node.args[0], "keys", []), getattr(node.args[0], "values", []), strict=False
                )
                if isinstance(key, ast.Constant) and key.value == "detail" and _is_literal_text(value)
            ]
        if name == "ApplicationError" and len(node.args) >= 2:
            suspects += list(_literal_texts(node.args[1]))
        if owner == "messages" and name in MESSAGE_CALLS and len(node.args) >= 2:
            suspects += list(_literal_texts(node.args[1]))
        for keyword in node.keywords:
            if keyword.arg in LABEL_KEYWORDS and path.name not in API_DOCS:
                suspects += list(_literal_texts(keyword.value))
        problems += [f"{path.relative_to(ROOT)}:{suspect.lineno}: {ast.unparse(suspect)[:80]}" for suspect in suspects]
    return problems


# The OpenAPI schema's descriptions are for developers, in English (error messages in
# those modules are still checked).
API_DOCS = {"apis.py", "schema.py", "callbacks.py"}
# Operator- and developer-facing text is English on purpose (logs, management commands,
# migrations, HTTP authentication errors a machine reads).
SKIP_PY = ("migrations", "management")


def test_python_marks_user_visible_strings():
    problems = []
    for directory in CODE_DIRS:
        for path in sorted((ROOT / directory).rglob("*.py")):
            if any(part in SKIP_PY for part in path.parts):
                continue
            problems += python_problems(path)
    assert not problems, "User-visible strings not marked for translation:\n" + "\n".join(problems)


@pytest.mark.parametrize("language", LANGUAGES)
def test_catalogs_have_no_untranslated_or_fuzzy_entries(language):
    catalog = read_po((ROOT / "locale" / language / "LC_MESSAGES" / "django.po").open("rb"))
    messages = [message for message in catalog if message.id]
    untranslated = [m.id for m in messages if not (m.string if isinstance(m.string, str) else all(m.string))]
    fuzzy = [m.id for m in messages if m.fuzzy]

    assert not untranslated, f"{len(untranslated)} untranslated, e.g. {untranslated[:5]}"
    assert not fuzzy, f"{len(fuzzy)} fuzzy, e.g. {fuzzy[:5]}"


@pytest.mark.skipif(not shutil.which("xgettext"), reason="needs GNU gettext (xgettext) to extract strings")
def test_the_catalogs_hold_every_marked_string(tmp_path):
    """makemessages on a copy of the tree must find nothing the catalogs lack."""
    copy = tmp_path / "tree"
    ignore = shutil.ignore_patterns(".venv", ".git", "var", "node_modules", "__pycache__", "staticfiles", "build")
    shutil.copytree(ROOT, copy, ignore=ignore)
    result = subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "es", "-l", "pt_BR", "--ignore=bench", "--ignore=tests"],
        cwd=copy,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for language in LANGUAGES:
        catalog = read_po((copy / "locale" / language / "LC_MESSAGES" / "django.po").open("rb"))
        missing = [m.id for m in catalog if m.id and not (m.string if isinstance(m.string, str) else all(m.string))]
        assert not missing, f"{language}: {len(missing)} strings are not in the catalog yet, e.g. {missing[:5]}"
