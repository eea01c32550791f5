"""Request body parsers for the whole API: bounded before anything is parsed.

Every body is read up to DATA_UPLOAD_MAX_MEMORY_SIZE bytes (413 past it, without
reading the rest), its JSON nesting is counted by a linear scan before it is parsed
(400 past API_JSON_MAX_DEPTH: Python's parser recurses, and about 1,000 levels were a
RecursionError, a 500), and what it holds is checked once for what no field can take
(appease.core.jsonvalues: lone surrogates, numbers beyond a double), with the field's path
in the 400. NUL is refused by each text field, and by services that store free-form
JSON (the same check). docs/adr/0009-request-body-limits.md says why.
"""

from __future__ import annotations

import json
import re

from django.conf import settings
from django.http import QueryDict
from django.utils.translation import gettext as _
from rest_framework import exceptions, parsers, serializers, status
from rest_framework.settings import api_settings
from rest_framework.utils.json import strict_constant

from appease.core.jsonvalues import json_value_errors


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(
            _("The request body is larger than %(limit)d bytes.") % {"limit": limit}, code=self.default_code
        )


def read_bounded(stream, parser_context) -> bytes:
    """The body, refused with 413 once it is over DATA_UPLOAD_MAX_MEMORY_SIZE: by its
    declared length before reading, else by reading one byte past the limit."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if limit is None:
        return stream.read()
    request = (parser_context or {}).get("request")
    meta = getattr(request, "META", {}) if request is not None else {}
    try:
        declared = int(meta.get("CONTENT_LENGTH") or 0)
    except (TypeError, ValueError):
        declared = 0
    if declared > limit:
        raise RequestTooLarge(limit)
    body = stream.read(limit + 1)
    if len(body) > limit:
        raise RequestTooLarge(limit)
    return body


# One token at a time: a whole string (escapes included; an unterminated one runs to the
# end, so the pattern always matches where it starts and the scan stays linear) or a
# bracket. Brackets inside strings are inside string tokens, so they do not count.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*(?:"|\\?\Z)|[\[\]{}]', re.DOTALL)


def json_depth_check(text: str, limit: int) -> None:
    """ParseError as soon as arrays and objects nest deeper than `limit`."""
    depth = 0
    for token in _TOKENS.finditer(text):
        first = token.group()[0]
        if first in "[{":
            depth += 1
            if depth > limit:
                raise exceptions.ParseError(_("The JSON is nested deeper than %(limit)d levels.") % {"limit": limit})
        elif first in "]}":
            depth -= 1


class BoundedJSONParser(parsers.JSONParser):
    """DRF's JSON parser with the body size and nesting bounded before parsing and the
    values checked after it (the default parser of every API view)."""

    def parse(self, stream, media_type=None, parser_context=None):
        body = read_bounded(stream, parser_context)
        encoding = parsers.get_encoding(parser_context or {})  # text codecs only (not bz2_codec)
        try:
            text = body.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            raise exceptions.ParseError(
                _("The request body is not valid %(encoding)s text.") % {"encoding": encoding}
            ) from None
        json_depth_check(text, settings.API_JSON_MAX_DEPTH)
        try:
            data = json.loads(text, parse_constant=strict_constant if api_settings.STRICT_JSON else None)
        except (ValueError, RecursionError) as error:
            raise exceptions.ParseError(_("JSON parse error - %(error)s") % {"error": error}) from None
        errors = json_value_errors(data, nul=False)  # NUL: each text field refuses its own
        if errors:
            raise serializers.ValidationError(errors)
        return data


class BoundedFormParser(parsers.FormParser):
    """DRF's form parser with the body size bounded (the providers' SMS callbacks)."""

    def parse(self, stream, media_type=None, parser_context=None):
        body = read_bounded(stream, parser_context)
        encoding = parsers.get_encoding(parser_context or {})
        return QueryDict(body, encoding=encoding)
