"""Health and metrics endpoints for the operators' load balancer and Prometheus.

- `/healthz`: liveness. The process answers; nothing else is checked.
- `/readyz`: readiness. The database answers a query, within about a second; 503 with
  the failing check otherwise. The broker and the cache (Redis) are checked too, but
  without them the process still serves (issuances wait in the outbox, rate limits count
  in the database): 200 with `"status": "degraded"` and the checks named in `degraded`
  (docs/deploy.md, "When Redis is down"). It also reports beat's heartbeat and its age
  (`beat`, `beat_age_s`), which never makes it 503.
  Both are answered by `HealthProbeMiddleware` before the HTTPS redirect and
  ALLOWED_HOSTS (a load balancer probes over plain HTTP with an IP Host header).
- `/metrics`: Prometheus text format: request counts and latencies per view
  (django-prometheus), failed code look-ups, and the state of the business read from
  the database (issuances, redemptions and reversals, feedback, deliveries and their
  latency, dead letters, queue depth, open cases, SLA breaches). Open to METRICS_TOKEN bearers only in
  production; in the demo (DEBUG), without a token, to the local machine.
"""

from __future__ import annotations

import hmac
import os
import time
from datetime import timedelta

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, cache, caches
from django.core.cache.backends.redis import RedisCache
from django.db import connection
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY

from appease.beat import beat_heartbeat_get
from appease.celery import app
from appease.core.cache import BREAKER, CacheUnavailable
from appease.delivery.models import Delivery
from appease.issuance.models import Issuance
from coupons.models import Redemption
from feedback.models import Case, Feedback

LATENCY_BUCKETS = [1, 2, 5, 10, 30, 60, 300]
CACHE_KEY = "metrics:business"
CACHE_SECONDS = 10


@require_GET
@never_cache
def healthz(request):
    return JsonResponse({"status": "ok"})


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def _check_broker() -> str:

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=1)
    return "ok"


def _check_cache() -> str:
    """The shared cache answers, within its socket timeout. Without it this process is
    degraded, not unavailable: rate limits count in the database (appease/core/cache.py)."""
    backend = caches[DEFAULT_CACHE_ALIAS]
    if not isinstance(backend, RedisCache):
        return "ok (per process)"
    try:
        BREAKER.probe(lambda: backend._cache.get_client().ping())
    except CacheUnavailable as error:
        return f"degraded: {error}"
    return "ok"


# Without these a web process still serves every request: issuances are committed and
# the sweeper enqueues them once the broker is back (docs/adr/0006), rate limits count in
# the database (docs/adr/0008). A load balancer that took every web process out when
# Redis stops would turn a cache outage into a full outage.
DEGRADED_WITHOUT = ("broker", "cache")


@require_GET
@never_cache
def readyz(request):
    checks, ready, degraded = {}, True, []
    for name, check in (("database", _check_database), ("broker", _check_broker), ("cache", _check_cache)):
        started = time.monotonic()
        try:
            checks[name] = check()
        except Exception as error:  # any failure means "not ready", with its reason
            checks[name] = f"error: {type(error).__name__}"
            if name in DEGRADED_WITHOUT:
                degraded.append(name)
            else:
                ready = False
        else:
            if checks[name].startswith("degraded"):
                degraded.append(name)
        checks[f"{name}_ms"] = round((time.monotonic() - started) * 1000)
    checks.update(_beat())
    status = "unavailable" if not ready else "degraded" if degraded else "ready"
    return JsonResponse({"status": status, "checks": checks, "degraded": degraded}, status=200 if ready else 503)


def _beat() -> dict:
    """Beat's heartbeat and its age: detail for the operator, not a reason to take this
    web process out of the load balancer (beat runs elsewhere, and one at a time)."""

    try:
        heartbeat = beat_heartbeat_get()
    except Exception as error:  # the cache is down: the broker check says so too
        return {"beat": f"error: {type(error).__name__}", "beat_age_s": None}
    if not heartbeat:
        return {"beat": "never", "beat_age_s": None}
    age = max(0, round(time.time() - heartbeat["at"]))
    return {"beat": "ok" if age <= settings.BEAT_STALE_SECONDS else "stale", "beat_age_s": age}


