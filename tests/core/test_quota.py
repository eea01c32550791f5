"""The API's request quota (appease/core/quota.py): RateLimit-* on every /api/v1 answer,
429 with Retry-After past the limit, per key / user / IP; on the locmem cache (SQLite
runs), on the shared Redis (`redis` marker), and failing open with Redis stopped or hung.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from django.core.cache import caches
from rest_framework.test import APIClient

from appease.core.cache import BREAKER
from appease.core.models import StaffAPIKey
from coupons.models import MerchantAPIKey
from tests.core.test_cache_outage import _breaker_closed, hung_cache, stopped_cache  # noqa: F401
from tests.factories import issued_code, merchant_with_key, offer_create, staff_user

VALIDATE = "/api/v1/codes/validate"
FIELDS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy")


@pytest.fixture
def window(monkeypatch, settings):
    """A 60 s window with the clock pinned mid-window: no boundary falls inside a test."""
    settings.API_RATE_LIMIT_WINDOW_SECONDS = 60
    now = (time.time() // 60) * 60 + 30
    monkeypatch.setattr("appease.core.quota.time", SimpleNamespace(time=lambda: now))
    return 60


def merchant_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


def validate(client, code: str = "NOSUCHCODE1"):
    return client.post(VALIDATE, {"code": code, "order_total": "40.00", "currency": "USD"}, format="json")


def quota_of(response) -> tuple[int, int, int]:
    return (
        int(response["RateLimit-Limit"]),
        int(response["RateLimit-Remaining"]),
        int(response["RateLimit-Reset"]),
    )


@pytest.mark.django_db
def test_every_api_answer_carries_the_callers_quota(settings, window):
    # given a quota of 5 per key, 3 per anonymous IP
    settings.API_RATE_LIMIT_PER_KEY = 5
    settings.API_RATE_LIMIT_PER_IP = 3
    _merchant, key = merchant_with_key()
    client = merchant_client(key)

    # when the key makes requests that answer 200, 400 and 403 (a scope it lacks)
    ok = validate(client)
    invalid = client.post(VALIDATE, {}, format="json")
    MerchantAPIKey.objects.update(scopes=["redeem"])
    refused = validate(client)

    # then each answer says how much of the key's quota is left, and when it resets
    assert (ok.status_code, invalid.status_code, refused.status_code) == (200, 400, 403)
    assert [quota_of(r)[:2] for r in (ok, invalid, refused)] == [(5, 4), (5, 3), (5, 2)]
    assert all(quota_of(r)[2] == 30 for r in (ok, invalid, refused))
    assert ok["RateLimit-Policy"] == "5;w=60"

    # and anonymous answers (401, an unknown path, the public intake) count per IP
    anonymous = APIClient()
    answers = [
        anonymous.post(VALIDATE, {}, format="json"),
        anonymous.get("/api/v1/no-such-thing"),
        anonymous.post("/api/v1/feedback", {}, format="json"),
    ]
    assert [r.status_code for r in answers] == [401, 404, 400]
    assert [quota_of(r)[:2] for r in answers] == [(3, 2), (3, 1), (3, 0)]


@pytest.mark.django_db
def test_past_the_quota_the_answer_is_429_with_retry_after_and_nothing_is_done(settings, window):
    # given a quota of 2 per key and a real code
    settings.API_RATE_LIMIT_PER_KEY = 2
    merchant, key = merchant_with_key()
    code = issued_code(offer_create()).plaintext
    client = merchant_client(key)
    validate(client, code)
    validate(client, code)

    # when the third request is a redemption
    response = client.post(
        "/api/v1/redemptions",
        {"code": code, "order_id": "A-1", "order_total": "40.00", "currency": "USD"},
        format="json",
    )

    # then it is refused before the view ran: 429, Retry-After, the quota spent
    assert response.status_code == 429
    assert response.json()["error"] == "throttled"
    assert response["Retry-After"] == "30"
    assert quota_of(response) == (2, 0, 30)
    assert not merchant.redemptions.exists()

    # and another merchant's key has its own quota
    _other, other_key = merchant_with_key()
    assert validate(merchant_client(other_key), code).status_code == 200


@pytest.mark.django_db
def test_refusals_before_the_throttle_count_too_and_are_429_once_over(settings, window):
    # given a quota of 2 per IP for callers without credentials
    settings.API_RATE_LIMIT_PER_IP = 2
    client = APIClient()

    answers = [client.post(VALIDATE, {}, format="json") for _ in range(3)]

    assert [r.status_code for r in answers] == [401, 401, 429]
    assert answers[2]["Retry-After"] == "30" and answers[2].json()["error"] == "throttled"
    assert quota_of(answers[2])[:2] == (2, 0)


@pytest.mark.django_db
def test_staff_keys_and_sessions_have_their_own_quotas(settings, window):
    settings.API_RATE_LIMIT_PER_KEY = 10
    settings.API_RATE_LIMIT_PER_USER = 4
    supervisor = staff_user("Supervisor")
    _key, token = StaffAPIKey.objects.create_key(name="crm", user=supervisor)

    by_key = APIClient()
    by_key.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    by_session = APIClient()
    by_session.force_login(supervisor)

    key_answer = by_key.get("/api/v1/issuances")
    session_answers = [by_session.get("/api/v1/issuances") for _ in range(5)]

    assert key_answer.status_code == 200 and quota_of(key_answer)[:2] == (10, 9)
    assert [r.status_code for r in session_answers] == [200, 200, 200, 200, 429]
    assert quota_of(session_answers[0])[:2] == (4, 3)


@pytest.mark.django_db
def test_no_quota_with_a_limit_of_zero(settings, window):
    settings.API_RATE_LIMIT_PER_KEY = 0
    _merchant, key = merchant_with_key()

    responses = [validate(merchant_client(key)) for _ in range(3)]

    assert all(r.status_code == 200 for r in responses)
    assert not any(field in r for r in responses for field in FIELDS)


@pytest.mark.django_db
def test_pages_outside_the_api_carry_no_quota(client, settings, window):
    response = client.get("/healthz")
    assert "RateLimit-Limit" not in response


# --- On the shared Redis ------------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.django_db
def test_on_redis_the_quota_is_one_counter_per_window_that_expires(settings, window):
    # given a quota of 3 per key on the real Redis
    settings.API_RATE_LIMIT_PER_KEY = 3
    merchant, key = merchant_with_key()
    client = merchant_client(key)

    # when the key makes 4 requests
    answers = [validate(client) for _ in range(4)]

    # then 3 are served and the 4th is 429 with the headers
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert [quota_of(r)[1] for r in answers] == [2, 1, 0, 0]
    assert answers[3]["Retry-After"] == "30"

    # and the window's counter lives in Redis, with an expiry just past the window
    backend = caches["default"]
    redis = backend._cache.get_client(write=True)
    prefix = merchant.api_keys.get().prefix
    index = int((time.time() // 60 * 60 + 30) // 60)
    stored = backend.make_and_validate_key(f"quota:merchant-key:{prefix}:{index}")
    assert int(redis.get(stored)) == 4
    assert 0 < redis.ttl(stored) <= 61


# --- Redis down: fail open -----------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("outage", ["stopped_cache", "hung_cache"])
def test_with_the_cache_down_every_request_is_served_without_quota_fields(request, settings, outage):
    # given the cache stopped or hung, and a quota that the requests would exceed
    request.getfixturevalue(outage)
    settings.API_RATE_LIMIT_PER_KEY = 1
    merchant, key = merchant_with_key()
    codes = [issued_code(offer_create()).plaintext for _ in range(3)]
    client = merchant_client(key)

    # when the checkout validates and redeems
    answers = [validate(client, code) for code in codes]
    redeemed = client.post(
        "/api/v1/redemptions",
        {"code": codes[0], "order_id": "A-1", "order_total": "40.00", "currency": "USD"},
        format="json",
    )

    # then every request was served (the quota fails open), without invented fields
    assert [r.status_code for r in answers] == [200, 200, 200]
    assert all(r.json()["valid"] for r in answers)
    assert redeemed.status_code == 201 and merchant.redemptions.count() == 1
    assert not any(field in r for r in [*answers, redeemed] for field in FIELDS)
    assert BREAKER.degraded
