"""CORS belongs to the feedback intake alone, for the origins a site lists.

django-cors-headers answers CORS when CORS_URLS_REGEX matches *or* a receiver of its
check_request_enabled signal says yes; ours used to say yes on any path, so checkout,
issuances and the admin answered CORS to every origin any site allowed (and a site with
no list allowed every origin)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from feedback.models import Feedback, FeedbackSite
from tests.factories import staff_user

pytestmark = pytest.mark.django_db

SHOP = "https://shop.example.com"
INTAKE = "/api/v1/feedback"


@pytest.fixture
def listed_site(db):
    return FeedbackSite.objects.create(name="Shop", allowed_origins=f"{SHOP}\n")


def preflight(client, path, origin):
    return client.options(
        path,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type, authorization",
    )


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/codes/validate",
        "/api/v1/redemptions",
        "/api/v1/issuances",
        "/api/v1/customers",
        "/api/v1/events",
        "/admin/login/",
        "/accounts/login/",
    ],
)
def test_no_path_but_the_intake_answers_cors_even_to_a_listed_origin(listed_site, merchant_key, path):
    # given: a merchant's key and a rep's session, from a page at an origin a site lists
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {merchant_key[1]}")
    client.force_login(staff_user())

    # when
    answers = [preflight(client, path, SHOP), client.post(path, {}, format="json", HTTP_ORIGIN=SHOP)]

    # then
    for answer in answers:
        assert "Access-Control-Allow-Origin" not in answer, (path, answer.status_code)
        assert "Access-Control-Allow-Credentials" not in answer


def test_the_intake_answers_cors_to_listed_origins_only(listed_site):
    client = APIClient()
    body = {"site_key": listed_site.public_key, "rating": 1, "email": "g@example.com", "text": "late"}

    listed = preflight(client, INTAKE, SHOP)
    foreign = preflight(client, INTAKE, "https://evil.example.net")
    posted = client.post(INTAKE, body, format="json", HTTP_ORIGIN=SHOP)

    assert listed["Access-Control-Allow-Origin"] == SHOP
    assert "Access-Control-Allow-Origin" not in foreign
    assert posted.status_code == 201 and posted["Access-Control-Allow-Origin"] == SHOP


def test_a_site_with_no_origin_list_allows_no_other_website():
    # given: a new site, no origins listed
    site = FeedbackSite.objects.create(name="New shop")
    client = APIClient()
    body = {"site_key": site.public_key, "rating": 1, "email": "g@example.com", "text": "late"}

    # when: a page elsewhere, a server (no Origin), and this server's own page post
    elsewhere_preflight = preflight(client, INTAKE, SHOP)
    elsewhere = client.post(INTAKE, body, format="json", HTTP_ORIGIN=SHOP)
    server = client.post(INTAKE, {**body, "email": "s@example.com"}, format="json")
    own_page = client.post(INTAKE, {**body, "email": "o@example.com"}, format="json", HTTP_ORIGIN="http://testserver")

    # then: no CORS for any origin, the other website refused, the others taken
    assert "Access-Control-Allow-Origin" not in elsewhere_preflight
    assert elsewhere.status_code == 403 and elsewhere.json()["error"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in elsewhere
    assert (server.status_code, own_page.status_code) == (201, 201)
    assert Feedback.objects.count() == 2
