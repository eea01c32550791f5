"""Request bodies are bounded before they are parsed and checked once after it
(appease/core/parsers.py): every JSON endpoint at once, the unauthenticated intake included."""

from __future__ import annotations

import io
import json

import pytest
from rest_framework.exceptions import ParseError
from rest_framework.test import APIClient

from appease.core.parsers import RequestTooLarge, json_depth_check, read_bounded
from feedback.models import Feedback, FeedbackSite

pytestmark = pytest.mark.django_db

FEEDBACK = "/api/v1/feedback"


@pytest.fixture
def site():
    return FeedbackSite.objects.create(name="Shop")


def post_raw(body: str | bytes, content_type: str = "application/json", **extra):
    return APIClient().generic("POST", FEEDBACK, body, content_type=content_type, **extra)


def test_json_nested_deeper_than_the_limit_is_400_before_it_is_parsed(site, settings):
    """It was a RecursionError (a 500 with a traceback) from about 1,000 levels."""
    # given
    deep = '{{"site_key": "{}", "text": "x", "extra": {}1{}}}'.format(site.public_key, "[" * 5000, "]" * 5000)
    just_enough = '{{"site_key": "{}", "text": "hi", "email": "a@example.com", "x": {}1{}}}'.format(
        site.public_key,
        "[" * (settings.API_JSON_MAX_DEPTH - 1),
        "]" * (settings.API_JSON_MAX_DEPTH - 1),
    )

    # when
    refused = post_raw(deep)
    accepted = post_raw(just_enough)

    # then
    assert refused.status_code == 400
    assert refused.json() == {
        "error": "malformed_request",
        "detail": f"The JSON is nested deeper than {settings.API_JSON_MAX_DEPTH} levels.",
    }
    assert accepted.status_code == 201, accepted.json()
    assert Feedback.objects.count() == 1


def test_brackets_inside_strings_do_not_count_as_nesting():
    json_depth_check('{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\"[[[[["}', limit=1)
    json_depth_check('"unterminated \\', limit=0)  # the parser, not the scan, refuses it
    with pytest.raises(ParseError):
        json_depth_check('[[["]"]]]', limit=2)


def test_a_body_over_the_limit_is_413_declared_or_not(site, settings):
    # given
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"site_key": site.public_key, "text": "x" * 2000})

    # when: the length is declared (refused unread) and when it is understated (read up to the limit)
    declared = post_raw(body)
    with pytest.raises(RequestTooLarge):
        read_bounded(io.BytesIO(body.encode()), {"request": None})

    # then
    assert declared.status_code == 413
    assert declared.json() == {"error": "request_too_large", "detail": "The request body is larger than 1000 bytes."}
    assert read_bounded(io.BytesIO(b"x" * 1000), {}) == b"x" * 1000
    assert Feedback.objects.count() == 0


@pytest.mark.parametrize("field", ["incident_type", "channel", "source", "text", "email"])
def test_a_lone_surrogate_in_any_field_is_400_naming_it(site, field):
    """Choice fields echoed it in their error and the answer failed to encode: a 500."""
    body = f'{{"site_key": "{site.public_key}", "text": "late", "{field}": "\\ud800"}}'
    response = post_raw(body)
    assert response.status_code == 400
    assert response.json()["fields"] == {field: ["This text is not valid Unicode (it holds a lone surrogate)."]}
    assert Feedback.objects.count() == 0


def test_nul_non_finite_numbers_and_bad_keys_are_named_by_their_path(site):
    body = (
        f'{{"site_key": "{site.public_key}", "text": "a\\u0000", "rating": 1e400, '
        '"customer": {"tags": ["ok", "\\udc00"]}, '
        '"meta": {"\\ud800": 1}}'
    )
    response = post_raw(body)
    assert response.status_code == 400
    assert response.json()["fields"] == {
        "rating": ["This number is out of range."],
        "customer.tags[1]": ["This text is not valid Unicode (it holds a lone surrogate)."],
        "meta": ["A name in this object: This text is not valid Unicode (it holds a lone surrogate)."],
    }


def test_a_nul_is_refused_by_the_field_that_holds_it(site):
    """Not by the parser: a NUL in a name the API ignores harms nothing (and the schema
    allows it); every text field refuses one, and stored JSON is checked where stored."""
    response = post_raw(f'{{"site_key": "{site.public_key}", "text": "a\\u0000", "extra\\u0000": 1}}')
    assert response.status_code == 400
    assert response.json()["fields"] == {"text": ["Null characters are not allowed."]}
    assert Feedback.objects.count() == 0


def test_malformed_and_mis_encoded_bodies_are_400(site):
    assert post_raw('{"site_key": ').status_code == 400
    assert post_raw(b'{"text": "\xff\xfe"}').status_code == 400  # not UTF-8
    assert post_raw('{"rating": NaN}').status_code == 400
    assert post_raw("{}", content_type="application/json; charset=bz2_codec").status_code == 400
    assert post_raw('{"x": %s}' % ("9" * 5000)).status_code == 400  # past Python's digit limit
    assert Feedback.objects.count() == 0


def test_the_answers_are_in_the_callers_language(site):
    response = post_raw('{"text": "\\ud800"}', HTTP_ACCEPT_LANGUAGE="es")
    assert response.status_code == 400
    assert response.json()["fields"]["text"] == ["Este texto no es Unicode válido (contiene un sustituto suelto)."]


def test_a_signed_provider_callback_over_the_limit_is_413(settings):
    """The webhook reads the raw body itself (to check its signature): Django's own
    limit answers there, in the API's shape."""
    settings.WEBHOOK_SECRET = "s"
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    response = APIClient().generic(
        "POST", "/api/v1/delivery/callbacks/webhook", json.dumps({"id": "x" * 200}), content_type="application/json"
    )
    assert (response.status_code, response.json()["error"]) == (413, "request_too_large")
    form = APIClient().generic(
        "POST",
        "/api/v1/delivery/callbacks/sms",
        "MessageSid=" + "x" * 200,
        content_type="application/x-www-form-urlencoded",
    )
    assert (form.status_code, form.json()["error"]) == (413, "request_too_large")
