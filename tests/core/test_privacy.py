"""GDPR/LGPD: export everything about a customer; erase them without breaking the
financial or audit trail; pseudonymise old personal data on a schedule."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from appease.core.context import Actor
from appease.core.models import AuditEvent
from appease.core.privacy import ERASED, EXPIRED, customer_erase, customer_export, personal_data_expire
from appease.delivery.models import Delivery
from appease.issuance.models import Customer, Issuance
from feedback.models import CaseEvent, Feedback
from feedback.services.cases import case_claim, case_resolve
from tests.factories import customer_create, offer_create, reason_create, staff_user
from tests.feedback.conftest import open_case, policy_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def customer_with_history():
    from appease.issuance.services.customers import customer_create as service_create
    from appease.issuance.services.issuance import issuance_create

    csr = staff_user(policy=policy_create(day_cost_amount=1000))
    customer = service_create(
        actor=Actor(user=csr), name="Lucía Pérez", email="lucia@example.com", phone="+34612345678", external_id="L-1"
    )
    issuance = issuance_create(
        actor=Actor(user=csr),
        customer=customer,
        offer=offer_create(generate_on_demand=True),
        reason_code=reason_create(),
        note="Lucía called about parcel 881",
    )
    case = open_case(customer=customer, text="Lucía here: my parcel never came, call me on +34612345678")
    case_claim(actor=Actor(user=csr), case_id=case.pk)
    case_resolve(actor=Actor(user=csr), case_id=case.pk, note="Called Lucía back")
    return customer, issuance, case


def test_the_export_holds_everything_about_the_customer(customer_with_history):
    customer, issuance, _case = customer_with_history

    data = json.loads(json.dumps(customer_export(customer), default=str))

    assert data["customer"]["email"] == "lucia@example.com"
    assert data["issuances"][0]["id"] == str(issuance.pk)
    assert data["issuances"][0]["code_last4"] == issuance.code.last4
    assert "code" not in data["issuances"][0]  # never the whole code
    assert data["deliveries"][0]["address"] == "lucia@example.com"
    assert data["feedback"][0]["text"].startswith("Lucía here")
    assert [event["kind"] for event in data["cases"][0]["timeline"]][:2] == ["opened", "feedback"]


def test_audit_rows_that_name_a_model_by_its_former_label_are_the_customers(customer_with_history):
    # given: an audit row written when deliveries had the `appease` label
    customer, _issuance, _case = customer_with_history
    delivery = Delivery.objects.get(customer=customer)
    old = AuditEvent.objects.create(
        action="delivery.retry",
        object_type="appease.delivery",
        object_id=str(delivery.pk),
        after={"status": "sent", "note": "left with the neighbour at number 12"},  # no email, phone or id
    )

    # when / then: the export shows it, and an erasure treats it as hers
    trail = customer_export(customer)["audit_trail"]
    assert {"object": f"appease.delivery {delivery.pk}", "after": old.after} in [
        {"object": row["object"], "after": row["after"]} for row in trail
    ]
    customer_erase(actor=Actor(user=staff_user("Supervisor")), customer=customer)
    old.refresh_from_db()
    assert old.after == {"status": "sent", "note": ERASED}


def test_the_export_command_writes_json(customer_with_history, tmp_path):
    customer, _issuance, _case = customer_with_history
    out = tmp_path / "lucia.json"

    call_command("customer_export", str(customer.pk), "--output", str(out))

    assert json.loads(out.read_text())["customer"]["name"] == "Lucía Pérez"
    assert AuditEvent.objects.filter(action="customer.export", object_id=str(customer.pk)).exists()


def test_erasure_removes_personal_data_and_keeps_the_trail(customer_with_history):
    customer, issuance, case = customer_with_history
    code_hash, last4 = bytes(issuance.code.lookup_hash), issuance.code.last4
    audit_count = AuditEvent.objects.count()

    erased = customer_erase(actor=Actor(user=staff_user("Supervisor")), customer=customer)

    # personal data gone
    assert (erased.name, erased.email, str(erased.phone), erased.external_id) == (
        f"Erased customer {customer.pk}", "", "", None,
    )  # fmt: skip
    assert erased.erased_at is not None and not erased.consents_to("email")
    issuance.refresh_from_db()
    assert issuance.note == ERASED
    assert set(Delivery.objects.filter(customer=customer).values_list("address", flat=True)) == {ERASED}
    assert set(Feedback.objects.filter(customer=customer).values_list("text", flat=True)) == {ERASED}
    case.refresh_from_db()
    assert case.subject == ERASED and case.resolution_note == ERASED
    assert not CaseEvent.objects.filter(case=case, text__icontains="lucía").exists()
    created = AuditEvent.objects.get(action="customer.create", object_id=str(customer.pk))
    assert created.after["email"] == ERASED and created.after["name"] == ERASED
    dump = json.dumps(customer_export(erased), default=str).lower()
    assert "lucía" not in dump and "lucia@" not in dump and "612345678" not in dump
    # the money and the trail stay
    assert (issuance.face_value_amount, issuance.csr_id, issuance.status) == (
        issuance.offer.value_amount, issuance.csr_id, Issuance.Status.ISSUED,
    )  # fmt: skip
    assert (bytes(issuance.code.lookup_hash), issuance.code.last4) == (code_hash, last4)
    assert AuditEvent.objects.count() == audit_count + 1
    assert AuditEvent.objects.filter(action="customer.erase", object_id=str(customer.pk)).exists()
    assert created.actor_label and created.created_at


@pytest.mark.postgres
def test_outside_an_erasure_the_trail_stays_append_only(customer_with_history):
    _customer, _issuance, case = customer_with_history
    event = CaseEvent.objects.filter(case=case).first()
    audit = AuditEvent.objects.first()

    for statement in (
        lambda: CaseEvent.objects.filter(pk=event.pk).update(text="rewritten"),
        lambda: AuditEvent.objects.filter(pk=audit.pk).update(after={}),
        lambda: CaseEvent.objects.filter(pk=event.pk).delete(),
    ):
        with pytest.raises(DatabaseError), transaction.atomic():
            statement()


@pytest.mark.postgres
def test_even_an_erasure_cannot_change_who_did_what(customer_with_history):
    _customer, _issuance, case = customer_with_history
    event = CaseEvent.objects.filter(case=case).first()

    with pytest.raises(DatabaseError), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL appease.erasure = 'on'")
        CaseEvent.objects.filter(pk=event.pk).update(kind="closed")


def test_old_personal_data_is_pseudonymised_by_the_retention_task(customer_with_history, settings):
    settings.RETENTION_MONTHS = 12
    customer, _issuance, case = customer_with_history
    fresh = open_case(customer=customer_create(), text="Fresh complaint about a late parcel")
    long_ago = timezone.now() - timedelta(days=400)
    Feedback.objects.exclude(case=fresh).update(created_at=long_ago)
    Delivery.objects.update(created_at=long_ago)
    case.refresh_from_db()
    type(case).objects.filter(pk=case.pk).update(status="confirmed", closed_at=long_ago)
    Customer.objects.filter(pk=customer.pk).update(created_at=long_ago)
    Issuance.objects.filter(customer=customer).update(created_at=long_ago)
    type(case).objects.filter(customer=customer).update(created_at=long_ago)

    done = personal_data_expire()

    assert done["feedback"] == 1 and done["cases"] == 1 and done["customers"] == 1
    assert Feedback.objects.get(case=case).text in (EXPIRED, ERASED)  # expired, then its idle customer erased
    assert Feedback.objects.get(case=fresh).text.startswith("Fresh complaint")
    assert Customer.objects.get(pk=customer.pk).email == ""
    assert Customer.objects.get(pk=fresh.customer_id).erased_at is None
    # idempotent
    assert personal_data_expire()["feedback"] == 0


def test_retention_can_be_turned_off(customer_with_history, settings):
    settings.RETENTION_MONTHS = 0
    assert personal_data_expire() == {}


# --- erasure everywhere: every text column of every table --------------------------

LUCIA = ("lucía", "pérez", "lucia@example.com", "612345678", "612 345 678", "crm-lucia-881")


def text_cells() -> dict[tuple[str, object, str], str]:
    """Every text and JSON cell of every table, as text: {(table, pk, column): value}."""
    from django.apps import apps
    from django.db import models

    kinds = (models.CharField, models.TextField, models.JSONField)
    cells = {}
    for model in apps.get_models():
        fields = [f for f in model._meta.concrete_fields if isinstance(f, kinds) and not f.primary_key]
        if not fields:
            continue
        names = [f.attname for f in fields]
        for row in model._default_manager.values_list("pk", *names):
            for name, value in zip(names, row[1:], strict=True):
                if value not in (None, "", {}, []):
                    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
                    cells[(model._meta.db_table, row[0], name)] = text
    return cells


def json_leaves(text: str) -> set[str]:
    """The strings inside a JSON cell (the whole text when it is not JSON)."""
    try:
        value = json.loads(text)
    except ValueError:
        return {text}
    leaves, stack = set(), [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            leaves.add(item)
    return leaves


def money_trail() -> dict:
    from django.db.models import Count, Sum

    from appease.issuance.models import BudgetCounter
    from coupons.models import Code, CodeEvent

    return {
        "issuances": Issuance.objects.aggregate(Sum("face_value_amount"), Sum("cost_amount"), Count("pk")),
        "budgets": BudgetCounter.objects.aggregate(Sum("spent_cost_amount"), Sum("issuances_count")),
        "codes": sorted(Code.objects.values_list("lookup_hash", "last4", "status")),
        "ledger": CodeEvent.objects.count(),
        "who": sorted(Issuance.objects.values_list("pk", "csr_id", "decided_by_id", "voided_by_id")),
    }


@pytest.fixture
def customer_everywhere(customer_with_history):
    """Lucía in every place the system keeps words: an apology, a voided issuance's
    reason, a provider's error, a case note and follow-up comment, a cohort event next to
    another customer, the admin's history, the audit trail."""
    from django.contrib.admin.models import CHANGE, LogEntry

    from appease.delivery.models import DeliveryAttempt
    from appease.issuance.services.issuance import issuance_create, issuance_void
    from coupons.models import Merchant
    from feedback.models import AppeasementOutcome, FollowUp
    from feedback.services.automation import event_process, event_receive
    from feedback.services.cases import case_note

    customer, issuance, case = customer_with_history
    Customer.objects.filter(pk=customer.pk).update(external_id="CRM-LUCIA-881")
    customer.refresh_from_db()
    supervisor = staff_user("Supervisor")
    csr = issuance.csr
    apology = issuance_create(
        actor=Actor(user=csr),
        customer=customer,
        offer=offer_create(generate_on_demand=True),
        reason_code=issuance.reason_code,
        apology_text="Dear Lucía, we are sorry your parcel is late.",
    )
    issuance_void(actor=Actor(user=supervisor), issuance_id=apology.pk, reason="Lucía Pérez asked for another offer")
    delivery = Delivery.objects.filter(issuance=issuance).get()
    Delivery.objects.filter(pk=delivery.pk).update(last_error="550 5.1.1 <lucia@example.com>: mailbox full")
    now = timezone.now()
    DeliveryAttempt.objects.create(
        delivery=delivery,
        number=1,
        channel="email",
        started_at=now,
        finished_at=now,
        outcome="transient",
        detail="452 4.2.2 <lucia@example.com> over quota",
    )
    with transaction.atomic():  # case_note locks the case
        case_note(actor=Actor(user=csr), case_id=case.pk, text="Rang Lucía on +34 612 345 678, no answer")
    FollowUp.objects.filter(customer=customer).update(comment="Lucía here again: thanks!")
    AppeasementOutcome.objects.filter(issuance=apology).update(override_reason="Lucía Pérez prefers a discount")
    event, _created = event_receive(
        merchant=Merchant.objects.create(name="Shop"),
        event_id="FL-1",
        event_type="flight_cancelled",
        data={
            "flight": "IB 3166",
            "note": "Lucía Pérez rebooked on IB 3170",
            "customers": [
                {"email": "LUCIA@example.com", "name": "Lucía Pérez", "phone": "+34 612 345 678"},
                {"email": "kim@example.com", "name": "Kim Lee", "phone": "+14155550123"},
            ],
        },
    )
    event_process(event_id=event.pk)
    LogEntry.objects.log_actions(
        supervisor.pk, [customer], CHANGE, change_message="Email set to lucia@example.com", single_object=True
    )
    LogEntry.objects.log_actions(supervisor.pk, [issuance], CHANGE, change_message="Note edited", single_object=True)
    return customer


