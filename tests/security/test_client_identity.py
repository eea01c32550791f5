"""A client cannot choose its own IP address, and the API answers unknown paths in JSON."""

from __future__ import annotations

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from feedback.models import Feedback, FeedbackSite

pytestmark = pytest.mark.django_db


@override_settings(FEEDBACK_RATE_PER_IP=2, FEEDBACK_RATE_PER_KEY=1000)
def test_a_forged_x_forwarded_for_does_not_walk_past_the_per_ip_limit():
    site = FeedbackSite.objects.create(name="Shop")
    client = APIClient()

    statuses = [
        client.post(
            "/api/v1/feedback",
            {"site_key": site.public_key, "rating": 5, "text": "fine", "email": f"x{i}@example.com"},
            format="json",
            HTTP_X_FORWARDED_FOR=f"198.51.100.{i}",
        ).status_code
        for i in range(5)
    ]

    assert statuses == [201, 201, 429, 429, 429]
    assert Feedback.objects.count() == 2


def test_an_unknown_api_path_is_a_json_404(client):
    response = client.post("/api/v1/issuances/not-a-uuid/void")

    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": "Not found."}
    assert client.get("/no-such-page/").status_code == 404
