from decimal import Decimal

import jsonschema
import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from appease.core.models import StaffAPIKey
from appease.issuance.models import Customer, Issuance
from tests.factories import customer_create, offer_create, policy_create, reason_create, staff_user

pytestmark = pytest.mark.django_db

ISSUANCES = "/api/v1/issuances"


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def world():
    policy = policy_create(day_cost_amount=Decimal("10.00"))
    return {
        "csr": staff_user(policy=policy),
        "other_csr": staff_user(policy=policy),
        "supervisor": staff_user("Supervisor", policy=policy_create(day_cost_amount=Decimal("100"))),
        "customer": customer_create(),
        "offer": offer_create(value_amount=Decimal("5.00"), cost_amount=Decimal("3.00")),
        "reason": reason_create("late-parcel"),
    }


def issue_body(world, **overrides) -> dict:
    return {
        "customer_id": world["customer"].pk,
        "offer_id": world["offer"].pk,
        "reason_code": "late-parcel",
        "note": "parcel two days late",
        **overrides,
    }


def test_issue_returns_status_code_last4_and_remaining_limits(world):
    response = client_for(world["csr"]).post(ISSUANCES, issue_body(world), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "issued"
    assert len(body["code_last4"]) == 4
    assert body["channel"] == "email"
    assert body["limits"]["remaining_today"]["cost"] == "7.00"
    assert body["limits"]["currency"] == "USD"


def test_over_limit_answers_pending_with_the_limit(world):
    client = client_for(world["csr"])
    for _ in range(3):
        client.post(ISSUANCES, issue_body(world, customer_id=customer_create().pk), format="json")
    body = client.post(ISSUANCES, issue_body(world), format="json").json()
    assert body["status"] == "pending_approval"
    assert body["code_last4"] is None
    assert body["breached_limits"][0]["limit"] == "day_cost"
    assert body["breached_limits"][0]["remaining"] == "1.00"


def test_refusal_is_403_with_field_level_explanation(world):
    csr = staff_user(policy=policy_create(over_limit="refuse", day_cost_amount=Decimal("1.00")))
    response = client_for(csr).post(ISSUANCES, issue_body(world), format="json")
    assert response.status_code == 403
    body = response.json()
    assert body["error"] == "limit_exceeded"
    assert body["limits"][0]["limit"] == "day_cost"


def test_new_customer_inline(world):
    body = issue_body(world, customer={"name": "Lucía Pérez", "phone": "+34612345678", "preferred_channel": "sms"})
    del body["customer_id"]
    response = client_for(world["csr"]).post(ISSUANCES, body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["channel"] == "sms"
    assert str(Customer.objects.get(name="Lucía Pérez").phone) == "+34612345678"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"offer_id": 999999}, "offer_id"),
        ({"reason_code": "nope"}, "reason_code"),
        ({"customer_id": 999999}, "customer_id"),
        ({"channel": "pigeon"}, "channel"),
        ({"channel": "sms"}, "channel"),
        ({"customer": {"name": "X", "phone": "12345", "preferred_channel": "sms"}}, "customer"),
    ],
)
def test_bad_input_is_400_per_field_and_changes_nothing(world, overrides, field):
    response = client_for(world["csr"]).post(ISSUANCES, {**issue_body(world), **overrides}, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["fields"]
    assert Issuance.objects.count() == 0


def test_idempotent_issue(world):
    client = client_for(world["csr"])
    first = client.post(ISSUANCES, issue_body(world), format="json", HTTP_IDEMPOTENCY_KEY="call-77")
    again = client.post(ISSUANCES, issue_body(world), format="json", HTTP_IDEMPOTENCY_KEY="call-77")
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert Issuance.objects.count() == 1


def test_a_csr_sees_only_their_own(world):
    client_for(world["csr"]).post(ISSUANCES, issue_body(world), format="json")
    client_for(world["other_csr"]).post(ISSUANCES, issue_body(world), format="json")
    mine = client_for(world["csr"]).get(ISSUANCES).json()
    assert mine["count"] == 1
    assert mine["results"][0]["csr"] == world["csr"].username
    assert client_for(world["supervisor"]).get(ISSUANCES).json()["count"] == 2


def test_list_filters(world):
    client = client_for(world["csr"])
    client.post(ISSUANCES, issue_body(world), format="json")
    other_reason = reason_create("rude-driver", incident_type="staff_attitude")
    client.post(ISSUANCES, issue_body(world, reason_code=other_reason.code), format="json")
    assert client.get(ISSUANCES, {"incident_type": "staff_attitude"}).json()["count"] == 1
    assert client.get(ISSUANCES, {"reason_code": "late-parcel"}).json()["count"] == 1
    assert client.get(ISSUANCES, {"status": "issued", "channel": "email"}).json()["count"] == 2
    assert client.get(ISSUANCES, {"status": "bogus"}).status_code == 400


def test_approve_reject_void_endpoints(world):
    csr = staff_user(policy=policy_create(day_cost_amount=Decimal("0")))
    pending = client_for(csr).post(ISSUANCES, issue_body(world), format="json").json()
    supervisor = client_for(world["supervisor"])
    # a CSR cannot approve
    assert client_for(world["other_csr"]).post(f"{ISSUANCES}/{pending['id']}/approve", {}).status_code == 403
    approved = supervisor.post(f"{ISSUANCES}/{pending['id']}/approve", {"comment": "fine"}, format="json")
    assert approved.status_code == 200, approved.json()
    assert approved.json()["status"] == "issued"
    assert approved.json()["decided_by"] == world["supervisor"].username
    voided = supervisor.post(f"{ISSUANCES}/{pending['id']}/void", {"reason": "duplicate"}, format="json")
    assert voided.json()["status"] == "voided"
    second = client_for(csr).post(ISSUANCES, issue_body(world), format="json").json()
    assert supervisor.post(f"{ISSUANCES}/{second['id']}/reject", {}, format="json").status_code == 400
    rejected = supervisor.post(f"{ISSUANCES}/{second['id']}/reject", {"comment": "no"}, format="json")
    assert rejected.json()["status"] == "rejected"


def test_customer_endpoints(world):
    client = client_for(world["csr"])
    created = client.post(
        "/api/v1/customers", {"name": "João Silva", "email": "joao@example.com", "language": "pt-br"}, format="json"
    )
    assert created.status_code == 201
    client.post(ISSUANCES, issue_body(world, customer_id=created.json()["id"]), format="json")
    found = client.get("/api/v1/customers", {"q": "joao@example.com"}).json()
    assert [c["name"] for c in found["results"]] == ["João Silva"]
    detail = client.get(f"/api/v1/customers/{created.json()['id']}").json()
    assert detail["recent"]["count"] == 1
    assert len(detail["issuances"]) == 1


def test_anonymous_and_merchants_are_refused(world, api):
    assert APIClient().get(ISSUANCES).status_code in (401, 403)
    assert api.get(ISSUANCES).status_code in (401, 403)
    assert APIClient().get("/api/v1/customers?q=a").status_code in (401, 403)


def test_a_user_without_a_role_is_refused(world):
    from django.contrib.auth.models import User

    nobody = User.objects.create_user("nobody", password="pw")
    assert client_for(nobody).post(ISSUANCES, issue_body(world), format="json").status_code == 403


def test_staff_token_authenticates_as_its_user(world):
    _key, token = StaffAPIKey.objects.create_key(name="crm", user=world["csr"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    response = client.post(ISSUANCES, issue_body(world), format="json")
    assert response.status_code == 201
    assert Issuance.objects.get().csr == world["csr"]


# --- What the fuzzer (tests/api/test_fuzz.py) found: answers the schema did not describe ---


def openapi() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def test_the_list_is_paged_and_the_schema_says_so(world):
    # given
    client = client_for(world["csr"])
    client.post(ISSUANCES, issue_body(world), format="json")

    # when
    page = client.get(ISSUANCES)
    beyond = client.get(ISSUANCES, {"page": 9})
    bad_filter = client.get(ISSUANCES, {"customer": "abc"})

    # then: a page object (not a bare list), 404 past the last page, 400 for a bad filter
    assert set(page.json()) == {"count", "next", "previous", "results"}
    assert page.json()["count"] == 1
    assert (beyond.status_code, beyond.json()["error"]) == (404, "not_found")
    assert (bad_filter.status_code, bad_filter.json()["error"]) == (400, "invalid")
    responses = openapi()["paths"][ISSUANCES]["get"]["responses"]
    assert responses["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PaginatedIssuanceOutputList"
    }
    assert {"400", "404"} <= set(responses)


def test_errors_of_an_inline_customer_are_nested_and_the_schema_allows_it(world):
    # given
    body = issue_body(world, customer={"email": "ana@example.com"})
    del body["customer_id"]

    # when
    response = client_for(world["csr"]).post(ISSUANCES, body, format="json")

    # then
    assert response.status_code == 400
    fields = response.json()["fields"]
    assert fields == {"customer": {"name": ["This field is required."]}}
    field_errors = openapi()["components"]["schemas"]["Error"]["properties"]["fields"]["additionalProperties"]
    jsonschema.validate(fields["customer"], field_errors)
    jsonschema.validate(["A message."], field_errors)


def test_a_customer_without_an_email_is_answered_as_the_schema_says(world):
    # when
    response = client_for(world["csr"]).post(
        "/api/v1/customers", {"name": "Ana", "phone": "+14155550123", "preferred_channel": "sms"}, format="json"
    )

    # then: the email is "" (not an email address), and the schema allows that
    assert response.status_code == 201, response.json()
    assert response.json()["email"] == ""
    email = openapi()["components"]["schemas"]["CustomerOutput"]["properties"]["email"]
    jsonschema.validate("", email, format_checker=jsonschema.FormatChecker())


def test_customer_search_without_q_is_400_and_the_schema_types_the_issuance_filters(world):
    """Found by the fuzzer: the schema says `q` is required, the API answered [] without it;
    the issuance filters were all documented as free strings (a number or date-time
    filter given text answered 400 to a schema-valid request)."""
    client = client_for(world["csr"])
    assert client.get("/api/v1/customers").status_code == 400
    assert client.get("/api/v1/customers", {"q": ""}).status_code == 200
    schema = SchemaGenerator().get_schema(request=None, public=True)
    params = {p["name"]: p["schema"] for p in schema["paths"][ISSUANCES]["get"]["parameters"]}
    assert (params["customer"]["type"], params["customer"]["maximum"]) == ("integer", 2**63 - 1)
    assert client.get(ISSUANCES, {"page_size": "null"}).status_code == 400  # was the default page
    huge = client.get(ISSUANCES, {"customer": str(2**70)})  # was a 500: the number overflowed in SQL
    assert (huge.status_code, list(huge.json()["fields"])) == (400, ["customer"])
    assert params["created_after"]["format"] == "date-time"
    assert params["channel"]["enum"][0] == ""  # empty: no filter, as django-filter reads it
    # every free-text string a client sends says it holds no NUL (DRF refuses one)
    body = schema["components"]["schemas"]["CaseResolveInputRequest"]["properties"]["note"]
    assert body["pattern"] == "^[^\\u0000]*$"


def test_date_filters_take_any_iso_offset_and_refuse_instants_out_of_range(world):
    # given one issuance, made now
    client = client_for(world["csr"])
    client.post(ISSUANCES, issue_body(world), format="json")

    # when the list is filtered with offsets PostgreSQL would not take as written (±15:59 at most)
    before_far_east = client.get(ISSUANCES, {"created_before": "0175-03-14T12:12:10+22:19"})
    after_far_west = client.get(ISSUANCES, {"created_after": "2000-01-01T00:00:00-23:30"})
    # and with an instant that is before the year 1 once in UTC
    out_of_range = client.get(ISSUANCES, {"created_after": "0001-01-01T00:00:00+05:00"})

    # then the first two are answered by what they mean in UTC, the last is a field error
    assert before_far_east.status_code == 200 and before_far_east.json()["count"] == 0
    assert after_far_west.status_code == 200 and after_far_west.json()["count"] == 1
    assert out_of_range.status_code == 400
    assert "created_after" in str(out_of_range.json())


# --- Issue to a new customer: one transaction, errors named as sent ---


def new_customer_body(world, customer: dict, **overrides) -> dict:
    body = issue_body(world, customer=customer, **overrides)
    del body["customer_id"]
    return body


@pytest.mark.parametrize(
    ("policy", "overrides", "status"),
    [
        ({"day_cost_amount": Decimal("10.00")}, {"channel": "sms"}, 400),  # no phone for the SMS asked for
        ({"day_cost_amount": Decimal("1.00"), "over_limit": "refuse"}, {}, 403),  # over the rep's limit
    ],
)
def test_a_refused_issuance_to_a_new_customer_leaves_no_customer_and_a_retry_adds_none(
    world, policy, overrides, status
):
    # given
    csr = staff_user(policy=policy_create(**policy))
    body = new_customer_body(world, {"name": "Ana Ruiz", "email": "ana@example.com"}, **overrides)
    customers = Customer.objects.count()

    # when: refused, then retried as it was, with and without an idempotency key
    answers = [
        client_for(csr).post(ISSUANCES, body, format="json").status_code,
        client_for(csr).post(ISSUANCES, body, format="json").status_code,
        client_for(csr).post(ISSUANCES, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1").status_code,
        client_for(csr).post(ISSUANCES, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1").status_code,
    ]

    # then
    assert answers == [status] * 4
    assert Customer.objects.count() == customers
    assert not Customer.objects.filter(email="ana@example.com").exists()
    assert Issuance.objects.count() == 0


@pytest.mark.django_db(transaction=True)  # outside any transaction, as a careless caller would be
def test_issuance_record_needs_the_callers_transaction(world):
    from django.db import transaction

    from appease.core.context import Actor
    from appease.issuance.services.issuance import issuance_record

    with pytest.raises(transaction.TransactionManagementError, match="inside the caller's transaction"):
        issuance_record(
            actor=Actor(user=world["csr"]),
            customer=world["customer"],
            offer=world["offer"],
            reason_code=world["reason"],
        )
    assert Issuance.objects.count() == 0


def test_an_inline_customers_error_is_named_as_the_caller_sent_it(world):
    # when: SMS preferred, no phone (a rule of the customer, not of one input field)
    body = new_customer_body(world, {"name": "Ana", "email": "ana@example.com", "preferred_channel": "sms"})
    response = client_for(world["csr"]).post(ISSUANCES, body, format="json")

    # then: under `customer`, as sent; nothing at the top level the request does not have
    assert response.status_code == 400, response.json()
    assert response.json()["fields"] == {"customer": {"phone": ["The preferred channel needs this contact detail."]}}
    assert not Customer.objects.filter(email="ana@example.com").exists()


def test_a_phone_only_customer_is_accepted_and_reached_by_sms(world):
    # when: no preferred channel sent
    body = new_customer_body(world, {"name": "Lucía Pérez", "phone": "+34612345678"})
    response = client_for(world["csr"]).post(ISSUANCES, body, format="json")
    created = client_for(world["csr"]).post("/api/v1/customers", {"name": "Bo", "phone": "+14155550123"}, format="json")

    # then: the preferred channel comes from the contact details given
    assert response.status_code == 201, response.json()
    assert response.json()["channel"] == "sms"
    assert Customer.objects.get(name="Lucía Pérez").preferred_channel == "sms"
    assert (created.status_code, created.json()["preferred_channel"]) == (201, "sms")


@pytest.mark.parametrize("authorization", [None, "Token not-a-real-token", "Api-Key some-merchant-key"])
def test_without_a_valid_staff_token_the_staff_api_answers_401_with_a_challenge(world, authorization):
    """It was 403 (session authentication was listed first and has no challenge)."""
    client = APIClient()
    if authorization:
        client.credentials(HTTP_AUTHORIZATION=authorization)
    for method, path in (("get", ISSUANCES), ("post", ISSUANCES), ("get", "/api/v1/customers?q=a")):
        response = getattr(client, method)(path, {}, format="json") if method == "post" else client.get(path)
        assert response.status_code == 401, (path, response.json())
        assert response["WWW-Authenticate"] == "Token"
    assert Issuance.objects.count() == 0


def test_a_signed_in_user_without_a_role_is_still_403(world):
    from django.contrib.auth.models import User

    nobody = User.objects.create_user("nobody-else", password="pw")
    response = client_for(nobody).get(ISSUANCES)
    assert response.status_code == 403
    assert "WWW-Authenticate" not in response
