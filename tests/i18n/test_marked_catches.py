"""The checks of test_marked.py can fail: each blind spot it covers, shown caught on a
small bad sample (and the marked version let through)."""

from __future__ import annotations

import textwrap

import pytest

from tests.i18n.test_marked import catalog_problems, python_source_problems, template_source_problems

UNMARKED_PYTHON = {
    "messages.*": 'messages.success(request, "Saved.")',
    "f-string message": 'messages.error(request, f"Could not save {name}")',
    "ModelAdmin.message_user": 'self.message_user(request, "Three issuances approved.")',
    "messages.add_message": 'messages.add_message(request, messages.INFO, "Hello there")',
    "ValidationError": 'raise ValidationError("Too many codes")',
    "ValidationError dict": 'raise ValidationError({"email": "Bad address"})',
    "ValidationError(message=)": 'raise ValidationError(message="Too big")',
    "ApplicationError": 'raise ApplicationError("limit", "Over the daily limit")',
    "admin description": '@admin.display(description="Total")\ndef total(self, obj): ...',
    "admin action": '@admin.action(description="Approve selected")\ndef approve(self, r, q): ...',
    "short_description": 'export.short_description = "Export selected"',
    "list filter title": 'class Dead(admin.SimpleListFilter):\n    title = "dead letters"',
    "Meta verbose_name": 'class Meta:\n    verbose_name = "thing"',
    "field label": 'name = models.CharField("name", max_length=5, help_text="Shown on the card.")',
    "choice label": 'class Kind(models.TextChoices):\n    APPLE = "apple", "Apple pie"',
    "permission message": 'class P(BasePermission):\n    message = "Supervisors only."',
}
MARKED_PYTHON = [
    'messages.success(request, _("Saved."))',
    'self.message_user(request, ngettext("%(n)d approved.", "%(n)d approved.", n) % {"n": n})',
    'raise ValidationError(message=_("Too big"), code="big")',
    'class Dead(admin.SimpleListFilter):\n    title = _("dead letters")',
    'class Kind(models.TextChoices):\n    APPLE = "apple", _("Apple pie")',
    'logger.info("sent %s", pk)',  # logs are for operators
]


@pytest.mark.parametrize("source", UNMARKED_PYTHON.values(), ids=UNMARKED_PYTHON.keys())
def test_unmarked_python_is_caught(source):
    assert python_source_problems(textwrap.dedent(source), "sample.py")


@pytest.mark.parametrize("source", MARKED_PYTHON)
def test_marked_python_passes(source):
    assert python_source_problems(source, "sample.py") == []


UNMARKED_TEMPLATES = {
    "text": "<p>Hello there</p>",
    "attribute": '<button title="Close the dialog">×</button>',
    "button value": '<input type="submit" value="Send it">',
    "default filter": '{{ row.label|default:"Nothing yet" }}',
    "yesno": '{{ row.solved|yesno:"yes,no,maybe" }}',
    "firstof": '{% firstof name "Somebody" %}',
}
MARKED_TEMPLATES = [
    '{% load i18n %}<p>{% translate "Hello there" %}</p>',
    '{% load i18n %}<button title="{% translate "Close the dialog" %}">×</button>',
    '{% load i18n %}<input type="submit" value="{% translate "Send it" %}">',
    '{% load i18n %}{{ row.label|default:_("Nothing yet") }}',
    '{{ when|date:"SHORT_DATE_FORMAT" }} <html lang="{{ language|default:"en" }}">',
    "{% load i18n %}{% blocktranslate %}Hello {{ name }}{% endblocktranslate %}",
]


@pytest.mark.parametrize("source", UNMARKED_TEMPLATES.values(), ids=UNMARKED_TEMPLATES.keys())
def test_unmarked_template_text_is_caught(source):
    assert template_source_problems(source, "sample.html")


@pytest.mark.parametrize("source", MARKED_TEMPLATES)
def test_marked_template_text_passes(source):
    assert template_source_problems(source, "sample.html") == []


def test_a_catalog_with_untranslated_fuzzy_and_broken_entries_is_caught(tmp_path):
    # given a catalog with one good entry and one of each fault
    catalog = tmp_path / "django.po"
    catalog.write_text(
        textwrap.dedent(
            """\
            msgid ""
            msgstr ""
            "Content-Type: text/plain; charset=UTF-8\\n"
            "Plural-Forms: nplurals=2; plural=(n != 1);\\n"

            msgid "Good"
            msgstr "Bueno"

            msgid "Untranslated"
            msgstr ""

            #, fuzzy
            msgid "Fuzzy"
            msgstr "Borroso"

            #, python-format
            msgid "%(count)d codes left"
            msgstr "quedan %(cuenta)d códigos"

            msgid "one code"
            msgid_plural "%(count)d codes"
            msgstr[0] "un código"
            msgstr[1] ""
            """
        ),
        encoding="utf-8",
    )

    # when it is checked
    problems = catalog_problems(catalog)

    # then every fault is named, and the good entry is not
    assert problems == [
        "untranslated: 'Untranslated'",
        "fuzzy: 'Fuzzy'",
        "placeholders differ: '%(count)d codes left' → 'quedan %(cuenta)d códigos'",
        "untranslated: 'one code'",
    ]
