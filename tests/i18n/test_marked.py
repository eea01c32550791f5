"""Every string a person reads is marked for translation, and the catalogs are complete.

- Templates: text between tags, the human-facing attributes (title, placeholder,
  aria-label, alt, value of buttons) and text given to |default, |default_if_none,
  |yesno and {% firstof %} must come from {% translate %} / {% blocktranslate %} / _().
- Python: messages to users (ValidationError, ApplicationError — positional or
  message= —, messages.*, messages.add_message, ModelAdmin.message_user), form and model
  labels and help texts, Meta and choice labels, list filter titles, admin descriptions
  (@admin.display/@admin.action and short_description) must be gettext calls.
- Catalogs (every .po under locale/): no untranslated or fuzzy entry in Spanish or
  Portuguese, no translation whose placeholders differ from the English, and none
  missing (makemessages on a copy of the tree adds nothing untranslated).

test_marked_catches.py shows each of these checks failing on a bad sample.
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


# Text given to a filter that shows it ({{ x|default:"None" }}, |yesno:"yes,no") or to
# {% firstof %} is shown as it is; _("…") there is translated. Format names and
# language codes (|date:"SHORT_DATE_FORMAT", |default:"en") are not text.
SHOWN_FILTER_LITERAL = re.compile(r"""\|(?:default|default_if_none|yesno):(["'])([^"']*)\1""")
VARIABLE_LITERAL = re.compile(r"""(?<!_\()(["'])([^"']*[A-Za-z]{2,}[^"']*)\1""")
NOT_TEXT = re.compile(r"^(?:[A-Z_]+|[a-z]{2}(?:[-_][a-zA-Z]{2})?)$")
BUTTON_VALUE = re.compile(r'<input\b[^>]*\btype="(?:submit|button|reset)"[^>]*>', re.I)


def _tokens_with_literals(source: str):
    for token in Lexer(source).tokenize():
        if token.token_type is TokenType.VAR:
            literals = [m.group(2) for m in SHOWN_FILTER_LITERAL.finditer(token.contents)]
        elif token.token_type is TokenType.BLOCK and token.contents.split()[:1] == ["firstof"]:
            literals = [m.group(2) for m in VARIABLE_LITERAL.finditer(token.contents)]
        else:
            continue
        yield token.lineno, [literal for literal in literals if not NOT_TEXT.match(literal)]


def template_problems(path: Path) -> list[str]:
    return template_source_problems(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))


def template_source_problems(source: str, where: str) -> list[str]:
    text, lines = flatten(source)
    problems = [f"{where}:{_line(lines, m.start())}: attribute {m.group(1)!r}" for m in ATTRIBUTE.finditer(text)]
    for match in BUTTON_VALUE.finditer(text):
        value = re.search(r'\bvalue="([^"{]*)"', match.group(0))
        if value and visible_words(value.group(1)):
            problems.append(f"{where}:{_line(lines, match.start())}: button value {value.group(1)!r}")
    for lineno, literals in _tokens_with_literals(source):
        shown = [literal for literal in literals if visible_words(literal)]
        problems += [f"{where}:{lineno}: literal {literal!r} in a variable" for literal in shown]
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
# Attributes a person reads: a DRF permission's `message`, an exception's
# `default_detail`, a list filter's `title`, Meta's names, an admin callable's
# `short_description` (the old spelling of @admin.display(description=…)).
MESSAGE_ATTRIBUTES = {"message", "default_detail", "title", "verbose_name", "verbose_name_plural", "short_description"}
# ModelAdmin.message_user(request, text), messages.add_message(request, level, text)
MESSAGE_METHODS = {"message_user": 1, "add_message": 2}
CHOICES_BASES = {"TextChoices", "IntegerChoices", "Choices"}
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


def _target_name(target) -> str:
    if isinstance(target, ast.Name):
        return target.id
    return target.attr if isinstance(target, ast.Attribute) else ""


def _choice_labels(tree) -> list:
    """The labels of TextChoices/IntegerChoices members: `PENDING = "pending", "Waiting"`."""
    labels = []
    for cls in ast.walk(tree):
        bases = {getattr(base, "attr", getattr(base, "id", "")) for base in getattr(cls, "bases", [])}
        if not isinstance(cls, ast.ClassDef) or not bases & CHOICES_BASES:
            continue
        for statement in cls.body:
            if isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Tuple):
                labels += [element for element in statement.value.elts[1:] if _is_literal_text(element)]
    return labels