def test_after_an_erasure_no_text_column_of_any_table_names_the_customer(customer_everywhere):
    # given: Lucía is in every one of those places, and so is Kim (another customer)
    dump = "\n".join(text_cells().values()).lower()
    assert all(needle in dump for needle in LUCIA), [n for n in LUCIA if n not in dump]
    trail = money_trail()

    # when
    customer_erase(actor=Actor(user=staff_user("Supervisor")), customer=customer_everywhere)

    # then: not one cell names her; Kim's data, the money and who did what are untouched
    cells = text_cells()
    left = {cell: value for cell, value in cells.items() if any(n in value.lower() for n in LUCIA)}
    assert left == {}
    dump = "\n".join(cells.values())
    assert "kim@example.com" in dump and "Kim Lee" in dump
    assert "IB 3170" in dump  # the event's other words stay
    assert money_trail() == trail


def test_the_export_shows_everything_an_erasure_changes(customer_everywhere):
    # given
    export = json.dumps(customer_export(customer_everywhere), ensure_ascii=False, default=str)
    before = text_cells()

    # when
    customer_erase(actor=Actor(user=staff_user("Supervisor")), customer=customer_everywhere)

    # then: every string the erasure changed or removed was in the export
    after = text_cells()
    changed = {cell for cell in before if after.get(cell) != before[cell]}
    assert len(changed) > 15
    missing = {}
    for cell in changed:
        gone = json_leaves(before[cell]) - json_leaves(after.get(cell, ""))
        absent = {text for text in gone if text not in export}
        if absent:
            missing[cell] = absent
    assert missing == {}
    assert "Kim Lee" not in export and "kim@example.com" not in export  # not another customer's data


