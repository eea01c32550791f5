"""The cache (Redis) down or hung, in this process: the breaker, the empty-cache answers,
the guessing guard counting in the database, /readyz and the metric, recovery.

The cache is a private one: a listener that accepts and never answers (hung), a closed
port (down), or a private redis-server behind a proxy that can be cut; never the shared
Redis. The same with real gunicorn processes: tests/scale/test_dependency_faults.py.
"""

from __future__ import annotations

import logging
import shutil
from collections import Counter

import pytest
from django.core.cache import cache
from prometheus_client import REGISTRY

from appease.core.cache import BREAKER
from appease.core.models import FailureCounter
from appease.core.ratelimit import FailureLimiter, database_incr_all
from tests.coupons.test_concurrency import frozen_ratelimit_clock, post, run_together, validate_body  # noqa: F401
from tests.delivery.channels.conftest import free_port
from tests.delivery.test_faults import RedisServer
from tests.netfaults import HungListener, TcpProxy

VALIDATE = "/api/v1/codes/validate"


def resilient_cache(port: int) -> dict:
    return {
        "default": {
            "BACKEND": "appease.core.cache.ResilientRedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "OPTIONS": {
                "socket_connect_timeout": 0.5,
                "socket_timeout": 0.5,
                "retry_on_timeout": False,
                "retry_on_error": [],
            },
        }
    }


@pytest.fixture(autouse=True)
def _breaker_closed():
    BREAKER.reset()
    yield
    BREAKER.reset()


@pytest.fixture
def hung_cache(settings):
    """The cache is a server that accepts connections and never answers."""
    listener = HungListener()
    settings.CACHE_RETRY_SECONDS = 3600  # no second try within a test
    settings.CACHES = resilient_cache(listener.port)
    try:
        yield listener
    finally:
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
        listener.close()


@pytest.fixture
def stopped_cache(settings):
    """The cache's port refuses connections: Redis stopped."""
    settings.CACHE_RETRY_SECONDS = 3600
    settings.CACHES = resilient_cache(free_port())
    yield
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


def degraded_gauge() -> float:
    return REGISTRY.get_sample_value("appease_cache_degraded")


def test_a_hung_cache_is_a_miss_and_is_not_asked_again_until_the_retry(hung_cache, caplog):
    # when: many reads and writes while the cache hangs
    with caplog.at_level(logging.WARNING, logger="appease.core.cache"):
        first = cache.get("rules:en", "miss")
        connections = len(hung_cache._accepted)
        answers = [cache.get("rules:en", "miss") for _ in range(20)]
        cache.set("rules:en", "x")
        cache.delete_many(["a", "b"])

    # then: every read is a miss, nothing raised, and after the first timeout nothing
    # more went to the hung server; one warning for the whole outage
    assert first == "miss" and set(answers) == {"miss"}
    assert connections == 1 and len(hung_cache._accepted) == 1
    assert BREAKER.degraded
    warnings = [r for r in caplog.records if r.name == "appease.core.cache"]
    assert len(warnings) == 1 and "cache unavailable (TimeoutError)" in warnings[0].getMessage()
    assert degraded_gauge() == 1


@pytest.mark.django_db
def test_readyz_says_degraded_not_unavailable_without_the_cache(client, stopped_cache):
    response = client.get("/readyz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded" and body["degraded"] == ["cache"]
    assert body["checks"]["cache"].startswith("degraded: ")
    assert body["checks"]["database"] == "ok"


@pytest.mark.django_db
@pytest.mark.parametrize("outage", ["hung_cache", "stopped_cache"])
def test_the_guessing_guard_holds_its_limit_in_the_database(request, settings, merchant_key, outage):
    # given: the cache hung or stopped, a limit of 3 unknown codes a window
    request.getfixturevalue(outage)
    settings.FAILED_LOOKUP_LIMIT = 3
    key = merchant_key[1]

    # when: 5 wrong codes, then a right key from the same IP
    answers = [post(key, VALIDATE, validate_body(f"WRONGCODE{i:04d}")).status for i in range(5)]

    # then: 3 answered, then 429, as with the cache; counted in the database
    assert answers == [200, 200, 200, 429, 429]
    counters = dict(FailureCounter.objects.values_list("key", "count"))
    assert sorted(counters.values()) == [3, 3]  # the key's and the IP's (a blocked try is not counted)
    assert all(key.startswith("failures:code-lookup:") for key in counters)


@pytest.mark.django_db
def test_database_counters_count_a_group_at_once_and_purge_when_over():
    from appease.core.ratelimit import failure_counters_purge

    assert database_incr_all(["b", "a"], expires_in=60) == [1, 1]
    assert database_incr_all(["a", "c"], expires_in=60) == [2, 1]
    assert database_incr_all(["x"], expires_in=-1) == [1]

    assert failure_counters_purge() == 1
    assert dict(FailureCounter.objects.values_list("key", "count")) == {"a": 2, "b": 1, "c": 1}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_with_the_cache_down_concurrent_guesses_get_exactly_the_limit(
    settings,
    merchant_key,
    stopped_cache,
    frozen_ratelimit_clock,  # noqa: F811
):
    # given
    settings.FAILED_LOOKUP_LIMIT = 10
    settings.FAILED_LOOKUP_WINDOW_SECONDS = frozen_ratelimit_clock
    key = merchant_key[1]
    # when: 30 wrong codes at once, from one key and one IP, counted in PostgreSQL
    answers = run_together(30, lambda i: post(key, VALIDATE, validate_body(f"WRONGCODE{i:04d}")))
    # then: exactly the limit answered, as ADR 0003 promises with Redis
    assert Counter(answer.status for answer in answers) == {200: 10, 429: 20}


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server on PATH (a private cache)")
@pytest.mark.django_db
def test_the_cache_comes_back_without_a_restart(settings, tmp_path, caplog):
    # given: a private redis-server behind a proxy, as the cache; retried at once
    server = RedisServer(port=free_port(), directory=tmp_path)
    server.start()
    proxy = TcpProxy(("127.0.0.1", server.port))
    settings.CACHE_RETRY_SECONDS = 0
    settings.CACHES = resilient_cache(proxy.port)
    limiter = FailureLimiter(scope="test", limit=100, window_seconds=60)
    try:
        cache.set("k", "v")
        assert cache.get("k") == "v" and not BREAKER.degraded
        # when: it stops, then comes back
        with caplog.at_level(logging.WARNING, logger="appease.core.cache"):
            proxy.down()
            assert cache.get("k", "miss") == "miss"
            limiter.record_failure(["ip:1"])  # counted in the database meanwhile
            assert BREAKER.degraded and degraded_gauge() == 1
            proxy.up()
            assert cache.get("k") == "v"
        # then: back on Redis, said once each way
        assert not BREAKER.degraded and degraded_gauge() == 0
        messages = [r.getMessage() for r in caplog.records if r.name == "appease.core.cache"]
        assert len(messages) == 2 and messages[1].startswith("cache available again")
        assert FailureCounter.objects.filter(key__startswith="failures:test:ip:1:").get().count == 1
        limiter.record_failure(["ip:1"])
        assert FailureCounter.objects.get().count == 1  # this one went to Redis
    finally:
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
        proxy.close()
        server.stop()
