"""`manage.py generate_history` (appease/demo/management/commands/generate_history.py) with
tiny numbers: the counts, the invariants, the planted anomalies, every report page on it."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Count, F, Q
from django.utils import timezone

from appease.delivery.models import Delivery
from appease.issuance.models import Customer, Issuance, StaffProfile
from coupons.models import Code, Redemption
from feedback.models import Case, Feedback, FollowUp
from tests.factories import staff_user

pytestmark = pytest.mark.django_db

# 250 customers: the average customer has 2 appeasements, so the planted one (12, from the
# 10 reps in turn) clears the farming bar (2.5 × the average) by the plant alone. With 50
# (an average of 10) it cleared it only with enough of its own natural share, which the
# run's clock decides (the generator's day and week shapes start from now).
ISSUANCES, REPS, CUSTOMERS, DAYS = 500, 10, 250, 90
PAGES = [
    "/admin/reports/",
    "/admin/reports/redemption/",
    "/admin/reports/speed/",
    "/admin/reports/return/",
    "/admin/reports/reps/",
    "/admin/reports/anomalies/",
    "/admin/reports/issuances/",
    "/admin/reports/issuances/?page=2",
]


@pytest.fixture
def history(db):
    out = io.StringIO()
    call_command(
        "generate_history",
        issuances=ISSUANCES,
        reps=REPS,
        customers=CUSTOMERS,
        days=DAYS,
        seed=7,
        stdout=out,
    )
    text = out.getvalue()
    planted = re.search(r"planted anomalies: rep_rate: (?P<reps>[^;]*); customer_many_reps: (?P<customer>[^;]*);", text)
    assert planted, text
    return {"output": text, "planted_reps": planted["reps"].split(", "), "planted_customer": planted["customer"]}


def test_it_makes_the_numbers_asked_for_and_the_tables_around_them(history):
    # given the history of the fixture
    # then
    assert Issuance.objects.count() == ISSUANCES
    assert Customer.objects.count() == CUSTOMERS
    reps = StaffProfile.objects.filter(user__groups__name="CSR")
    assert reps.count() == REPS
    assert reps.filter(team__isnull=False).count() == REPS
    from_case = Issuance.objects.filter(case__isnull=False).count()
    assert 0.2 * ISSUANCES < from_case < 0.4 * ISSUANCES
    assert Case.objects.count() >= from_case
    assert Feedback.objects.filter(case__isnull=False).count() == Case.objects.count()
    assert FollowUp.objects.filter(status=FollowUp.Status.ANSWERED, csat__isnull=False, solved__isnull=False).exists()
    assert (
        Delivery.objects.filter(kind=Delivery.Kind.APPEASEMENT).count()
        == Issuance.objects.exclude(status__in=[Issuance.Status.PENDING_APPROVAL, Issuance.Status.REJECTED]).count()
    )
    assert Code.objects.count() == Issuance.objects.filter(code__isnull=False).count() > 0
    assert Redemption.objects.exists()
    assert set(Customer.objects.values_list("language", flat=True)) <= {"en", "es", "pt-br"}
    oldest = Issuance.objects.order_by("created_at").first().created_at
    assert oldest >= timezone.now() - timedelta(days=DAYS + 1)
    assert "History generated" in history["output"]


def test_the_invariants_hold(history):
    # given the history of the fixture (the database refused any row breaking a CHECK)
    # then the foreign keys hold too (SQLite checks them only when asked)
    connection.check_constraints()
    assert not Issuance.objects.filter(status=Issuance.Status.PENDING_APPROVAL, code__isnull=False).exists()
    assert not Issuance.objects.filter(csr__isnull=True).exists()
    assert not Case.objects.filter(status=Case.Status.CLAIMED, assigned_to__isnull=True).exists()
    assert not Code.objects.filter(balance_amount__gt=F("initial_balance_amount")).exists()
    redeemed = Code.objects.filter(status=Code.Status.REDEEMED)
    assert not redeemed.filter(redeemed_at__isnull=True).exists()
    # every coupon redeemed has its one active redemption; no coupon has two
    active = Redemption.objects.filter(status=Redemption.Status.ACTIVE, single_use=True)
    assert not active.values("code").annotate(n=Count("pk")).filter(n__gt=1).exists()
    assert redeemed.filter(initial_balance_amount__isnull=True).count() == active.count()
    # deliveries a few seconds after the issuance; nothing in the future
    now = timezone.now()
    assert not Delivery.objects.filter(sent_at__lt=F("created_at")).exists()
    assert not Issuance.objects.filter(Q(created_at__gt=now) | Q(delivered_at__gt=now)).exists()
    # the complaint 10–300 seconds before (cases queued for hours aside)
    timed = Issuance.objects.filter(case__isnull=True, complaint_started_at__isnull=False, issued_at=F("created_at"))
    assert not timed.filter(complaint_started_at__gt=F("issued_at") - timedelta(seconds=10)).exists()
    assert not timed.filter(complaint_started_at__lt=F("issued_at") - timedelta(seconds=300)).exists()


def test_the_same_seed_gives_the_same_history_and_a_second_run_needs_yes(history):
    # given a database with history
    # when it runs again without --yes
    # then it refuses
    with pytest.raises(CommandError, match="--yes"):
        call_command("generate_history", issuances=10, reps=2, customers=5, stdout=io.StringIO())
    # when it runs again with --yes: new rows, no clash with the old ones' unique values
    call_command("generate_history", issuances=20, reps=2, customers=5, yes=True, stdout=io.StringIO())
    assert Issuance.objects.count() == ISSUANCES + 20
    assert Code.objects.values("lookup_hash").distinct().count() == Code.objects.count()


def test_the_planted_reps_are_flagged(history):
    from reporting.anomalies import anomalies
    from reporting.filters import ReportFilter

    # given the history of the fixture (its rollups written by the command)
    today = timezone.localdate()
    # when
    flags = anomalies(ReportFilter({"date_from": (today - timedelta(days=DAYS + 1)).isoformat()}))
    # then
    flagged = {flag.subject for flag in flags if flag.kind == "rep_rate"}
    assert set(history["planted_reps"]) <= flagged
    many = {str(flag.subject_id) for flag in flags if flag.kind == "customer_many_reps"}
    assert history["planted_customer"] in many


def test_every_report_page_renders_on_it(client, history):
    # given a supervisor
    client.force_login(staff_user("Supervisor"))
    rep = Issuance.objects.values("csr").annotate(n=Count("pk")).order_by("-n").first()["csr"]
    year = f"date_from={(timezone.localdate() - timedelta(days=365)).isoformat()}"
    # when / then
    for path in [
        *PAGES,
        f"/admin/reports/reps/{rep}/",
        f"/admin/reports/?{year}",
        "/admin/reports/cases/?export=cases",
    ]:
        response = client.get(path)
        assert response.status_code == 200, path
    export = client.get(f"/admin/reports/issuances/?export=issuances&{year}")
    assert export.status_code == 200
    lines = b"".join(export.streaming_content).decode().splitlines()
    given = Issuance.objects.filter(status__in=["issued", "delivered", "failed"], currency="USD").count()  # the page's
    assert len(lines) == given + 1
    table = client.get("/admin/reports/?export=issuances-by-reason")
    assert table.status_code == 200
    assert b"".join(table.streaming_content)


def test_the_cases_page_renders_on_it(client, history):
    # given a supervisor, and answered follow-ups whose cases had an intervention
    client.force_login(staff_user("Supervisor"))
    assert FollowUp.objects.filter(status=FollowUp.Status.ANSWERED).exclude(case__intervention="").exists()
    # when
    response = client.get("/admin/reports/cases/")
    # then
    assert response.status_code == 200


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_on_postgresql_worker_processes_make_the_rows_and_copy_writes_them(monkeypatch):
    from appease.demo.management.commands import generate_history

    # given: the parallel path from 100 issuances on, in chunks that do not divide evenly
    monkeypatch.setattr(generate_history, "PARALLEL_MIN_ISSUANCES", 100)
    monkeypatch.setattr(generate_history, "CHUNK", 150)
    out = io.StringIO()
    # when
    call_command("generate_history", issuances=500, reps=10, customers=50, days=30, processes=2, stdout=out)
    # then
    assert Issuance.objects.count() == 500
    assert Issuance.objects.filter(case__isnull=False).count() == Case.objects.filter(issuances__isnull=False).count()
    assert Code.objects.values("lookup_hash").distinct().count() == Code.objects.count() > 0
    # the sequences were moved past the ids made by the command
    customer = Customer.objects.create(name="After", email="after@example.com")
    assert customer.pk > Customer.objects.exclude(pk=customer.pk).order_by("-pk").first().pk
    assert "issuances: 500 of 500" in out.getvalue()
