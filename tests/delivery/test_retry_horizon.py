"""The retry horizon (transient errors are retried for DELIVERY_RETRY_HORIZON, about
30 minutes by default), the claim's fencing, and the bulk requeue of dead deliveries:
the service, the management command and the admin action, each audited."""

from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db.models import F
from django.utils import timezone

from appease.core.context import Actor
from appease.core.models import AuditEvent
from appease.delivery.channels.base import SendResult, TransientError
from appease.delivery.models import Delivery, DeliveryAttempt
from appease.delivery.services import backoff_seconds, deliveries_requeue, delivery_send
from appease.issuance.models import Issuance
from tests.delivery.test_outbox import SMS_PATH, due_now, issue
from tests.factories import customer_create, staff_user

pytestmark = pytest.mark.django_db


# --- The schedule -------------------------------------------------------------------------


def test_each_backoff_step_is_exponential_capped_and_jittered_over_its_upper_half(settings):
    settings.DELIVERY_BACKOFF_BASE_SECONDS = 2
    settings.DELIVERY_BACKOFF_MAX_SECONDS = 300
    for attempt in range(1, 30):
        step = min(2 * 2 ** (attempt - 1), 300)
        delays = [backoff_seconds(attempt) for _ in range(50)]
        assert all(step / 2 <= delay <= step for delay in delays), (attempt, min(delays), max(delays))
    # a provider's Retry-After wins when longer, capped like a step
    assert backoff_seconds(1, retry_after=60) == 60
    assert backoff_seconds(1, retry_after=10_000) == 300


def test_the_default_schedule_retries_for_about_thirty_minutes_and_the_horizon_not_the_count_ends_it():
    # Where attempts land when every jittered delay is at its shortest and at its longest.
    base, cap = django_settings.DELIVERY_BACKOFF_BASE_SECONDS, django_settings.DELIVERY_BACKOFF_MAX_SECONDS
    horizon = django_settings.DELIVERY_RETRY_HORIZON.total_seconds()
    assert horizon == 30 * 60

    def attempts_within_horizon(fraction: float) -> tuple[int, float]:
        attempt, elapsed = 1, 0.0
        while True:
            step = min(base * 2 ** (attempt - 1), cap) * fraction
            if elapsed + step > horizon:
                return attempt, elapsed
            attempt, elapsed = attempt + 1, elapsed + step

    fewest, last_at_longest = attempts_within_horizon(1.0)
    most, last_at_shortest = attempts_within_horizon(0.5)
    # The old horizon (6 attempts, 2 s base) ended after 31-62 s: a two-minute outage killed
    # everything. Now the last retry comes 25-30 minutes after the first attempt...
    assert last_at_longest >= 25 * 60 and last_at_shortest <= 30 * 60, (last_at_longest, last_at_shortest)
    # ...and the attempt limit, a bound for deliveries that kill their worker, is not reached first.
    assert fewest < most < django_settings.DELIVERY_MAX_ATTEMPTS


SMS = "appease.delivery.channels.sms.TwilioSmsAdapter"


def test_a_transient_error_within_the_horizon_is_retried_and_past_it_the_delivery_is_dead(sms_provider, settings):
    sms_provider.expect_request(SMS_PATH, method="POST").respond_with_data("down", status=503)
    delivery = issue(channel="sms").deliveries.get()
    # given: the first attempt was 29 minutes ago, and the provider still fails
    assert delivery_send(delivery_id=delivery.pk) == "retry"
    DeliveryAttempt.objects.filter(delivery=delivery).update(started_at=F("started_at") - timedelta(minutes=29))
    due_now(delivery)
    settings.DELIVERY_BACKOFF_BASE_SECONDS = 1  # the next delay is at most 2 s: within the horizon
    # then: still retried
    assert delivery_send(delivery_id=delivery.pk) == "retry"
    # given: now the first attempt was 31 minutes ago
    DeliveryAttempt.objects.filter(delivery=delivery, number=1).update(
        started_at=F("started_at") - timedelta(minutes=2)
    )
    due_now(delivery)
    # then: the next retry would fall past the horizon: a dead letter
    assert delivery_send(delivery_id=delivery.pk) == "dead"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.failure_reason, delivery.attempts) == ("dead", "exhausted", 3)
    assert Issuance.objects.get(pk=delivery.issuance_id).status == Issuance.Status.FAILED


