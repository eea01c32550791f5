"""Fixtures for the feedback loop: a site, a rep, a supervisor, and how to open cases."""

from __future__ import annotations

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from appease.core.context import Actor
from feedback.models import Case, FeedbackSite
from feedback.services.intake import CustomerRef, feedback_submit
from tests.delivery.channels.conftest import smtp_server  # noqa: F401  (a real SMTP server, for replies)
from tests.factories import policy_create, staff_user


@pytest.fixture
def site(db):
    return FeedbackSite.objects.create(name="Shop")


@pytest.fixture
def csr(db):
    """A rep with a roomy daily budget (1,000 USD at cost)."""
    return staff_user("CSR", policy=policy_create(day_cost_amount=Decimal("1000")))


@pytest.fixture
def supervisor(db):
    return staff_user("Supervisor")


@pytest.fixture
def public_api(db):
    return APIClient()


def open_case(*, customer=None, text="My parcel is late", rating=1, incident_type="late_delivery", **kwargs) -> Case:
    """A case from the API path; `customer` or an email must name the customer."""
    feedback = feedback_submit(
        actor=Actor(),
        source=Case.Source.API,
        customer=customer,
        ref=kwargs.pop("ref", CustomerRef(email=kwargs.pop("email", "pat@example.com"))),
        text=text,
        rating=rating,
        incident_type=incident_type,
        force_case=kwargs.pop("force_case", True),
        **kwargs,
    )
    assert feedback.case_id is not None
    return feedback.case


@pytest.fixture
def eager():
    """Celery tasks run in-process when published (the real worker is exercised in
    tests/delivery/test_faults.py and bench/feedback)."""
    from appease.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous
