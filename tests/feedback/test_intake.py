"""Every intake path: good input becomes feedback (and a case when it matters), bad
input gets field-level errors and changes nothing."""

from __future__ import annotations

import pytest
from django.test import override_settings

from appease.issuance.models import Customer, CustomerOrder
from feedback.models import Case, CaseEvent, Feedback, FeedbackSite
from tests.factories import customer_create

pytestmark = pytest.mark.django_db

URL = "/api/v1/feedback"


def post(client, site, **body):
    return client.post(URL, {"site_key": site.public_key, **body}, format="json")


def test_an_angry_rating_with_an_email_opens_a_case_for_a_new_customer(public_api, site):
    # when
    response = post(public_api, site, rating=1, text="My parcel still hasn't arrived!", email="ana@example.com")

    # then: a case, late delivery inferred from the words, for a customer created on the spot
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["disposition"] in ("queued", "critical")
    case = Case.objects.get(pk=body["case_id"])
    assert case.incident_type == "late_delivery"
    assert case.incident_inferred is True
    assert case.customer.email == "ana@example.com"
    assert case.status == Case.Status.OPEN
    assert case.first_response_due_at is not None and case.resolution_due_at is not None
    assert [e.kind for e in case.events.all()] == [CaseEvent.Kind.OPENED, CaseEvent.Kind.FEEDBACK]
    assert Feedback.objects.get(pk=body["id"]).case == case


def test_praise_is_acknowledged_without_a_case(public_api, site):
    response = post(public_api, site, rating=5, text="Lovely service, thank you", email="bea@example.com")

    assert response.status_code == 201
    assert response.json() == {"id": Feedback.objects.get().pk, "disposition": "acknowledged", "case_id": None}
    assert not Case.objects.exists()


def test_a_known_customer_is_found_by_email_phone_external_id_or_order(public_api, site):
    known = customer_create(email="carla@example.com", phone="+34612345678", external_id="C-9")
    CustomerOrder.objects.create(customer=known, reference="ORD-77")

    for identifiers in (
        {"email": "CARLA@example.com"},
        {"phone": "+34 612 345 678"},
        {"external_id": "C-9"},
        {"order_reference": "ORD-77", "email": ""},
    ):
        response = post(public_api, site, rating=2, text="broken", **identifiers)
        assert response.status_code == 201, (identifiers, response.json())
        assert Feedback.objects.get(pk=response.json()["id"]).customer == known
    assert Customer.objects.count() == 1


def test_more_feedback_on_the_same_incident_joins_the_open_case(public_api, site):
    first = post(public_api, site, rating=2, text="Late again", email="dan@example.com", incident_type="late_delivery")
    score_before = Case.objects.get().priority_score
    second = post(
        public_api, site, rating=1, text="Still late!!", email="dan@example.com", incident_type="late_delivery"
    )

    assert first.json()["case_id"] == second.json()["case_id"]
    case = Case.objects.get()
    assert case.feedback.count() == 2
    # the angrier second message (1 star against 2) raised the score
    assert case.priority_score == score_before + 5


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rating": 6, "email": "e@example.com"}, "rating"),
        ({"nps": 11, "email": "e@example.com"}, "nps"),
        ({"rating": 1, "email": "not-an-email"}, "email"),
        ({"rating": 1, "phone": "12"}, "phone"),
        ({"rating": 1}, "email"),  # no way to answer the customer
        ({"email": "e@example.com"}, "text"),  # nothing said at all
        ({"rating": 1, "email": "e@example.com", "incident_type": "alien_abduction"}, "incident_type"),
        ({"rating": 1, "email": "e@example.com", "channel": "pigeon"}, "channel"),
        ({"rating": 1, "email": "e@example.com", "text": "x" * 4001}, "text"),
        ({"rating": 1, "email": "e@example.com", "page_url": "javascript:alert(1)"}, "page_url"),
    ],
)
def test_bad_input_gets_a_field_error_and_changes_nothing(public_api, site, body, field):
    response = post(public_api, site, **body)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid"
    assert field in response.json()["fields"]
    assert not Feedback.objects.exists() and not Customer.objects.exists() and not Case.objects.exists()


def test_an_unknown_or_inactive_site_key_is_refused(public_api, site):
    site.is_active = False
    site.save()

    response = post(public_api, site, rating=1, email="f@example.com", text="late")

    assert response.status_code == 400
    assert "site_key" in response.json()["fields"]
    assert not Feedback.objects.exists()


