"""The upgrade across the split of the ground floor (ADR 0010): the kernel's models
(AuditEvent, IdempotencyKey, FailureCounter, StaffAPIKey) moved from the appease app to
appease.core and the outbox's (Delivery, DeliveryAttempt, DeliveryStatusEvent) to
appease.delivery, in Django's state only. A database with rows written before the move
reads them through the new models afterwards, with the same tables, the same triggers,
and content types (so permissions, and the groups holding them) relabelled both ways.

It migrates the test database back and forth, so it commits (transaction=True) and leaves
the database at the latest migrations whatever happens: the tests after it need them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone
from rest_framework_api_key.crypto import KeyGenerator

from tests.conftest import ON_POSTGRES

BEFORE_THE_MOVE = [
    ("appease", "0021_translatable_names"),
    ("feedback", "0012_translatable_names"),
    ("core", None),
    ("delivery", None),
]
MOVED = {
    "core": {"auditevent", "idempotencykey", "failurecounter", "staffapikey"},
    "delivery": {"delivery", "deliveryattempt", "deliverystatusevent"},
}
ALL_MOVED = MOVED["core"] | MOVED["delivery"]


def _migrate(targets=None):
    """Migrate the test database to `targets` (None: the latest) and return the apps of
    the state it is in then, as a data migration would see them."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets or executor.loader.graph.leaf_nodes())
    # A fresh loader: the state of exactly what is applied now.
    loader = MigrationExecutor(connection).loader
    ContentType.objects.clear_cache()
    return loader.project_state(list(loader.applied_migrations)).apps


def _labels(models):
    return set(ContentType.objects.filter(model__in=models).values_list("app_label", "model"))


def _granted(group):
    return {
        f"{p.content_type.app_label}.{p.codename}"
        for p in Permission.objects.filter(group__pk=group.pk).select_related("content_type")
    }


@pytest.fixture
def at_the_latest_afterwards():
    yield
    _migrate()


