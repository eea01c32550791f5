"""What a JSON value may hold before we keep it: the one check, used by the API's parser
for every request body and by services that store free-form JSON (merchant events).

PostgreSQL's jsonb (and text columns) cannot store a NUL character, a lone UTF-16
surrogate (Python's json decodes "\\ud800" into one; it is not a character and no
encoder can write it back out) or a number beyond a double (1e400 parses as infinity).
Each is refused with the path of the value at fault, in the notation the API already
uses for nested input: `customer.email`, `data.customers[3].name`.
"""

from __future__ import annotations

import math
import re

from django.core.validators import ProhibitNullCharactersValidator
from django.utils.translation import gettext as _

MAX_ERRORS = 20  # a megabyte of bad strings is named by its first few, not a megabyte of errors

_SURROGATE = re.compile("[\ud800-\udfff]")


def _text_problem(text: str, *, nul: bool = True) -> str | None:
    if nul and "\x00" in text:
        return str(ProhibitNullCharactersValidator.message)
    if _SURROGATE.search(text):
        return _("This text is not valid Unicode (it holds a lone surrogate).")
    return None


def json_value_errors(value, *, path: str = "", nul: bool = True) -> dict[str, list[str]]:
    """{path: [message]} for every part of `value` that cannot be stored; empty if none.

    `value` is what json.loads returned (nesting already bounded by the caller: the
    parser refuses deep nesting before parsing). `nul=False` lets NUL through: the
    parser's choice, as every text field refuses one itself (a schema-valid request may
    carry one in a name the API ignores), and storing services check with `nul=True`."""
    errors: dict[str, list[str]] = {}

    def add(at: str, message: str) -> None:
        errors.setdefault(at or "non_field_errors", []).append(message)

    def walk(item, at: str) -> None:
        if len(errors) >= MAX_ERRORS:
            return
        if isinstance(item, str):
            problem = _text_problem(item, nul=nul)
            if problem:
                add(at, problem)
        elif isinstance(item, float):
            if not math.isfinite(item):
                add(at, _("This number is out of range."))
        elif isinstance(item, dict):
            for key, child in item.items():
                problem = _text_problem(key, nul=nul) if isinstance(key, str) else None
                if problem:
                    # The key itself cannot be echoed back: name the object that holds it.
                    add(at, _("A name in this object: %(problem)s") % {"problem": problem})
                    continue
                walk(child, f"{at}.{key}" if at else key)
        elif isinstance(item, list):
            for index, child in enumerate(item):
                walk(child, f"{at}[{index}]")

    walk(value, path)
    return errors