def test_a_bot_filling_the_honeypot_is_told_yes_and_nothing_is_saved(public_api, site):
    response = post(public_api, site, rating=1, email="bot@example.com", text="buy now", website="http://spam")

    assert response.status_code == 201
    assert response.json()["id"] is None
    assert not Feedback.objects.exists() and not Customer.objects.exists()


def test_only_the_sites_allowed_origins_may_post_and_get_cors_headers(public_api):
    site = FeedbackSite.objects.create(name="Shop", allowed_origins="https://shop.example.com\n")

    allowed = public_api.post(
        URL,
        {"site_key": site.public_key, "rating": 1, "email": "g@example.com", "text": "late"},
        format="json",
        HTTP_ORIGIN="https://shop.example.com",
    )
    foreign = public_api.post(
        URL,
        {"site_key": site.public_key, "rating": 1, "email": "g@example.com", "text": "late"},
        format="json",
        HTTP_ORIGIN="https://evil.example.net",
    )
    preflight = public_api.options(
        URL,
        HTTP_ORIGIN="https://shop.example.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type",
    )

    assert allowed.status_code == 201
    assert allowed["Access-Control-Allow-Origin"] == "https://shop.example.com"
    assert foreign.status_code == 403
    assert "Access-Control-Allow-Origin" not in foreign
    assert preflight["Access-Control-Allow-Origin"] == "https://shop.example.com"
    assert "content-type" in preflight["Access-Control-Allow-Headers"].lower()
    assert Feedback.objects.count() == 1


@override_settings(FEEDBACK_RATE_PER_IP=3)
def test_intake_is_rate_limited_per_ip(public_api, site):
    statuses = [post(public_api, site, rating=5, text="fine", email=f"h{i}@example.com").status_code for i in range(5)]

    assert statuses == [201, 201, 201, 429, 429]
    assert Feedback.objects.count() == 3


@override_settings(FEEDBACK_RATE_PER_KEY=2, FEEDBACK_RATE_PER_IP=100)
def test_intake_is_rate_limited_per_site_key_across_ips(public_api, site):
    statuses = [
        public_api.post(
            URL,
            {"site_key": site.public_key, "rating": 5, "text": "fine", "email": f"i{i}@example.com"},
            format="json",
            REMOTE_ADDR=f"10.0.0.{i}",
        ).status_code
        for i in range(4)
    ]

    assert statuses == [201, 201, 429, 429]


@pytest.mark.parametrize("site_key", ['["pk_a", "pk_b"]', '{"k": 1}', "7", '"pk with spaces\\n"', '"\\ud800"'])
def test_a_malformed_site_key_is_a_400_not_a_500(public_api, site_key):
    """Found by the fuzzer: the per-key limit put the raw site_key into a cache key, so a
    list or a key with spaces made an invalid cache key (500 here, on memcached too)."""
    # when
    body = '{"site_key": ' + site_key + ', "rating": 5, "text": "fine"}'
    response = public_api.post(URL, body, content_type="application/json")

    # then
    assert response.status_code == 400
    assert "site_key" in response.json()["fields"]
    assert not Feedback.objects.exists()


def test_a_rep_logs_a_case_from_a_call_and_works_it(client, csr):
    customer = customer_create()
    client.force_login(csr)

    response = client.post(
        f"/csr/cases/new/?customer={customer.pk}",
        {"customer": customer.pk, "incident_type": "", "channel": "email", "text": "The agent was rude to me"},
    )

    case = Case.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/csr/cases/{case.pk}/"
    assert case.source == Case.Source.CSR
    assert case.incident_type == "staff_attitude"
    assert case.assigned_to == csr and case.status == Case.Status.CLAIMED