def python_problems(path: Path) -> list[str]:
    return python_source_problems(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)), filename=path.name)


def python_source_problems(source: str, where: str, *, filename: str = "module.py") -> list[str]:
    tree = ast.parse(source)
    problems = [f"{where}:{label.lineno}: choice label {ast.unparse(label)[:80]}" for label in _choice_labels(tree)]
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(_target_name(target) in MESSAGE_ATTRIBUTES for target in node.targets):
            problems += [f"{where}:{node.lineno}: {ast.unparse(v)[:80]}" for v in _literal_texts(node.value)]
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        owner = (
            node.func.value.id if isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name) else ""
        )
        suspects = []
        if name in ERRORS and node.args:
            suspects += list(_literal_texts(node.args[0]))
        if name in ERRORS | {"ApplicationError"}:
            suspects += [s for k in node.keywords if k.arg in ("message", "detail") for s in _literal_texts(k.value)]
        if name in MESSAGE_METHODS and len(node.args) > MESSAGE_METHODS[name]:
            suspects += list(_literal_texts(node.args[MESSAGE_METHODS[name]]))
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
            if keyword.arg in LABEL_KEYWORDS and filename not in API_DOCS:
                suspects += list(_literal_texts(keyword.value))
        problems += [f"{where}:{suspect.lineno}: {ast.unparse(suspect)[:80]}" for suspect in suspects]
    return problems


# The OpenAPI schema's descriptions are for developers, in English (error messages in
# those modules are still checked).
API_DOCS = {"api.py", "apis.py", "schema.py", "callbacks.py"}
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


PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]|\{(\w*)\}")


def _placeholders(text: str) -> set[str]:
    return {a or b for a, b in PLACEHOLDER.findall(text)}


def catalog_problems(path: Path) -> list[str]:
    """Untranslated, fuzzy, and translations whose %(name)s / {name} placeholders differ
    from the English (a missing one drops a number; an extra one raises KeyError)."""
    catalog = read_po(path.open("rb"))
    problems = []
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, list | tuple) else (message.id,)
        strings = message.string if isinstance(message.string, list | tuple) else (message.string,)
        if not all(strings):
            problems.append(f"untranslated: {ids[0]!r}")
        elif message.fuzzy:
            problems.append(f"fuzzy: {ids[0]!r}")
        elif any(_placeholders(string) - _placeholders(" ".join(ids)) for string in strings) or (
            # the singular may leave the count out ("one code"), the other forms may not
            len(ids) == 1 and _placeholders(ids[0]) != _placeholders(strings[0])
        ):
            problems.append(f"placeholders differ: {ids[0]!r} → {strings[0]!r}")
    return problems


CATALOGS = sorted((ROOT / "locale").glob("*/LC_MESSAGES/*.po"))  # django.po, djangojs.po if any


def test_both_languages_have_catalogs():
    assert {path.parts[-3] for path in CATALOGS} == set(LANGUAGES)


@pytest.mark.parametrize("path", CATALOGS, ids=lambda path: "/".join(path.parts[-3:]))
def test_catalogs_have_no_untranslated_fuzzy_or_broken_entries(path):
    problems = catalog_problems(path)
    assert not problems, f"{len(problems)} problems in {path.relative_to(ROOT)}, e.g. {problems[:5]}"


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