# --- retention, on a frozen clock ---------------------------------------------------


@pytest.fixture
def clock(monkeypatch):
    """A frozen clock: `timezone.now()` (and so every auto_now field) answers `clock.now`."""
    from datetime import UTC, datetime

    class Clock:
        now = datetime(2024, 1, 10, 9, 0, tzinfo=UTC)

    frozen = Clock()
    monkeypatch.setattr(timezone, "now", lambda: frozen.now)
    return frozen


def test_retention_expires_old_words_everywhere_in_batches_and_once(clock, settings):
    from datetime import timedelta as delta

    from django.db import connection as db

    from appease.issuance.services.customers import customer_create as service_create
    from appease.issuance.services.issuance import issuance_create
    from coupons.models import Merchant
    from feedback.services.automation import event_receive
    from feedback.services.cases import case_note

    settings.RETENTION_MONTHS = 24
    start = clock.now
    csr = staff_user(policy=policy_create(day_cost_amount=1000))
    # given, in January 2024: Ana (who will go quiet) and Bo (who will come back), each
    # appeased, each with a case, a timeline note, and both in one merchant event
    ana = service_create(actor=Actor(user=csr), name="Ana Quiet", email="ana@example.com", phone="+34611111111")
    bo = service_create(actor=Actor(user=csr), name="Bo Back", email="bo@example.com")
    for customer in (ana, bo):
        issuance_create(
            actor=Actor(user=csr),
            customer=customer,
            offer=offer_create(generate_on_demand=True),
            reason_code=reason_create(),
            note=f"{customer.name} called about parcel 881",
            apology_text=f"Dear {customer.name}, sorry.",
        )
        case = open_case(customer=customer, text=f"{customer.name}: my parcel never came")
        case_note(actor=Actor(user=csr), case_id=case.pk, text=f"Rang {customer.name}")
    for n in range(3):  # three more old messages, from people never heard of again
        open_case(email=f"old{n}@example.com", text=f"Old complaint {n}")
    event_receive(
        merchant=Merchant.objects.create(name="Shop"),
        event_id="E-2024",
        event_type="delivery_delayed",
        data={"customers": [{"email": "ana@example.com", "name": "Ana Quiet"}, {"email": "bo@example.com"}]},
    )
    # … 23 months later Bo writes again; 25 months after the start the nightly task runs
    clock.now += delta(days=30 * 23)
    recent = open_case(customer=bo, text="Bo again: where is my refund?")
    clock.now += delta(days=60)
    expiring_statements = []

    def watch(execute, sql, params, many, context):
        if sql.startswith('UPDATE "feedback_feedback"') and EXPIRED in (params or ()):
            expiring_statements.append(sql)
        return execute(sql, params, many, context)

    # when: batches of two
    with db.execute_wrapper(watch):
        done = personal_data_expire(batch_size=2)

    # then: the old words are gone, the recent ones and Bo's contact details stay
    assert done["feedback"] == 5 and len(expiring_statements) == 3  # 2 + 2 + 1
    assert done["customers"] == 4  # Ana and the three never heard of again; not Bo
    ana.refresh_from_db()
    bo.refresh_from_db()
    assert ana.erased_at is not None and ana.email == "" and ana.name == f"Erased customer {ana.pk}"
    assert (bo.erased_at, bo.email, bo.name) == (None, "bo@example.com", "Bo Back")
    # Bo's case is still open (his new message joined it): its 2024 rows expire, the new one stays
    old_timeline = CaseEvent.objects.filter(case__customer=bo, created_at__lt=start + delta(days=1)).exclude(text="")
    assert list(old_timeline.values_list("text", flat=True)) == [EXPIRED, EXPIRED]  # the feedback copy, the note
    assert CaseEvent.objects.filter(case=recent, text__startswith="Bo again").exists()
    assert Feedback.objects.get(case=recent, created_at__gte=start + delta(days=365)).text.startswith("Bo again")
    bo_issuance = Issuance.objects.get(customer=bo)
    assert (bo_issuance.note, bo_issuance.apology_text) == (EXPIRED, EXPIRED)
    assert Delivery.objects.get(customer=bo).address == EXPIRED
    cells = "\n".join(text_cells().values())
    assert "Ana Quiet" not in cells and "ana@example.com" not in cells and "611111111" not in cells
    assert "Bo Back" in cells  # his customer row; not in the old event or texts any more
    from feedback.models import MerchantEvent

    assert "bo@example.com" not in json.dumps(MerchantEvent.objects.get().data)

    # and a second run the same night finds nothing to do and changes nothing
    before = text_cells()
    assert set(personal_data_expire(batch_size=2).values()) == {0}
    assert text_cells() == before