def test_a_rep_logging_a_case_without_text_sees_the_error_and_nothing_is_saved(client, csr):
    customer = customer_create()
    client.force_login(csr)

    response = client.post(f"/csr/cases/new/?customer={customer.pk}", {"customer": customer.pk, "text": ""})

    # a refusal answers 400 with the form again (docs/csr.md, "Refusals are shown where the rep is looking")
    assert response.status_code == 400
    assert "text" in response.context["form"].errors
    assert not Case.objects.exists() and not Feedback.objects.exists()


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_intake_limit_holds_under_a_concurrent_flood(settings):
    """Twenty requests at once against a limit of eight: exactly eight get through
    (counted with atomic increments, not DRF's read-modify-write history)."""
    from rest_framework.test import APIClient

    from tests.issuance.test_concurrency import run_together

    settings.FEEDBACK_RATE_PER_IP = 8
    site = FeedbackSite.objects.create(name="Flooded")

    def post_one(i):
        return (
            APIClient()
            .post(
                URL,
                {"site_key": site.public_key, "rating": 5, "text": "ok", "email": f"f{i}@example.com"},
                format="json",
            )
            .status_code
        )

    statuses = run_together(20, post_one)

    assert statuses.count(201) == 8 and statuses.count(429) == 12
    assert Feedback.objects.count() == 8


def test_a_new_customer_known_only_by_the_shops_id_is_accepted_and_not_reachable(public_api, site):
    """The widget's data-external-id mode: a logged-in shopper the shop names by its own id."""
    # when
    response = post(public_api, site, rating=1, text="My parcel is late", external_id="SHOP-42")

    # then: feedback and a case, for a customer with no contact detail and no preferred channel
    assert response.status_code == 201, response.json()
    customer = Customer.objects.get(external_id="SHOP-42")
    assert (customer.email, str(customer.phone), customer.preferred_channel) == ("", "", "")
    assert customer.reachable_channel() is None
    case = Case.objects.get(pk=response.json()["case_id"])
    assert case.customer == customer and case.channel == ""


def test_praise_with_an_incident_in_its_words_is_not_acknowledged(public_api, site):
    # when: five stars, but the text says the pot arrived broken (no incident type chosen)
    response = post(public_api, site, rating=5, text="Lovely shop, but the pot arrived broken", email="j@example.com")

    # then: the inferred incident makes it a case, not a thank-you
    assert response.status_code == 201, response.json()
    assert response.json()["disposition"] == "queued"
    case = Case.objects.get(pk=response.json()["case_id"])
    assert (case.incident_type, case.incident_inferred) == ("damaged_item", True)


def test_what_counts_as_praise_is_a_setting(public_api, site, settings):
    # given: a platinum customer (their feedback scores 30 with no incident: a case, but for praise)
    customer_create(email="k@example.com", tier="platinum", lifetime_value_amount=5000)

    thanked = post(public_api, site, rating=4, text="Good overall", email="k@example.com")
    settings.FEEDBACK_PRAISE_RATING = 5
    queued = post(public_api, site, rating=4, text="Good overall", email="k@example.com")

    assert thanked.json()["disposition"] == "acknowledged"
    assert queued.json()["disposition"] == "queued"


def test_the_intake_throttles_counters_can_be_read_back(public_api, site):
    """What bench/feedback reads after a run to check no request went uncounted."""
    import time
    from types import SimpleNamespace

    from feedback.apis import FeedbackIpThrottle, FeedbackKeyThrottle

    # given
    since = time.time()
    for i in range(3):
        post(public_api, site, rating=5, text="fine", email=f"l{i}@example.com")

    # when
    request = SimpleNamespace(data={"site_key": site.public_key}, META={"REMOTE_ADDR": "127.0.0.1"}, headers={})
    counts = [
        throttle().limiter().counted(throttle().ident(request), since=since)
        for throttle in (FeedbackIpThrottle, FeedbackKeyThrottle)
    ]

    # then
    assert counts == [3, 3]


def test_the_intake_records_whether_the_widget_or_the_shops_own_systems_posted(public_api, site):
    # when: the shop's server posts (no source), then the widget (it says so)
    from_shop = post(public_api, site, rating=1, text="Late", email="m@example.com")
    from_widget = post(public_api, site, rating=1, text="Broken", email="n@example.com", source="widget")
    bad = post(public_api, site, rating=1, text="Late", email="o@example.com", source="carrier-pigeon")

    # then
    assert Feedback.objects.get(pk=from_shop.json()["id"]).source == Case.Source.API
    assert Case.objects.get(pk=from_shop.json()["case_id"]).source == Case.Source.API
    assert Feedback.objects.get(pk=from_widget.json()["id"]).source == Case.Source.WIDGET
    assert bad.status_code == 400 and "source" in bad.json()["fields"]
