"""/metrics as Prometheus reads it: parsed with prometheus_client's own parser, every
family of the declared type, and the business moving the right series."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from feedback.models import Feedback, FeedbackSite
from tests.factories import issued_code, policy_create, staff_user
from tests.issuance.test_issuance import give

pytestmark = pytest.mark.django_db

TYPES = {
    "django_http_requests_latency_seconds_by_view_method": "histogram",
    "django_http_responses_total_by_status_view_method": "counter",
    "appease_failed_lookups": "counter",
    "appease_issuances": "gauge",
    "appease_redemptions": "counter",
    "appease_redemption_reversals": "counter",
    "appease_feedback": "counter",
    "appease_deliveries": "gauge",
    "appease_dead_letters": "gauge",
    "appease_delivery_queue_depth": "gauge",
    "appease_delivery_latency_seconds": "histogram",
    "appease_open_cases": "gauge",
    "appease_sla_breaches": "counter",
}


@pytest.fixture
def scrape(client, settings):
    """Scrape /metrics as Prometheus does (a bearer token) and parse it."""
    settings.METRICS_TOKEN = "scrape-token-0123456789"

    def read() -> dict:
        cache.delete("metrics:business")  # the business families are cached 10 s
        response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-0123456789")
        assert response.status_code == 200
        families = {}
        for family in text_string_to_metric_families(response.content.decode()):
            assert family.name not in families, f"{family.name} is exposed twice"
            families[family.name] = family
        return families

    return read


def value(families: dict, sample: str, **labels) -> float:
    """The value of one series (0 when it is not there yet)."""
    family = sample.removesuffix("_total")
    return sum(
        s.value
        for s in families[family].samples
        if s.name == sample and all(s.labels.get(key) == wanted for key, wanted in labels.items())
    )


def test_every_family_has_its_declared_type(scrape, client):
    # given one request of each kind the families describe
    client.get("/accounts/login/")  # (the health probes are answered before the request metrics)
    give(staff_user(policy=policy_create(day_cost_amount=1000)))

    # when Prometheus scrapes
    families = scrape()

    # then each family is there, of its type, with the samples that type has
    for name, kind in TYPES.items():
        assert name in families, f"{name} missing"
        assert families[name].type == kind, (name, families[name].type)
    latency = {s.name for s in families["appease_delivery_latency_seconds"].samples}
    assert {"appease_delivery_latency_seconds_bucket", "appease_delivery_latency_seconds_count"} <= latency
    buckets = [s for s in families["appease_delivery_latency_seconds"].samples if s.name.endswith("_bucket")]
    assert buckets[-1].labels["le"] == "+Inf"


def test_an_issuance_moves_the_issuance_and_delivery_series(scrape):
    # given
    csr = staff_user(policy=policy_create(day_cost_amount=1000))
    before = scrape()

    # when a rep issues an appeasement
    give(csr)

    # then one more issued, one more email delivery pending, one more in the queue
    after = scrape()
    assert value(after, "appease_issuances", status="issued") == value(before, "appease_issuances", status="issued") + 1
    pending = {"status": "pending", "channel": "email"}
    assert value(after, "appease_deliveries", **pending) == value(before, "appease_deliveries", **pending) + 1
    assert value(after, "appease_delivery_queue_depth") == value(before, "appease_delivery_queue_depth") + 1


def test_a_redemption_and_its_reversal_move_two_counters_that_never_go_down(scrape, api):
    # given an issued code
    issued = issued_code()
    before = scrape()

    # when it is redeemed at checkout
    redeemed = api.post(
        "/api/v1/redemptions",
        {"code": issued.plaintext, "order_id": "A-1", "order_total": "40.00", "currency": "USD"},
        format="json",
    )
    assert redeemed.status_code == 201
    middle = scrape()
    # and then reversed
    reverse = f"/api/v1/redemptions/{redeemed.json()['id']}/reverse"
    assert api.post(reverse, {"reason": "order cancelled"}, format="json").status_code == 200
    after = scrape()

    # then the redemptions counter went up once and stayed up; the reversal has its own
    assert value(middle, "appease_redemptions_total") == value(before, "appease_redemptions_total") + 1
    assert value(after, "appease_redemptions_total") == value(middle, "appease_redemptions_total")
    assert value(after, "appease_redemption_reversals_total") == value(middle, "appease_redemption_reversals_total") + 1


def test_a_failed_look_up_moves_the_guessing_counter(scrape, api):
    # given
    before = scrape()

    # when a checkout looks up a code that does not exist
    response = api.post(
        "/api/v1/codes/validate",
        {"code": "ABCD-EFGH-JKLM-NPQR-S", "order_total": "50", "currency": "USD"},
        format="json",
    )
    assert response.json() == {"valid": False, "reason": "unknown"}

    # then
    after = scrape()
    assert value(after, "appease_failed_lookups_total") == value(before, "appease_failed_lookups_total") + 1


def test_a_feedback_moves_the_feedback_counter_and_the_open_cases(scrape):
    # given a site with the widget
    site = FeedbackSite.objects.create(name="Shop")
    before = scrape()

    # when an angry customer writes through the widget's API
    response = APIClient().post(
        "/api/v1/feedback",
        {
            "site_key": site.public_key,
            "rating": 1,
            "text": "My parcel still hasn't arrived!",
            "email": "ana@example.com",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    feedback = Feedback.objects.get(pk=response.json()["id"])

    # then one more feedback of its source and disposition, and one more open case
    after = scrape()
    series = {"source": feedback.source, "disposition": feedback.disposition}
    assert value(after, "appease_feedback_total", **series) == value(before, "appease_feedback_total", **series) + 1
    assert value(after, "appease_open_cases") == value(before, "appease_open_cases") + 1
