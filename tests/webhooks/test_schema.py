"""The events in the OpenAPI schema: every event type is a callback of the endpoint
registration, with an example; and each example has the keys the real services send
(`assert_documented`, called by the tests that drive those services)."""

from __future__ import annotations

from appease.webhooks.models import EventType, WebhookEvent
from appease.webhooks.schema import EXAMPLE_DATA


def assert_documented(events) -> None:
    """Every event's `data` has exactly the keys of its documented example."""
    events = list(events)
    assert events
    for event in events:
        assert set(event.payload) == set(EXAMPLE_DATA[event.type]), (
            f"{event.type}: the schema's example (appease/webhooks/schema.py) and the payload differ"
        )


def test_every_event_type_is_a_documented_callback_with_an_example(client):
    spec = client.get("/api/v1/schema/?format=json").json()
    create = spec["paths"]["/api/v1/webhook-endpoints"]["post"]
    callbacks = create["callbacks"]
    assert set(callbacks) == {event.value for event in EventType}
    for name, callback in callbacks.items():
        (operation,) = callback["{$request.body#/url}"].values()
        body = operation["requestBody"]["content"]["application/json"]
        (example,) = body["examples"].values()
        assert example["value"]["type"] == name
        assert example["value"]["data"] == EXAMPLE_DATA[name]


def test_a_payload_that_drifts_from_its_example_is_caught(db):
    event = WebhookEvent(type="case.opened", payload={**EXAMPLE_DATA["case.opened"], "email": "x@example.com"})
    try:
        assert_documented([event])
    except AssertionError:
        return
    raise AssertionError("a payload with an extra key passed")
