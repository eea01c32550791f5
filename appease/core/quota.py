"""The API's request quota: so many requests per caller per window, told on every answer.

Each caller (an API key; else the signed-in user; else the client IP) has a fixed-window
counter in the shared cache: one INCR (with its expiry set on the window's first request)
in one round trip to Redis. Every /api/v1 answer carries the quota in the header fields of
the IETF draft "RateLimit header fields for HTTP", draft-ietf-httpapi-ratelimit-headers-07
(the form with one field per value):

    RateLimit-Limit: 600          requests allowed in the window
    RateLimit-Remaining: 598      left in this window
    RateLimit-Reset: 42           seconds until the window ends
    RateLimit-Policy: 600;w=60    the quota policy (limit; window in seconds)

Past the limit the answer is 429 with Retry-After (and the same fields).

The quota protects the service from a runaway client; it is not a security control (the
guessing guards in appease.core.ratelimit are, and they keep counting in the database
while the cache is down). So it FAILS OPEN: while Redis is down or hangs (the breaker in
appease.core.cache is open) nothing is counted, every request is served, and the
RateLimit fields are left out rather than invented. A checkout must survive a Redis outage.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.redis import RedisCache
from django.http import JsonResponse
from django.utils.translation import gettext as _
from rest_framework.throttling import BaseThrottle

from appease.core.cache import BREAKER, CACHE_FALLBACKS, CacheUnavailable

API_PREFIX = "/api/v1/"
_local_lock = threading.Lock()  # LocMemCache: add + incr as one step in this process


@dataclass(frozen=True)
class Quota:
    limit: int
    window: int
    count: int
    reset: int  # seconds until the window ends

    @property
    def exceeded(self) -> bool:
        return self.count > self.limit

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.count)

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset),
            "RateLimit-Policy": f"{self.limit};w={self.window}",
        }


def caller(request) -> tuple[str, int]:
    """(identity, limit) of the caller: the API key, else the user, else the client IP.
    Works on DRF's request and on Django's (DRF copies `user` and `auth` onto it)."""
    key = getattr(request, "auth", None)
    kind = getattr(key, "scope_kind", None)
    if kind is not None:
        return f"{kind}-key:{key.prefix}", settings.API_RATE_LIMIT_PER_KEY
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}", settings.API_RATE_LIMIT_PER_USER
    return f"ip:{BaseThrottle().get_ident(request)}", settings.API_RATE_LIMIT_PER_IP


def quota_count(ident: str, *, limit: int, window: int) -> Quota | None:
    """Count one request for `ident`; None when the count cannot be kept (cache down:
    serve the request) or there is no limit (0)."""
    if limit <= 0:
        return None
    now = time.time()
    index = int(now // window)
    reset = max(1, math.ceil((index + 1) * window - now))
    key = f"quota:{ident}:{index}"
    backend = caches[DEFAULT_CACHE_ALIAS]
    if isinstance(backend, RedisCache):
        try:
            count = BREAKER.call(_redis_incr, backend, key, window)
        except CacheUnavailable:
            CACHE_FALLBACKS.labels("quota").inc()
            return None
    else:
        with _local_lock:
            backend.add(key, 0, timeout=window + 1)
            count = backend.incr(key)
    return Quota(limit=limit, window=window, count=count, reset=reset)


def _redis_incr(backend: RedisCache, key: str, window: int) -> int:
    # One round trip: SET NX EX starts the window's counter with its expiry (a no-op
    # afterwards), INCR counts. The backend's own client, so the key has its prefix.
    client = backend._cache.get_client(write=True)
    stored_key = backend.make_and_validate_key(key)
    pipe = client.pipeline(transaction=True)
    pipe.set(stored_key, 0, ex=window + 1, nx=True)
    pipe.incr(stored_key)
    return int(pipe.execute()[1])


def request_quota_count(request) -> Quota | None:
    ident, limit = caller(request)
    return quota_count(ident, limit=limit, window=settings.API_RATE_LIMIT_WINDOW_SECONDS)


_UNCOUNTED = object()


class ApiQuotaThrottle(BaseThrottle):
    """DRF's throttle step for the quota (REST_FRAMEWORK's DEFAULT_THROTTLE_CLASSES, and
    every view that sets its own throttles): counted once the caller is known, before
    the view runs. The answer's RateLimit fields are added by `RateLimitHeadersMiddleware`."""

    quota: Quota | None = None

    def allow_request(self, request, view) -> bool:
        counted = getattr(request._request, "api_quota", _UNCOUNTED)
        if counted is _UNCOUNTED:  # once per request, however many views it goes through
            counted = request._request.api_quota = request_quota_count(request)
        self.quota = counted
        return counted is None or not counted.exceeded

    def wait(self) -> float | None:
        return self.quota.reset if self.quota is not None else None


class RateLimitHeadersMiddleware:
    """Every /api/v1 answer carries the caller's quota. A request the throttle did not
    count (refused before it: no credentials, a bad key, no scope; a path that does not
    exist) is counted here, and answered 429 instead once over the limit."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not request.path_info.startswith(API_PREFIX):
            return response
        quota = getattr(request, "api_quota", _UNCOUNTED)
        if quota is _UNCOUNTED:
            quota = request_quota_count(request)
            if quota is not None and quota.exceeded and response.status_code < 500:
                response = JsonResponse(
                    {
                        "error": "throttled",
                        "detail": _("Too many requests. Try again in %(seconds)d seconds.") % {"seconds": quota.reset},
                    },
                    status=429,
                )
        if quota is not None:
            for field, value in quota.headers().items():
                response[field] = value
            if response.status_code == 429 and quota.exceeded:
                response["Retry-After"] = str(quota.reset)
        return response