class BusinessCollector:
    """The state of the business, read from the database at scrape time: exact across
    every web and worker process, and cached for CACHE_SECONDS so many scrapers or web
    processes do not multiply the queries."""

    def collect(self):
        families = cache.get(CACHE_KEY)
        if families is None:
            families = list(self._families())
            cache.set(CACHE_KEY, families, CACHE_SECONDS)
        yield from families

    def _families(self):

        issuances = GaugeMetricFamily("appease_issuances", "Issuances by status.", labels=["status"])
        for row in Issuance.objects.values("status").annotate(n=Count("pk")).order_by():
            issuances.add_metric([row["status"]], row["n"])
        yield issuances

        # Counters never go down: every redemption ever made, and every reversal (a reversed
        # redemption stays counted above; by status, a reversal would lower "active").
        redeemed = Redemption.objects.aggregate(
            total=Count("pk"), reversed=Count("pk", filter=Q(status=Redemption.Status.REVERSED))
        )
        yield CounterMetricFamily("appease_redemptions", "Redemptions made at checkout.", value=redeemed["total"])
        yield CounterMetricFamily(
            "appease_redemption_reversals",
            "Redemptions reversed (refunds, cancelled orders).",
            value=redeemed["reversed"],
        )

        feedback = CounterMetricFamily(
            "appease_feedback",
            "Feedback received, by where it came from and what became of it.",
            labels=["source", "disposition"],
        )
        for row in Feedback.objects.values("source", "disposition").annotate(n=Count("pk")).order_by():
            feedback.add_metric([row["source"], row["disposition"]], row["n"])
        yield feedback

        deliveries = GaugeMetricFamily(
            "appease_deliveries", "Deliveries by status and channel.", labels=["status", "channel"]
        )
        dead = 0
        for row in Delivery.objects.values("status", "channel").annotate(n=Count("pk")).order_by():
            deliveries.add_metric([row["status"], row["channel"]], row["n"])
            dead += row["n"] if row["status"] == Delivery.Status.DEAD else 0
        yield deliveries
        yield GaugeMetricFamily("appease_dead_letters", "Deliveries given up on (status dead).", value=dead)

        now = timezone.now()
        yield GaugeMetricFamily(
            "appease_delivery_queue_depth",
            "Deliveries due and not yet sent.",
            value=Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now).count(),
        )

        # From creation to sent, for deliveries sent in the last 15 minutes.
        recent = Delivery.objects.filter(sent_at__gte=now - timedelta(minutes=15))
        counts = recent.aggregate(
            total=Count("pk"),
            seconds=Sum(ExpressionWrapper(F("sent_at") - F("created_at"), output_field=DurationField())),
            **{
                f"le_{seconds}": Count("pk", filter=Q(sent_at__lte=F("created_at") + timedelta(seconds=seconds)))
                for seconds in LATENCY_BUCKETS
            },
        )
        latency = HistogramMetricFamily(
            "appease_delivery_latency_seconds", "From delivery created to sent, over the last 15 minutes."
        )
        latency.add_metric(
            [],
            buckets=[(str(float(s)), counts[f"le_{s}"]) for s in LATENCY_BUCKETS] + [("+Inf", counts["total"])],
            sum_value=counts["seconds"].total_seconds() if counts["seconds"] else 0.0,
        )
        yield latency

        open_cases = GaugeMetricFamily("appease_open_cases", "Open cases by priority.", labels=["priority"])
        for row in (
            Case.objects.filter(status__in=Case.OPEN_STATUSES).values("priority").annotate(n=Count("pk")).order_by()
        ):
            open_cases.add_metric([row["priority"]], row["n"])
        yield open_cases

        # Every breach, every round of a case (the counters are never cleared, unlike the
        # *_breached_at of the current round): a true counter, it never goes down.
        breaches = Case.objects.aggregate(
            first=Sum("first_response_breaches", default=0), resolution=Sum("resolution_breaches", default=0)
        )
        sla = CounterMetricFamily(
            "appease_sla_breaches",
            "Service-level targets missed, each breach of each round of a reopened case.",
            labels=["target"],
        )
        sla.add_metric(["first_response"], breaches["first"])
        sla.add_metric(["resolution"], breaches["resolution"])
        yield sla

        heartbeat = beat_heartbeat_get()
        if heartbeat:  # absent until beat first ticks: alert on absent() too
            yield GaugeMetricFamily(
                "appease_beat_heartbeat_timestamp_seconds",
                "When beat last ticked (Unix time): alert when time() minus this passes a few minutes.",
                value=heartbeat["at"],
            )


BUSINESS = CollectorRegistry(auto_describe=False)
BUSINESS.register(BusinessCollector())


def _allowed(request) -> bool:
    """A METRICS_TOKEN bearer; without a token, nobody in production (behind a proxy on
    the same host every visitor comes from 127.0.0.1), the local machine in the demo."""
    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(given, token)
    return settings.DEBUG and request.META.get("REMOTE_ADDR") in ("127.0.0.1", "::1")


@require_GET
@never_cache
def metrics(request):
    if not _allowed(request):
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain")
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Several gunicorn workers: add up what each process wrote to the shared folder.
        processes = CollectorRegistry()
        MultiProcessCollector(processes)
        body = generate_latest(processes)
    else:
        body = generate_latest(REGISTRY)
    body += generate_latest(BUSINESS)
    return HttpResponse(body, content_type="text/plain; version=0.0.4; charset=utf-8")
