"""Stored text is not frozen in the issuer's language: a limit breach is kept as data and
worded when shown, in the reader's language and number format; offer short names and
team names are translatable."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import translation
from rest_framework.test import APIClient

from appease.core.context import Actor
from appease.issuance.models import StaffProfile, Team
from appease.issuance.services.issuance import issuance_create
from appease.issuance.services.limits import breach_message
from tests.factories import customer_create, offer_create, policy_create, reason_create, staff_user

pytestmark = pytest.mark.django_db

NBSP = "\xa0"


@pytest.fixture
def pending():
    """An English-speaking rep's issuance of 1,234.50 USD over a 1,000.00 daily cost budget."""
    rep = staff_user(policy=policy_create(day_cost_amount=Decimal("1000.00")))
    StaffProfile.objects.filter(user=rep).update(language="en")
    offer = offer_create(value_amount=Decimal("1500.00"), cost_amount=Decimal("1234.50"))
    with translation.override("en"):
        return issuance_create(
            actor=Actor(user=rep), customer=customer_create(), offer=offer, reason_code=reason_create()
        )


def test_the_breach_is_stored_as_data_without_words(pending):
    assert pending.status == "pending_approval"
    assert pending.breached_limits == [
        {
            "limit": "day_cost",
            "limit_value": "1000.00",
            "attempted": "1234.50",
            "remaining": "1000.00",
            "over_by": "234.50",
            "currency": "USD",
        }
    ]


@pytest.mark.parametrize(
    ("language", "opening", "over"),
    [
        ("en", "Daily cost budget $1,000.00", "$234.50"),
        ("es", "Presupuesto de coste diario", f"234,50{NBSP}US$"),
        ("pt-br", "Orçamento diário de custo", f"US${NBSP}234,50"),
    ],
)
def test_the_breach_is_worded_in_the_readers_language_and_number_format(pending, language, opening, over):
    # the same stored row, read in three languages: their words, their money format
    with translation.override(language):
        worded = breach_message(pending.breached_limits[0])
    assert worded.startswith(opening) and over in worded


@pytest.mark.parametrize("language", ["es", "pt-br"])
def test_the_approvals_page_words_it_for_the_supervisor_reading_it(pending, client, language):
    supervisor = staff_user("Supervisor")
    StaffProfile.objects.filter(user=supervisor).update(language=language)
    client.force_login(supervisor)

    page = client.get("/csr/approvals/", HTTP_ACCEPT_LANGUAGE=language).content.decode()

    with translation.override(language):
        worded = breach_message(pending.breached_limits[0])
    assert worded in page.replace("&nbsp;", NBSP)
    assert "Daily cost budget" not in page


def test_the_api_words_it_in_the_callers_language(pending):
    supervisor = staff_user("Supervisor")
    api = APIClient()
    api.force_login(supervisor)

    body = api.get("/api/v1/issuances", HTTP_ACCEPT_LANGUAGE="pt-br").json()

    limit = body["results"][0]["breached_limits"][0]
    assert limit["limit"] == "day_cost" and limit["over_by"] == "234.50"
    assert limit["message"].startswith("Orçamento diário de custo")


def test_a_breach_stored_with_its_old_words_is_still_shown():
    old = {"limit": "customer_repeat", "message": "Ana already had 3 appeasements", "limit_value": "3"}
    assert breach_message(old) == "Ana already had 3 appeasements"


def test_offer_and_team_names_are_translatable():
    offer = offer_create(name="$5 off next order", name_es="5 $ de descuento", name_pt_br="US$ 5 de desconto")
    team = Team.objects.create(name="Front line", name_es="Primera línea")

    with translation.override("es"):
        assert (str(offer), team.name) == ("5 $ de descuento", "Primera línea")
    with translation.override("pt-br"):
        assert (str(offer), team.name) == ("US$ 5 de desconto", "Front line")  # no Portuguese: the English one