# --- The claim fences every write -------------------------------------------------------------


class LeaseLostAdapter:
    """Sends, but meanwhile its lease expired and another worker claimed the row (what the
    sweeper and a second worker do to a worker stuck past its lease)."""

    def send(self, message):
        Delivery.objects.filter(pk=message.metadata["delivery_id"]).update(
            attempts=F("attempts") + 1, lease_expires_at=timezone.now() + timedelta(minutes=5)
        )
        return SendResult(provider_message_id="late-1")


class LeaseLostThenFailsAdapter(LeaseLostAdapter):
    def send(self, message):
        super().send(message)
        raise TransientError("timed out")


@pytest.mark.parametrize("adapter", ["LeaseLostAdapter", "LeaseLostThenFailsAdapter"])
def test_a_worker_that_lost_its_lease_changes_nothing_on_the_row(settings, adapter):
    settings.DELIVERY_ADAPTERS = {**settings.DELIVERY_ADAPTERS, "sms": f"{__name__}.{adapter}"}
    delivery = issue(channel="sms").deliveries.get()
    delivery_send(delivery_id=delivery.pk)
    # then: the row is the second claim's: still sending, under its lease, its number
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.provider_message_id) == ("sending", 2, "")
    assert delivery.lease_expires_at > timezone.now() + timedelta(minutes=4)


# --- Bulk requeue ---------------------------------------------------------------------------


@pytest.fixture
def sms_provider(settings, httpserver):
    settings.SMS_BASE_URL = httpserver.url_for("").rstrip("/")
    settings.SMS_ACCOUNT_SID = "AC123"
    settings.SMS_AUTH_TOKEN = "token"
    settings.SMS_FROM = "+15550000000"
    settings.DELIVERY_ADAPTERS = {**settings.DELIVERY_ADAPTERS, "sms": SMS}
    return httpserver


def dead_delivery(*, channel="email", failed_ago=timedelta(minutes=5), **customer) -> Delivery:
    delivery = issue(channel=channel, customer=customer_create(phone="+34612345678", **customer)).deliveries.get()
    Delivery.objects.filter(pk=delivery.pk).update(
        status="dead", failure_reason="exhausted", attempts=14, failed_at=timezone.now() - failed_ago
    )
    Issuance.objects.filter(pk=delivery.issuance_id).update(status=Issuance.Status.FAILED)
    delivery.refresh_from_db()
    return delivery


def test_requeue_sends_dead_deliveries_again_in_place_with_their_key_and_a_fresh_horizon(smtp_server):
    # given: a delivery dead after the provider's outage
    dead = dead_delivery()
    # when
    outcome = deliveries_requeue(actor=Actor(), via="command")
    # then: back to pending, due now, its retry count starting again
    assert [d.pk for d in outcome.requeued] == [dead.pk] and outcome.skipped == []
    dead.refresh_from_db()
    assert (dead.status, dead.failure_reason, dead.failed_at, dead.attempts_before_requeue) == ("pending", "", None, 14)
    (event,) = AuditEvent.objects.filter(action="delivery.requeue")
    assert (event.object_id, event.before["status"], event.after["via"]) == (str(dead.pk), "dead", "command")
    # and it is sent, once, with the same Message-ID as before
    assert delivery_send(delivery_id=dead.pk) == "sent"
    (message,) = smtp_server.handler.messages
    assert message["Message-ID"] == f"<delivery-{dead.pk}@appease>"
    dead.refresh_from_db()
    assert (dead.status, dead.attempts) == ("sent", 15)
    assert list(dead.attempt_log.values_list("number", "outcome")) == [(15, "sent")]
    assert Issuance.objects.get(pk=dead.issuance_id).status == Issuance.Status.DELIVERED
    # and a second requeue finds nothing
    assert deliveries_requeue(actor=Actor()).requeued == []


