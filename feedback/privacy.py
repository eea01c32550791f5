"""Closed-loop feedback's personal data (appease.core.privacy): what customers wrote
(feedback, survey comments), their cases (subjects, resolution notes, timelines) and
the merchant events that named them.

Registered in FeedbackConfig.ready.
"""

from __future__ import annotations

from django.db.models import Exists, Q, TextField
from django.db.models.functions import Cast

from appease.core.audit import snapshot
from appease.core.privacy import (
    DONE_WORDS,
    ERASED,
    EXPIRED,
    Identity,
    PersonalData,
    expire_json,
    ids,
    in_batches,
    iso,
    json_in_batches,
    register,
    set_values,
)
from appease.issuance.models import Issuance
from feedback.models import AppeasementOutcome, Case, CaseEvent, Feedback, FollowUp, MerchantEvent


def objects(customer) -> dict:
    return {
        Case: ids(Case.objects.filter(customer=customer)),
        Feedback: ids(Feedback.objects.filter(customer=customer)),
        FollowUp: ids(FollowUp.objects.filter(customer=customer)),
        AppeasementOutcome: ids(AppeasementOutcome.objects.filter(customer=customer)),
    }


def _merchant_events(customer, identity: Identity):
    """The merchant events that name the customer: those that gave them something or
    opened their case, and any whose data mentions their email, phone or external id."""
    linked = Issuance.objects.filter(customer=customer, event__isnull=False).values("event_id")
    case_ids = list(Case.objects.filter(customer=customer).values_list("pk", flat=True))
    events = MerchantEvent.objects.annotate(raw=Cast("data", TextField()))
    return events.filter(Q(pk__in=linked) | Q(result__case_id__in=case_ids) | identity.mentioned("raw")).order_by("pk")


def _event_data_of(event, identity: Identity) -> dict:
    """What a merchant event holds about this customer: their own entries, and the
    event's other fields; never the other customers of a cohort."""
    data = event.data if isinstance(event.data, dict) else {}
    own = [entry for entry in data.get("customers") or [] if identity.names_in(entry)]
    if identity.names_in(data.get("customer")):
        own.append(data["customer"])
    return {
        **{key: value for key, value in data.items() if key not in ("customer", "customers")},
        "customers": own,
    }


def _event_data_erased(data, identity: Identity):
    """The event's data with this customer's entries pseudonymised and every mention of
    them elsewhere (a free-text field, another customer's note) replaced."""
    if not isinstance(data, dict):
        return identity.redact_json(data, tied=False)

    def entry(item):
        return identity.redact_json(item, tied=True) if identity.names_in(item) else item

    result = {}
    for key, value in data.items():
        if key == "customers" and isinstance(value, list):
            value = [entry(item) for item in value]
        elif key == "customer":
            value = entry(value)
        result[key] = identity.redact_json(value, tied=False)
    return result


def export(customer, identity: Identity) -> dict:
    return {
        "feedback": [snapshot(item) for item in Feedback.objects.filter(customer=customer)],
        "cases": [
            {
                **snapshot(case, ["subject", "incident_type", "status", "priority", "resolution_note", "intervention"]),
                "id": case.pk,
                "created_at": iso(case.created_at),
                "timeline": [
                    {"kind": event.kind, "text": event.text, "data": event.data, "at": iso(event.created_at)}
                    for event in case.events.all()
                ],
            }
            for case in Case.objects.filter(customer=customer).prefetch_related("events")
        ],
        "follow_ups": [
            {
                "id": str(follow_up.pk),
                "status": follow_up.status,
                "sent_at": iso(follow_up.sent_at),
                "solved": follow_up.solved,
                "csat": follow_up.csat,
                "comment": follow_up.comment,
            }
            for follow_up in FollowUp.objects.filter(customer=customer)
        ],
        "appeasement_outcomes": [
            {
                "id": str(outcome.pk),
                "incident_type": outcome.incident_type,
                "intervention": outcome.intervention,
                "given_at": iso(outcome.given_at),
                "solved": outcome.solved,
                "csat": outcome.csat,
                "override_reason": outcome.override_reason,
            }
            for outcome in AppeasementOutcome.objects.filter(customer=customer)
        ],
        "merchant_events": [
            {
                "id": event.pk,
                "event_id": event.event_id,
                "event_type": event.event_type,
                "received_at": iso(event.received_at),
                "data": _event_data_of(event, identity),
            }
            for event in _merchant_events(customer, identity)
        ],
    }