# --- retention everywhere: every text and JSON column of every table -----------------

# The apps whose tables the sweep reads, and Django admin's history (erasure rewrites it too).
OUR_APPS = ("core", "delivery", "appease", "coupons", "feedback", "reporting")
APPEND_ONLY = {"appease_auditevent", "coupons_codeevent", "feedback_caseevent"}  # their times are the clock's
# Columns that cannot hold a customer's words, and why. A column with `choices` holds one
# of a fixed set of codes and is left out too. A new text or JSON column anywhere fails
# the sweep until retention covers it or it is listed here with its reason.
NOT_PERSONAL = {
    # configuration, written by staff about the shop, never about one customer
    "core.StaffAPIKey": "a rep's API key: its prefix, hash and the label staff gave it",
    "coupons.Offer": "the offer catalogue",
    "coupons.Merchant": "the merchant's name",
    "coupons.MerchantAPIKey": "a merchant's API key: its prefix, hash and label",
    "coupons.CodeBatch": "an import of codes: its file name and import error",
    "appease.ReasonCode": "reason codes",
    "appease.Team": "teams",
    "appease.LimitPolicy": "limit policies",
    "appease.LimitBudget": "budgets (a currency)",
    "appease.StaffProfile": "a rep's languages and time zone",
    "appease.BudgetCounter": "budget counters (a currency)",
    "appease.OfferMessage": "message templates, with placeholders rather than names",
    "appease.HelpdeskIntegration": "a helpdesk app's name, key id, secret and allowed origins",
    "appease.HelpdeskLaunch": "a launch token's id, deleted once the token expires (minutes)",
    "feedback.OwnerTeam": "teams (their digest goes to staff addresses)",
    "feedback.KeywordRule": "triage keywords",
    "feedback.FeedbackSite": "a widget's site: name, public key and origins",
    "feedback.RecommendationRule": "recommendation rules",
    "feedback.ApologyTemplate": "apology templates, with placeholders rather than names",
    "feedback.AutoRule": "automatic rules",
    "reporting.": "daily aggregates: counts, sums and codes, no row of a person",
    # identifiers, codes and machine words
    "core.AuditEvent.actor_label": "the staff member or system that acted (kept by erasure too: who did what)",
    "core.AuditEvent.action": "an action code",
    "core.AuditEvent.object_type": "a model label",
    "core.AuditEvent.object_id": "a row's id",
    "core.AuditEvent.request_id": "a request id",
    "core.IdempotencyKey": "deleted by housekeeping after IDEMPOTENCY_KEY_TTL (24 hours), long before the horizon",
    "delivery.Delivery.language": "a language code",
    "delivery.Delivery.provider_message_id": "the provider's id of the message",
    "delivery.Delivery.failure_reason": "a machine code (failure_reason_label words it)",
    "delivery.Delivery.request_id": "a request id",
    "delivery.DeliveryStatusEvent": "a provider's status word and ours",
    "coupons.Code": "the code itself (encrypted), its last four characters and currency",
    "coupons.Redemption.order_id": "the merchant's order reference, kept by erasure too (the books)",
    "coupons.Redemption.currency": "a currency",
    "coupons.CodeEvent.currency": "a currency",
    "appease.CustomerOrder": "the merchant's order reference and currency, kept by erasure too",
    "appease.Issuance.currency": "a currency",
    "appease.Issuance.breached_limits": "the codes of the limits an issuance went over",
    "feedback.Case.order_reference": "the merchant's order reference, kept by erasure too",
    "feedback.Case.score_reasons": "triage factors and their points (data, worded when shown)",
    "feedback.Feedback.order_reference": "the merchant's order reference, kept by erasure too",
    "feedback.FollowUp.skip_reason": "why a survey was not sent, in the system's words",
    "feedback.AppeasementOutcome.arm": "an offer's id or `apology`",
    "feedback.AppeasementOutcome.assigned_arm": "an offer's id or `apology`",
    "feedback.AppeasementOutcome.currency": "a currency",
    "feedback.Experiment": "a supervisor's experiment: its name and stopped arms, about no customer",
    "feedback.MerchantEvent.event_id": "the merchant's id of the event",
    "feedback.MerchantEvent.event_type": "the event's type",
    "feedback.MerchantEvent.result": "what processing did: ids and counts",
    "admin.LogEntry.object_id": "a row's id",
    # the customer's live profile: retention erases it, with everything above, once the
    # customer has been idle for the whole horizon (test_retention_expires_old_words_…)
    "appease.Customer": "the profile of a customer still active",
}


