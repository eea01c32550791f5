"""Hostile values, as raw JSON: shared by the hostile-input suite (test_hostile.py) and
the Schemathesis runs (test_fuzz.py), so both send the same things."""

from __future__ import annotations

import json

from django.conf import settings

DEEP = "[" * 5000 + "]" * 5000
MEGABYTE = '"' + "x" * 1_000_000 + '"'
# For any field: what no field of ours may take (the parser or the field refuses it).
FOR_ANY = {
    "lone high surrogate": '"\\ud800"',
    "lone low surrogate": '"a\\udc00b"',
    "NUL": '"a\\u0000b"',
    "overflow to infinity": "1e400",
    "overflow to minus infinity": "-1e400",
    "NaN literal": "NaN",
    "Infinity literal": "Infinity",
    "deep nesting": DEEP,
    "1 MB string": MEGABYTE,
}


def _plus(valid: str, member: str) -> str:
    """The JSON object `valid` with one more member (raw JSON text)."""
    return valid[:-1] + (", " if valid.strip() != "{}" else "") + member + "}"


def _oversized() -> str:
    return "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)


# For any body, whatever its fields: refused before a field is looked at.
WHOLE_BODY = {
    "lone surrogate anywhere": lambda valid: _plus(valid, '"x": "\\ud800"'),
    "infinity anywhere": lambda valid: _plus(valid, '"x": 1e400'),
    "deep nesting anywhere": lambda valid: _plus(valid, '"x": ' + DEEP),
    "malformed JSON": lambda valid: valid[:-1] + ",",
    "array for object": lambda valid: "[" + valid + "]",
    "over the size limit": lambda valid: _plus(valid, f'"pad": "{_oversized()}"'),
}

MARK = "\u2603hostile\u2603"


def with_raw(body: dict, name: str, raw: str) -> str:
    """`body` as JSON with `name` set to the raw JSON text `raw`."""
    return json.dumps({**body, name: MARK}).replace(json.dumps(MARK), raw)