def test_requeue_gives_a_full_attempt_limit_after_the_requeue(sms_provider, settings):
    settings.DELIVERY_MAX_ATTEMPTS = 2
    sms_provider.expect_request(SMS_PATH, method="POST").respond_with_data("down", status=503)
    dead = dead_delivery(channel="sms")
    deliveries_requeue(actor=Actor())
    assert delivery_send(delivery_id=dead.pk) == "retry"  # attempt 15, the first of this round
    due_now(dead)
    assert delivery_send(delivery_id=dead.pk) == "dead"  # attempt 16, the second


def test_requeue_filters_by_channel_and_since_and_skips_what_cannot_go(settings):
    old = dead_delivery(failed_ago=timedelta(days=3))
    recent_email = dead_delivery()
    recent_sms = dead_delivery(channel="sms")
    withdrawn = dead_delivery()
    type(withdrawn.customer).objects.filter(pk=withdrawn.customer_id).update(consent_email=False)
    resent = dead_delivery()
    Delivery.objects.create(
        issuance=resent.issuance, customer=resent.customer, channel="email", address="x@example.com",
        language="en", next_attempt_at=timezone.now(), resend_of=resent,
    )  # fmt: skip
    since = timezone.now() - timedelta(hours=1)
    # when: e-mail only, from an hour ago
    outcome = deliveries_requeue(actor=Actor(), since=since, channel="email", dry_run=True)
    # then: the recent e-mail; not the old one, the SMS, the one already resent; the one
    # whose customer withdrew consent is reported
    assert [d.pk for d in outcome.requeued] == [recent_email.pk]
    assert [(d.pk, reason) for d, reason in outcome.skipped] == [(withdrawn.pk, "no consent")]
    # a dry run changes nothing and records nothing
    statuses = Delivery.objects.filter(pk__in=[old.pk, recent_email.pk, recent_sms.pk]).values_list("status", flat=True)
    assert set(statuses) == {"dead"}
    assert not AuditEvent.objects.filter(action="delivery.requeue").exists()


def test_the_requeue_command_dry_run_then_real(settings):
    dead = dead_delivery(channel="sms", failed_ago=timedelta(minutes=30))
    other = dead_delivery(failed_ago=timedelta(minutes=30))
    out = StringIO()
    call_command("deliveries_requeue", "--since=2h", "--channel=sms", "--dry-run", stdout=out)
    assert f"would requeue {dead.pk} (sms)" in out.getvalue() and "1 would be requeued, 0 skipped." in out.getvalue()
    dead.refresh_from_db()
    assert dead.status == "dead"
    out = StringIO()
    call_command("deliveries_requeue", "--since", timezone.localdate().isoformat(), "--channel", "sms", stdout=out)
    assert "1 requeued, 0 skipped." in out.getvalue(), out.getvalue()
    assert Delivery.objects.get(pk=dead.pk).status == "pending"
    assert Delivery.objects.get(pk=other.pk).status == "dead"
    assert AuditEvent.objects.get(action="delivery.requeue").object_id == str(dead.pk)


def test_the_requeue_command_refuses_a_since_it_cannot_read():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--since"):
        call_command("deliveries_requeue", "--since=yesterday-ish")


def test_the_admin_action_requeues_the_selected_dead_deliveries_and_audits_who(client):
    supervisor = staff_user("Supervisor")
    dead = dead_delivery()
    sent = dead_delivery()
    Delivery.objects.filter(pk=sent.pk).update(status="sent")
    client.force_login(supervisor)
    response = client.post(
        "/admin/delivery/delivery/",
        {"action": "requeue_dead", "index": "0", "_selected_action": [str(dead.pk), str(sent.pk)]},
        follow=True,
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert "1 deliveries queued again." in text and "1 not queued again" in text
    assert Delivery.objects.get(pk=dead.pk).status == "pending"
    assert Delivery.objects.get(pk=sent.pk).status == "sent"
    event = AuditEvent.objects.get(action="delivery.requeue")
    assert (event.actor, event.object_id, event.after["via"]) == (supervisor, str(dead.pk), "admin")