def erase(customer, identity: Identity) -> dict:
    """Feedback, case subjects, notes and timelines, survey comments erased; the
    customer's entries in merchant events pseudonymised and mentions of them replaced."""
    events = list(_merchant_events(customer, identity))
    cases = Case.objects.filter(customer=customer)
    done = {
        "feedback": Feedback.objects.filter(customer=customer).update(text=ERASED, page_url=""),
        "cases": cases.update(subject=ERASED),
        "case_events": 0,
    }
    cases.exclude(resolution_note="").update(resolution_note=ERASED)
    for event in CaseEvent.objects.filter(case__in=cases).only("text", "data"):
        done["case_events"] += CaseEvent.objects.filter(pk=event.pk).update(
            text=ERASED if event.text else "", data=identity.redact_json(event.data)
        )
    done["follow_ups"] = FollowUp.objects.filter(customer=customer).exclude(comment="").update(comment=ERASED)
    # A rep's reason for overriding an experiment may name the customer; the outcome's
    # figures (what was given, solved, CSAT) are the recovery reports' and stay.
    done["outcomes"] = (
        AppeasementOutcome.objects.filter(customer=customer).exclude(override_reason="").update(override_reason=ERASED)
    )
    for event in events:
        MerchantEvent.objects.filter(pk=event.pk).update(data=_event_data_erased(event.data, identity))
    done["merchant_events"] = len(events)
    return done


def expire(cutoff, *, size: int) -> dict:
    def expire_case_event(row) -> dict:
        text = row.text if row.text in DONE_WORDS else EXPIRED
        data = expire_json(row.data)
        return {"text": text, "data": data} if (text, data) != (row.text, row.data) else {}

    def expire_merchant_event(row) -> dict:
        data = expire_json(row.data)
        return {"data": data} if data != row.data else {}

    return {
        "feedback": in_batches(
            Feedback.objects.filter(created_at__lt=cutoff).exclude(text__in=DONE_WORDS),
            set_values(Feedback, text=EXPIRED, page_url=""),
            size=size,
        ),
        # A timeline row's words, and the personal keys of its data (also in a row
        # without text): only reading the row tells what is left to do.
        "case_events": json_in_batches(
            CaseEvent.objects.filter(created_at__lt=cutoff), expire_case_event, size=size, fields=("text", "data")
        ),
        "cases": in_batches(
            Case.objects.filter(closed_at__lt=cutoff).exclude(subject__in=[ERASED, EXPIRED]),
            set_values(Case, subject=EXPIRED, resolution_note=""),
            size=size,
        ),
        "follow_ups": in_batches(
            FollowUp.objects.filter(created_at__lt=cutoff).exclude(comment__in=DONE_WORDS),
            set_values(FollowUp, comment=EXPIRED),
            size=size,
        ),
        "outcomes": in_batches(
            AppeasementOutcome.objects.filter(given_at__lt=cutoff)
            .exclude(override_reason="")
            .exclude(override_reason__in=DONE_WORDS),
            set_values(AppeasementOutcome, override_reason=EXPIRED),
            size=size,
        ),
        # Which still hold a personal value is only known by reading the JSON.
        "merchant_events": json_in_batches(
            MerchantEvent.objects.filter(received_at__lt=cutoff), expire_merchant_event, size=size, fields=("data",)
        ),
    }


def active(customer, cutoff) -> list:
    """Complained, wrote feedback or answered a survey since `cutoff`."""
    recent_case = Q(created_at__gte=cutoff) | Q(closed_at__gte=cutoff)
    return [
        Exists(Case.objects.filter(recent_case, customer=customer)),
        Exists(Feedback.objects.filter(customer=customer, created_at__gte=cutoff)),
        Exists(FollowUp.objects.filter(customer=customer, answered_at__gte=cutoff)),
    ]


PERSONAL_DATA = PersonalData(
    app_label="feedback",
    models=(Case, Feedback, FollowUp, AppeasementOutcome),
    objects=objects,
    export=export,
    erase=erase,
    expire=expire,
    active=active,
    keys=frozenset({"text", "comment", "note", "subject", "resolution_note", "page_url"}),
)


def personal_data_register() -> None:
    register(PERSONAL_DATA)