@pytest.mark.django_db(transaction=True)
def test_rows_written_before_the_move_read_through_the_new_apps(at_the_latest_afterwards):
    # given: the database as it was before the move
    old = _migrate(BEFORE_THE_MOVE)
    with pytest.raises(LookupError):
        old.get_model("delivery", "Delivery")
    assert _labels(ALL_MOVED) <= {("appease", model) for model in ALL_MOVED}

    # ... its content types and permissions as post_migrate made them under the old label
    OldContentType = old.get_model("contenttypes", "ContentType")
    OldPermission = old.get_model("auth", "Permission")
    OldGroup = old.get_model("auth", "Group")
    old_types = {
        model: OldContentType.objects.get_or_create(app_label="appease", model=model)[0] for model in ALL_MOVED
    }
    view_delivery = OldPermission.objects.get_or_create(
        content_type=old_types["delivery"], codename="view_delivery", defaults={"name": "Can view delivery"}
    )[0]
    view_audit = OldPermission.objects.get_or_create(
        content_type=old_types["auditevent"], codename="view_auditevent", defaults={"name": "Can view audit event"}
    )[0]
    auditors = OldGroup.objects.create(name="Auditors (before the move)")
    auditors.permissions.add(view_delivery, view_audit)

    # ... and a rep's issuance sent by email, with its attempt, a follow-up, an audit row,
    # an idempotency key, a failure counter and a staff API key, all through the historical models
    User = old.get_model("auth", "User")
    rep = User.objects.create(username="rep-before-the-move", email="rep@example.com")
    customer = old.get_model("appease", "Customer").objects.create(name="Lucía", email="lucia@example.com")
    offer = old.get_model("coupons", "Offer").objects.create(
        name="Five off (before the move)", kind="amount_off", description="5 off", value_amount=Decimal("5.00"),
        currency="USD", cost_amount=Decimal("3.00"),
    )  # fmt: skip
    reason = old.get_model("appease", "ReasonCode").objects.create(
        code="late-before-move", label="Late", incident_type="late_delivery"
    )
    issuance = old.get_model("appease", "Issuance").objects.create(
        csr=rep, customer=customer, offer=offer, reason_code=reason, channel="email", status="issued",
        currency="USD", face_value_amount=Decimal("5.00"), cost_amount=Decimal("3.00"),
    )  # fmt: skip
    now = timezone.now()
    OldDelivery = old.get_model("appease", "Delivery")
    delivery = OldDelivery.objects.create(
        issuance=issuance, customer=customer, channel="email", address="lucia@example.com", language="es",
        status="sent", attempts=1, next_attempt_at=now, requested_by=rep,
    )  # fmt: skip
    attempt = old.get_model("appease", "DeliveryAttempt").objects.create(
        delivery=delivery, number=1, channel="email", started_at=now, finished_at=now, outcome="sent", status_code=250
    )
    status_event = old.get_model("appease", "DeliveryStatusEvent").objects.create(delivery=delivery, status="delivered")
    follow_up_delivery = OldDelivery.objects.create(
        kind="follow_up", customer=customer, channel="email", address="lucia@example.com", language="es",
        next_attempt_at=now,
    )  # fmt: skip
    case = old.get_model("feedback", "Case").objects.create(
        customer=customer, source="csr", subject="Late parcel", incident_type="late_delivery"
    )
    follow_up = old.get_model("feedback", "FollowUp").objects.create(
        case=case, customer=customer, due_at=now, expires_at=now + dt.timedelta(days=7), delivery=follow_up_delivery
    )
    audit = old.get_model("appease", "AuditEvent").objects.create(
        actor=rep, actor_label=f"user:{rep.username}", action="issuance.create", object_type="issuance",
        object_id=str(issuance.pk), after={"status": "issued"},
    )  # fmt: skip
    idempotency = old.get_model("appease", "IdempotencyKey").objects.create(
        scope="issuances.create", owner=f"user:{rep.pk}", key="k-1", fingerprint="f" * 64, status="completed",
        response_status=201, result={"id": str(issuance.pk)}, locked_at=now, completed_at=now,
    )  # fmt: skip
    old.get_model("appease", "FailureCounter").objects.create(key="login:rep", count=2, expires_at=now)
    key, prefix, hashed_key = KeyGenerator().generate()
    old.get_model("appease", "StaffAPIKey").objects.create(
        id=f"{prefix}.{hashed_key}", prefix=prefix, hashed_key=hashed_key, name="CRM", user=rep
    )

    # when: the upgrade
    _migrate()

    # then: the same rows, read through the models in their new apps
    from appease.core.models import AuditEvent, FailureCounter, IdempotencyKey, StaffAPIKey
    from appease.delivery.models import Delivery, DeliveryAttempt, DeliveryStatusEvent
    from appease.issuance.models import Issuance
    from feedback.models import FollowUp

    moved = Delivery.objects.get(pk=delivery.pk)
    assert (moved.status, moved.address, moved.issuance_id, moved.requested_by_id) == (
        "sent", "lucia@example.com", issuance.pk, rep.pk,
    )  # fmt: skip
    assert list(moved.attempt_log.values_list("pk", "outcome")) == [(attempt.pk, "sent")]
    assert DeliveryAttempt.objects.get(pk=attempt.pk).delivery == moved
    assert DeliveryStatusEvent.objects.get(pk=status_event.pk).delivery == moved
    assert list(Issuance.objects.get(pk=issuance.pk).deliveries.all()) == [moved]
    assert AuditEvent.objects.get(pk=audit.pk).after == {"status": "issued"}
    assert IdempotencyKey.objects.get(pk=idempotency.pk).result == {"id": str(issuance.pk)}
    assert FailureCounter.objects.get(key="login:rep").count == 2
    assert StaffAPIKey.objects.get_from_key(key).user_id == rep.pk  # the hash still checks

    # ... the follow-up's relation to its delivery, both ways
    assert FollowUp.objects.get(pk=follow_up.pk).delivery == Delivery.objects.get(pk=follow_up_delivery.pk)
    assert Delivery.objects.get(pk=follow_up_delivery.pk).follow_up.pk == follow_up.pk
    assert FollowUp.objects.filter(delivery__kind="follow_up", delivery__customer=customer.pk).count() == 1

    # ... content types relabelled in place (same ids), none left under the old label
    assert _labels(ALL_MOVED) == {(app, model) for app, models in MOVED.items() for model in models}
    assert ContentType.objects.get_for_model(Delivery).pk == old_types["delivery"].pk
    assert ContentType.objects.get_for_model(AuditEvent).pk == old_types["auditevent"].pk
    assert not ContentType.objects.filter(app_label="appease", model__in=ALL_MOVED).exists()

    # ... so the group holds the same permissions under the new labels
    assert _granted(auditors) == {"delivery.view_delivery", "core.view_auditevent"}
    group = Group.objects.get(pk=auditors.pk)
    member = get_user_model().objects.get(pk=rep.pk)
    member.groups.add(group)
    member = get_user_model().objects.get(pk=rep.pk)  # no cached permissions
    assert member.has_perm("delivery.view_delivery") and member.has_perm("core.view_auditevent")
    assert not member.has_perm("appease.view_delivery")

    # ... and on PostgreSQL the audit log stays append-only (the trigger is on the table)
    if ON_POSTGRES:
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            AuditEvent.objects.filter(pk=audit.pk).update(action="tampered")
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            AuditEvent.objects.filter(pk=audit.pk).delete()
        assert AuditEvent.objects.get(pk=audit.pk).action == "issuance.create"

    # when: the upgrade is rolled back as an operator would, one app at a time (each run
    # ends with post_migrate, which makes content types for what the state then holds)
    call_command("migrate", "core", "zero", verbosity=0)
    call_command("migrate", "delivery", "zero", verbosity=0)

    # then: the content types say appease again, with the group's permissions, and the rows stay
    ContentType.objects.clear_cache()
    assert _labels(ALL_MOVED) == {("appease", model) for model in ALL_MOVED}
    assert _granted(auditors) == {"appease.view_delivery", "appease.view_auditevent"}
    rolled_back = _migrate(BEFORE_THE_MOVE)  # already there: just the state
    assert rolled_back.get_model("appease", "Delivery").objects.get(pk=delivery.pk).status == "sent"
    assert rolled_back.get_model("appease", "AuditEvent").objects.get(pk=audit.pk).action == "issuance.create"

    # when: upgraded again, one app first, then the rest
    call_command("migrate", "delivery", verbosity=0)
    call_command("migrate", verbosity=0)

    # then: one content type per moved model, the original, under its new label
    ContentType.objects.clear_cache()
    assert _labels(ALL_MOVED) == {(app, model) for app, models in MOVED.items() for model in models}
    assert ContentType.objects.get_for_model(Delivery).pk == old_types["delivery"].pk
    assert _granted(auditors) == {"delivery.view_delivery", "core.view_auditevent"}