def swept_columns() -> dict[type, list[str]]:
    """{model: [column]} of every text and JSON column retention must cover."""
    from django.apps import apps
    from django.contrib.admin.models import LogEntry
    from django.db import models

    kinds = (models.CharField, models.TextField, models.JSONField)
    configs = [config for config in apps.get_app_configs() if config.label in OUR_APPS]
    columns = {}
    for model in [m for config in configs for m in config.get_models()] + [LogEntry]:
        label = model._meta.label
        names = [
            field.attname
            for field in model._meta.concrete_fields
            if isinstance(field, kinds)
            and not field.primary_key
            and not field.choices
            and not any(key in NOT_PERSONAL for key in (label, f"{label}.{field.name}", f"{model._meta.app_label}."))
        ]
        if names:
            columns[model] = names
    return columns


def cells_naming(columns, needles) -> dict[tuple[str, str, object], str]:
    """{(model, column, pk): value} of the cells of `columns` that hold any of `needles`."""
    found = {}
    for model, names in columns.items():
        for row in model._default_manager.values_list("pk", *names):
            for name, value in zip(names, row[1:], strict=True):
                text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
                if any(needle in (text or "").lower() for needle in needles):
                    found[(model._meta.label, name, row[0])] = text
    return found


def test_retention_sweeps_every_text_and_json_column_of_every_table(clock, customer_everywhere, settings):
    from datetime import timedelta as delta

    from django.apps import apps
    from django.contrib.admin.models import LogEntry
    from django.db import models

    from appease.core.audit import audit_event_record
    from appease.issuance.models import CustomerOrder
    from coupons.models import Merchant, Redemption
    from feedback.models import Case, FollowUp

    settings.RETENTION_MONTHS = 24
    lucia = customer_everywhere
    # given: Lucía's words in every column that can hold them, written in January 2024
    issuance = Issuance.objects.filter(customer=lucia).exclude(code=None).first()
    Issuance.objects.filter(pk=issuance.pk).update(decision_comment="Approved: Lucía is a gold member")
    Redemption.objects.create(
        code=issuance.code,
        merchant=Merchant.objects.get(name="Shop"),
        order_id="ORDER-9",
        order_total_amount=50,
        discount_amount=5,
        currency=issuance.code.currency,
        single_use=True,
        status=Redemption.Status.REVERSED,
        redeemed_at=clock.now,
        reversed_at=clock.now,
        reverse_reason="Lucía Pérez returned the parcel",
    )
    Feedback.objects.filter(customer=lucia).update(page_url="https://shop.example/account?email=lucia@example.com")
    case = Case.objects.get(customer=lucia)
    CaseEvent.objects.create(
        case=case, kind="note", text="Called Lucía", data={"name": "Lucía Pérez", "phone": "+34612345678"}
    )
    audit_event_record(
        actor=Actor(), action="customer.change", obj=lucia, before={"email": "lucia@example.com"}, after={"email": ""}
    )
    columns = swept_columns()
    before = cells_naming(columns, LUCIA)
    unseeded = {f"{m._meta.label}.{n}" for m, names in columns.items() for n in names} - {
        f"{label}.{name}" for label, name, _pk in before
    }
    assert unseeded == set()  # every column holds her words somewhere
    # … aged past the horizon: 25 months on, every row's times are old
    long_ago = clock.now
    for config in apps.get_app_configs():
        if config.label not in OUR_APPS:
            continue
        for model in config.get_models():
            if model._meta.db_table in APPEND_ONLY:
                continue
            for field in model._meta.concrete_fields:
                if isinstance(field, models.DateTimeField):
                    model._default_manager.filter(**{f"{field.name}__isnull": False}).update(**{field.name: long_ago})
    LogEntry.objects.update(action_time=long_ago)
    Case.objects.filter(pk=case.pk).update(status=Case.Status.CONFIRMED, closed_at=long_ago)
    FollowUp.objects.filter(customer=lucia).update(answered_at=long_ago)
    clock.now += delta(days=30 * 25)
    # and Lucía is still a customer: she ordered yesterday, so retention keeps her profile
    CustomerOrder.objects.create(customer=lucia, reference="ORDER-10", placed_at=clock.now - delta(days=1))
    Customer.objects.filter(pk=lucia.pk).update(last_order_at=clock.now - delta(days=1))

    # when
    done = personal_data_expire()

    # then: no column anywhere still names her; her live profile stays
    left = cells_naming(columns, LUCIA)
    assert sorted({(label, name) for label, name, _pk in left}) == []
    lucia.refresh_from_db()
    assert (lucia.erased_at, lucia.email) == (None, "lucia@example.com")
    assert done["customers"] == 1  # Kim, of the same merchant event, has been idle all along
    # and a second run finds nothing more to do
    assert set(personal_data_expire().values()) == {0}
