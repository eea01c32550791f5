"""Orders as data: `order.placed` events and the orders CSV import record each order once
by its reference, compute the customer's history from their orders, and stamp the
appeasements an order answers as ordered again."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from appease.core.context import SYSTEM, Actor
from appease.issuance.models import Customer, CustomerOrder
from appease.issuance.services.issuance import issuance_create
from feedback.models import AppeasementOutcome, MerchantEvent
from feedback.services.orders import OrdersFileInvalid, orders_import, repurchases_stamp
from tests.coupons.test_concurrency import run_together
from tests.factories import customer_create, merchant_with_key, offer_create, policy_create, reason_create, staff_user

pytestmark = pytest.mark.django_db

URL = "/api/v1/events"
PLACED = "2025-12-01T10:00:00+01:00"


def order_event(event_id="O-1", *, customer=None, occurred_at=None, **order):
    body = {
        "event_id": event_id,
        "event_type": "order.placed",
        "data": {
            "customer": customer if customer is not None else {"email": "Lucia@Example.com", "name": "Lucía Pérez"},
            "order": {"reference": "A-1001", "total": "84.90", "currency": "EUR", "placed_at": PLACED, **order},
        },
    }
    if occurred_at:
        body["occurred_at"] = occurred_at
    return body


def send(api, body, **headers):
    return api.post(URL, body, format="json", **headers)


# --- the event ---------------------------------------------------------------------------


def test_an_order_placed_event_records_the_order_and_computes_the_new_customers_history(
    api, django_capture_on_commit_callbacks
):
    # when
    with django_capture_on_commit_callbacks() as callbacks:
        response = send(api, order_event())

    # then: recorded at once, no task to run
    assert response.status_code == 202, response.json()
    body = response.json()
    order = CustomerOrder.objects.get()
    assert body["result"] == {
        "order_id": order.pk,
        "customer_id": order.customer_id,
        "order": "created",
        "repurchases": 0,
    }
    assert body["processed_at"] is not None and not callbacks
    assert (order.reference, order.total_amount, order.currency, order.source) == (
        "A-1001",
        Decimal("84.90"),
        "EUR",
        "event",
    )
    assert order.placed_at.isoformat() == "2025-12-01T09:00:00+00:00"
    # a customer we never met, paying in the order's currency, with the history computed
    customer = Customer.objects.get()
    assert (customer.name, customer.email, customer.currency) == ("Lucía Pérez", "Lucia@Example.com", "EUR")
    assert (customer.orders_count, customer.total_spend_amount, customer.lifetime_value_amount) == (
        1,
        Decimal("84.90"),
        Decimal("84.90"),
    )
    assert customer.last_order_at == order.placed_at and customer.history_computed_at is not None


def test_the_same_order_again_under_another_event_id_changes_nothing(api):
    first = send(api, order_event("O-1"))
    customer = Customer.objects.get()
    computed_at = customer.history_computed_at

    again = send(api, order_event("O-2", customer={"email": "lucia@example.com"}))

    assert first.status_code == 202 and again.status_code == 202
    assert again.json()["result"]["order"] == "unchanged"
    assert CustomerOrder.objects.count() == 1 and Customer.objects.count() == 1
    customer.refresh_from_db()
    assert (customer.orders_count, customer.history_computed_at) == (1, computed_at)


def test_the_same_event_id_again_answers_the_first_event(api):
    first = send(api, order_event("O-1"))
    again = send(api, order_event("O-1"))

    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["result"] == first.json()["result"]
    assert MerchantEvent.objects.count() == 1 and CustomerOrder.objects.count() == 1


def test_the_same_reference_for_another_customer_is_refused_on_the_reference_and_saves_nothing(api):
    send(api, order_event("O-1"))

    response = send(api, order_event("O-2", customer={"email": "someone.else@example.com"}))

    assert response.status_code == 400, response.json()
    assert response.json()["fields"] == {"data.order.reference": ["This order reference is another customer's order."]}
    # the event, and the customer it would have created, rolled back with it
    assert MerchantEvent.objects.count() == 1
    assert list(Customer.objects.values_list("email", flat=True)) == ["Lucia@Example.com"]


def test_the_same_reference_with_another_total_is_refused_on_the_total(api):
    send(api, order_event("O-1"))

    response = send(api, order_event("O-2", total="90.00"))

    assert response.status_code == 400
    assert response.json()["fields"] == {
        "data.order.total": ["This order was recorded with a total of €84.90; an order's total does not change."]
    }
    assert CustomerOrder.objects.get().total_amount == Decimal("84.90")


@pytest.mark.parametrize(
    ("order", "field", "message"),
    [
        ({"total": "1e3"}, "data.order.total", 'Give the total as a decimal number with a point, e.g. "40.50".'),
        ({"total": "84,90"}, "data.order.total", 'Give the total as a decimal number with a point, e.g. "40.50".'),
        ({"total": "NaN"}, "data.order.total", 'Give the total as a decimal number with a point, e.g. "40.50".'),
        ({"total": "Infinity"}, "data.order.total", 'Give the total as a decimal number with a point, e.g. "40.50".'),
        ({"total": "-5.00"}, "data.order.total", "The total cannot be negative."),
        ({"total": -5}, "data.order.total", "The total cannot be negative."),
        ({"total": True}, "data.order.total", 'Give the total, e.g. "40.50".'),
        ({"total": {"amount": 5}}, "data.order.total", 'Give the total as a decimal number, e.g. "40.50".'),
        ({"total": "84.905"}, "data.order.total", "EUR amounts have at most 2 decimal places."),
        ({"total": "12345678901"}, "data.order.total", "The total is too large."),
        ({"currency": "XYZ"}, "data.order.currency", "XYZ is not an ISO 4217 currency code."),
        ({"currency": ""}, "data.order.currency", "Give the order's currency, an ISO 4217 code such as EUR."),
        (
            {"placed_at": "2025-12-01T10:00:00"},
            "data.order.placed_at",
            "Give the time with its offset, e.g. 2026-12-07T09:30:00+01:00.",
        ),
        (
            {"placed_at": "yesterday"},
            "data.order.placed_at",
            "Give the time with its offset, e.g. 2026-12-07T09:30:00+01:00.",
        ),
        ({"placed_at": "2099-01-01T00:00:00Z"}, "data.order.placed_at", "An order cannot be placed in the future."),
        ({"reference": "  "}, "data.order.reference", "Give the order's reference."),
        ({"reference": "R" * 101}, "data.order.reference", "At most 100 characters."),
    ],
)
def test_a_bad_order_is_refused_with_the_field_named_by_its_place_and_nothing_saved(api, order, field, message):
    response = send(api, order_event(**order))

    assert response.status_code == 400, response.json()
    assert response.json()["fields"] == {field: [message]}
    assert not MerchantEvent.objects.exists() and not Customer.objects.exists() and not CustomerOrder.objects.exists()


def test_an_order_event_needs_one_customer_and_an_order(api):
    body = {"event_id": "O-1", "event_type": "order.placed", "data": {"customers": [{"email": "a@example.com"}]}}

    response = send(api, body)

    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"data.customers", "data.customer", "data.order"}
    assert not MerchantEvent.objects.exists()


def test_the_customers_bad_email_is_named_and_the_errors_speak_the_callers_language(api):
    body = order_event(customer={"email": "not-an-email"}, total="-1")

    response = send(api, body, HTTP_ACCEPT_LANGUAGE="es")

    assert response.status_code == 400
    fields = response.json()["fields"]
    assert set(fields) == {"data.customer.email", "data.order.total"}
    assert fields["data.order.total"] == ["El total no puede ser negativo."]


def test_a_json_number_total_is_read_as_the_decimal_it_says_and_placed_at_may_be_the_events_time(api):
    body = order_event(total=19.99, placed_at=None, occurred_at="2025-12-02T08:00:00Z")

    response = send(api, body)

    assert response.status_code == 202, response.json()
    order = CustomerOrder.objects.get()
    assert order.total_amount == Decimal("19.99")
    assert order.placed_at.isoformat() == "2025-12-02T08:00:00+00:00"


def test_an_order_completes_a_reference_a_rep_typed_for_the_same_customer(api):
    lucia = customer_create(email="lucia@example.com", currency="EUR", orders_count=7)
    CustomerOrder.objects.create(customer=lucia, reference="A-1001")

    response = send(api, order_event())

    assert response.json()["result"]["order"] == "completed"
    order = CustomerOrder.objects.get()
    assert (order.customer_id, order.total_amount, order.source) == (lucia.pk, Decimal("84.90"), "event")
    lucia.refresh_from_db()
    assert lucia.orders_count == 1  # computed now: the typed 7 no longer counts


# --- repurchase ------------------------------------------------------------------------


@pytest.fixture
def appeased():
    """Lucía, appeased three times (100, 30 and 1 day before 1 December), Kim once (30 days)."""
    rep = staff_user(policy=policy_create(currency="EUR", day_cost_amount=Decimal("500")))
    lucia = customer_create(email="lucia@example.com", currency="EUR")
    kim = customer_create(email="kim@example.com", currency="EUR")
    offer = offer_create(kind="amount_off", value_amount=Decimal("5"), cost_amount=Decimal("3.50"), currency="EUR")
    reason = reason_create(incident_type="late_delivery")
    placed = datetime.fromisoformat(PLACED)
    outcomes = {}
    for name, customer, days in [("old", lucia, 100), ("recent", lucia, 30), ("eve", lucia, 1), ("kim", kim, 30)]:
        issuance = issuance_create(actor=Actor(user=rep), customer=customer, offer=offer, reason_code=reason)
        outcome = AppeasementOutcome.objects.get(issuance=issuance)
        AppeasementOutcome.objects.filter(pk=outcome.pk).update(given_at=placed - timedelta(days=days))
        outcomes[name] = outcome.pk
    return {"lucia": lucia, "kim": kim, "outcomes": outcomes, "placed": placed}


def stamps(appeased) -> dict[str, object]:
    by_pk = dict(AppeasementOutcome.objects.values_list("pk", "repurchased_at"))
    return {name: by_pk[pk] for name, pk in appeased["outcomes"].items()}


def test_an_order_stamps_the_customers_appeasements_within_the_window_before_it(api, appeased, settings):
    settings.REPURCHASE_WINDOW = timedelta(days=60)

    response = send(api, order_event())

    assert response.json()["result"]["repurchases"] == 2
    placed = appeased["placed"]
    # inside the window and before the order: stamped; 100 days before, or Kim's: not
    assert stamps(appeased) == {"old": None, "recent": placed, "eve": placed, "kim": None}


def test_an_appeasement_after_the_order_is_not_stamped_and_the_first_order_in_the_window_stays(api, appeased):
    placed = appeased["placed"]
    send(api, order_event())  # 1 December
    # given: a later appeasement, after the order
    AppeasementOutcome.objects.filter(pk=appeased["outcomes"]["kim"]).update(
        customer=appeased["lucia"], given_at=placed + timedelta(days=2)
    )

    # when: a second order on 10 December, then one of 20 November that reached us late
    send(api, order_event("O-2", reference="A-1002", placed_at="2025-12-10T10:00:00+01:00"))
    send(api, order_event("O-3", reference="A-0999", placed_at="2025-11-20T10:00:00+01:00"))

    # then: the appeasement of 29 November keeps 1 December; the one after the first order
    # gets 10 December; the one of 2 November the late order of 20 November (the first)
    result = stamps(appeased)
    assert result["eve"] == placed
    assert result["kim"] == datetime.fromisoformat("2025-12-10T10:00:00+01:00")
    assert result["recent"] == datetime.fromisoformat("2025-11-20T10:00:00+01:00")
    assert result["old"] is None


def test_the_same_order_again_stamps_nothing_more(api, appeased):
    send(api, order_event())
    AppeasementOutcome.objects.update(repurchased_at=None)

    again = send(api, order_event("O-2"))

    assert again.json()["result"] == {**again.json()["result"], "order": "unchanged", "repurchases": 0}
    assert not AppeasementOutcome.objects.exclude(repurchased_at=None).exists()


def test_repurchases_are_stamped_in_one_update(appeased, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert repurchases_stamp(customer_id=appeased["lucia"].pk, placed_at=appeased["placed"]) == 2


# --- the CSV import --------------------------------------------------------------------

HEADER = "reference,total,currency,placed_at,external_id,email,phone,name\n"
GOOD = (
    "A-1,40.00,EUR,2025-11-01T10:00:00+01:00,shop-1,lucia@example.com,,Lucía Pérez\n"
    "A-2,10.50,EUR,2025-11-15T10:00:00+01:00,,LUCIA@EXAMPLE.COM,,\n"
    "B-1,25,USD,2025-11-02T12:00:00Z,,,+34612345678,Kim Lee\n"
)


def test_the_import_records_good_rows_matching_customers_as_intake_does():
    known = customer_create(email="Lucia@Example.com", currency="EUR", external_id=None)

    result = orders_import(actor=SYSTEM, lines=StringIO(HEADER + GOOD))

    assert (result.created, result.unchanged, result.refused, result.problems) == (3, 0, 0, [])
    # Lucía by email in any case (her first row's unknown external id does not make a new one)
    lucia_orders = CustomerOrder.objects.filter(customer=known).order_by("reference")
    assert [order.reference for order in lucia_orders] == ["A-1", "A-2"]
    known.refresh_from_db()
    assert (known.orders_count, known.total_spend_amount) == (2, Decimal("50.50"))
    # Kim by phone, new, paying in USD
    kim = Customer.objects.get(phone="+34612345678")
    assert (kim.name, kim.currency, kim.orders_count, kim.total_spend_amount) == ("Kim Lee", "USD", 1, Decimal("25"))
    assert set(CustomerOrder.objects.values_list("source", flat=True)) == {"import"}


def test_bad_rows_are_named_by_line_and_column_and_the_good_rows_still_imported():
    text = (
        HEADER
        + "A-1,40.00,EUR,2025-11-01T10:00:00+01:00,,lucia@example.com,,\n"
        + "A-2,-3,EUR,2025-11-01T10:00:00+01:00,,lucia@example.com,,\n"  # line 3
        + "\n"
        + "A-3,1.234,XYZ,2025-11-01,,,,\n"  # line 5
        + "A-1,40.00,EUR,2025-11-01T10:00:00+01:00,,kim@example.com,,\n"  # line 6: Lucía's order
        + 'A-4,"5.00",EUR,2025-11-03T10:00:00Z,,"kim@example.com",,"Lee, Kim"\n'
    )

    result = orders_import(actor=SYSTEM, lines=StringIO(text))

    assert (result.created, result.refused) == (2, 3)
    assert [(p.line, p.column, p.message) for p in result.problems] == [
        (3, "total", "The total cannot be negative."),
        (5, "currency", "XYZ is not an ISO 4217 currency code."),
        (5, "placed_at", "Give the time with its offset, e.g. 2026-12-07T09:30:00+01:00."),
        (5, "external_id, email, phone", "This customer needs an email, a phone number or an external id."),
        (6, "reference", "This order reference is another customer's order."),
    ]
    assert str(result.problems[0]) == "line 3: total: The total cannot be negative."
    # the refused row 6 made no customer for kim@: row 7 did, whole
    assert sorted(CustomerOrder.objects.values_list("reference", flat=True)) == ["A-1", "A-4"]
    assert Customer.objects.get(email="kim@example.com").name == "Lee, Kim"


def test_the_same_file_again_changes_nothing():
    orders_import(actor=SYSTEM, lines=StringIO(HEADER + GOOD))
    before = list(Customer.objects.order_by("pk").values())

    again = orders_import(actor=SYSTEM, lines=StringIO(HEADER + GOOD))

    assert (again.created, again.unchanged, again.refused) == (0, 3, 0)
    assert list(Customer.objects.order_by("pk").values()) == before
    assert CustomerOrder.objects.count() == 3


def test_a_file_without_the_columns_is_refused_whole():
    with pytest.raises(OrdersFileInvalid) as refused:
        orders_import(actor=SYSTEM, lines=StringIO("reference,total,currency,placed_at,colour\nA-1,1,EUR,x,red\n"))

    assert refused.value.problem.line == 1
    assert not CustomerOrder.objects.exists()


def test_the_command_streams_the_file_and_reports_bad_rows_in_the_readers_language(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("\ufeff" + HEADER.replace(",", ";") + "A-1;40.00;EUR;2025-11-01T10:00:00+01:00;;a@example.com;;\n"
                    "A-2;-1;EUR;2025-11-01T10:00:00+01:00;;a@example.com;;\n", encoding="utf-8")  # fmt: skip
    out, err = StringIO(), StringIO()

    with pytest.raises(CommandError, match="1 row"):
        call_command("orders_import", str(path), "--language", "es", stdout=out, stderr=err)

    assert err.getvalue().strip() == "línea 3: total: El total no puede ser negativo."
    assert "1 nuevos" in out.getvalue()
    assert CustomerOrder.objects.get().reference == "A-1"

    # the same file again: nothing new, the bad row still reported
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("orders_import", str(path), stdout=out, stderr=StringIO())
    assert "0 new, 0 completed, 1 unchanged, 1 refused" in out.getvalue()


def test_the_admin_page_imports_an_upload_and_lists_the_bad_lines(client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    supervisor = staff_user("Supervisor")
    client.force_login(supervisor)
    upload = SimpleUploadedFile(
        "orders.csv", (HEADER + GOOD + "C-1,abc,EUR,2025-11-01T10:00:00Z,,c@example.com,,\n").encode()
    )

    response = client.post("/admin/orders-import/", {"file": upload}, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200
    page = response.content.decode()
    assert "Orders imported: 3 new, 0 completed, 0 unchanged, 1 refused" in page
    assert 'data-testid="import-problems"' in page and "<td>5</td><td>total</td>" in page
    assert CustomerOrder.objects.count() == 3


def test_a_rep_cannot_reach_the_import_page(client):
    client.force_login(staff_user("CSR"))
    assert client.get("/admin/orders-import/").status_code in (302, 404)


# --- the same order twice at once --------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_order_sent_twice_at_once_is_one_order_and_one_customer():
    from rest_framework.test import APIClient

    _merchant, key = merchant_with_key()

    def post(index: int):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
        # two event ids, so the event's own uniqueness does not decide: the order's does
        return send(client, order_event(f"race-{index}", customer={"email": "new@example.com", "name": "New"}))

    for _round in range(5):
        CustomerOrder.objects.all().delete()
        Customer.objects.all().delete()
        MerchantEvent.objects.all().delete()

        answers = run_together(2, post)

        assert sorted(answer.status_code for answer in answers) == [202, 202], [a.json() for a in answers]
        assert sorted(answer.json()["result"]["order"] for answer in answers) == ["created", "unchanged"]
        assert CustomerOrder.objects.count() == 1 and Customer.objects.count() == 1
        assert Customer.objects.get().orders_count == 1
    connection.close()
