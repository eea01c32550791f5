"""The queue (`Case`) and each case's append-only timeline (`CaseEvent`), with the
words a reader sees for a case's "why this score" and for each timeline line."""

from __future__ import annotations

from decimal import Decimal

from django.apps import apps
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from appease.core.money import format_money
from appease.delivery.models import Channel
from appease.issuance.models.customers import Customer, IncidentType
from appease.issuance.models.issuance import Issuance
from feedback.models.choices import LANGUAGES, Intervention, Priority
from feedback.models.triage import OwnerTeam


class Case(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        CLAIMED = "claimed", _("Being worked")
        RESOLVED = "resolved", _("Resolved, waiting for the customer")
        CONFIRMED = "confirmed", _("Closed: solved, confirmed by the customer")
        UNCONFIRMED = "unconfirmed", _("Closed: no answer from the customer")

    OPEN_STATUSES = (Status.OPEN, Status.CLAIMED)

    class Source(models.TextChoices):
        WIDGET = "widget", _("Feedback widget")
        API = "api", _("Feedback API")
        SURVEY = "survey", _("Survey")
        CSR = "csr", _("Logged by a rep")
        EVENT = "event", _("Merchant event")

    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.PROTECT, related_name="cases", verbose_name=_("customer")
    )
    source = models.CharField(_("source"), max_length=10, choices=Source.choices)
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.OPEN)
    subject = models.CharField(_("subject"), max_length=200)
    incident_type = models.CharField(_("incident type"), max_length=20, choices=IncidentType.choices)
    incident_inferred = models.BooleanField(
        _("incident type inferred"), default=False, help_text=_("Inferred from the text by the keyword rules.")
    )
    order_reference = models.CharField(_("order reference"), max_length=100, blank=True)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices, blank=True)
    language = models.CharField(_("language"), max_length=10, choices=LANGUAGES, default="en")
    owner_team = models.ForeignKey(
        OwnerTeam, null=True, blank=True, on_delete=models.SET_NULL, related_name="cases", verbose_name=_("owning team")
    )
    sentiment = models.FloatField(_("sentiment"), null=True, blank=True, help_text=_("-1 (negative) to 1."))
    anger = models.FloatField(_("anger"), null=True, blank=True, help_text=_("0 to 1."))
    priority = models.CharField(_("priority"), max_length=10, choices=Priority.choices, default=Priority.NORMAL)
    priority_score = models.PositiveSmallIntegerField(_("priority score"), default=0)
    age_points = models.PositiveSmallIntegerField(
        _("age points"), default=0, help_text=_("Part of the score added for waiting.")
    )
    score_reasons = models.JSONField(_("why this score"), default=list, blank=True)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="cases",
        verbose_name=_("assigned to"),
    )
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    first_response_at = models.DateTimeField(_("first response at"), null=True, blank=True)
    first_response_due_at = models.DateTimeField(_("first response due at"), null=True, blank=True)
    resolution_due_at = models.DateTimeField(_("resolution due at"), null=True, blank=True)
    # "Breached in the current round": cleared when the case reopens, so a reopened case
    # can miss its fresh targets (and be escalated) again.
    first_response_breached_at = models.DateTimeField(_("first response breached at"), null=True, blank=True)
    resolution_breached_at = models.DateTimeField(_("resolution breached at"), null=True, blank=True)
    # Every breach ever, all rounds: what reporting and the metrics count. Never cleared;
    # raised by one conditional UPDATE (F() + 1) with the timestamp above. db_default, so
    # rows written without the ORM (COPY) get 0 too.
    first_response_breaches = models.PositiveSmallIntegerField(
        _("first responses late"), default=0, db_default=0, help_text=_("Times the first-response target was missed.")
    )
    resolution_breaches = models.PositiveSmallIntegerField(
        _("resolutions late"), default=0, db_default=0, help_text=_("Times the resolution target was missed.")
    )
    escalated_at = models.DateTimeField(_("escalated at"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("resolved by"),
    )
    resolution_note = models.TextField(_("resolution note"), blank=True, max_length=4000)
    intervention = models.CharField(_("intervention"), max_length=15, choices=Intervention.choices, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    reopened_count = models.PositiveSmallIntegerField(_("reopened count"), default=0)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("case")
        verbose_name_plural = _("cases")
        ordering = ["-priority_score", "created_at"]
        indexes = [
            # "Next case": the highest-scoring unclaimed case, oldest first.
            models.Index(fields=["-priority_score", "created_at"], name="case_queue_idx", condition=Q(status="open")),
            models.Index(fields=["customer", "created_at"]),
            models.Index(
                fields=["first_response_due_at"], name="case_first_due_idx", condition=Q(first_response_at=None)
            ),
            models.Index(fields=["resolution_due_at"], name="case_resolution_due_idx", condition=Q(resolved_at=None)),
            # Closed since the last rollup refresh (reporting.services).
            models.Index(fields=["closed_at"], name="case_closed_idx", condition=Q(closed_at__isnull=False)),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="claimed") | Q(assigned_to__isnull=False), name="claimed_case_has_an_owner"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.subject}"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    @property
    def reasons(self) -> list[dict]:
        """`score_reasons`, each with its `text` in the current language."""
        return [{**reason, "text": score_reason_text(reason)} for reason in self.score_reasons]


def score_reason_text(reason: dict) -> str:
    """One line of a case's "why this score", in the current language.

    Reasons are stored as data (factor, points, params) and worded here, when shown, so
    a rep reads them in their own language with the incident type's label, not a slug.
    Reasons stored before that carry an English `detail`, shown as it is.
    """
    factor, params = reason.get("factor"), reason.get("params")
    detail = reason.get("detail", "")
    if params is None:
        if factor == "incident" and detail in IncidentType.values:  # bulk-loaded history
            params = {"incident_type": detail}
        else:
            return detail or str(factor or "")
    if factor == "incident":
        slug = params.get("incident_type", "")
        label = IncidentType(slug).label if slug in IncidentType.values else slug
        return gettext("impact weight of %(incident)s") % {"incident": label}
    if factor == "customer_value":
        tier = params.get("tier", "")
        tier_label = Customer.Tier(tier).label if tier in Customer.Tier.values else tier
        value = format_money(Decimal(params.get("lifetime_value") or "0"), params.get("currency") or "USD")
        return gettext("%(tier)s tier, lifetime value %(value)s") % {"tier": tier_label, "value": value}
    if factor == "repeat":
        count = int(params.get("count", 0))
        return ngettext("%(count)d case in the last 90 days", "%(count)d cases in the last 90 days", count) % {
            "count": count
        }
    if factor == "feeling":
        kind, value = params.get("kind"), params.get("value")
        if kind == "rating":
            return gettext("rated %(rating)s/5") % {"rating": value}
        if kind == "nps":
            return gettext("NPS %(nps)s/10") % {"nps": value}
        return gettext("anger %(anger)s") % {"anger": number_format(value or 0, 2)}
    if factor == "age":
        hours = int(params.get("hours", 0))
        return ngettext("waiting %(hours)d hour", "waiting %(hours)d hours", hours) % {"hours": hours}
    if factor == "reopened":
        return gettext("the customer said it was not solved")
    return detail or str(factor or "")


class CaseEvent(models.Model):
    """One line of a case's timeline. Append-only (a trigger on PostgreSQL)."""

    class Kind(models.TextChoices):
        OPENED = "opened", _("Opened")
        FEEDBACK = "feedback", _("Feedback received")
        CLAIMED = "claimed", _("Claimed")
        REASSIGNED = "reassigned", _("Reassigned")
        NOTE = "note", _("Note")
        CALL = "call", _("Call with the customer")
        APOLOGY = "apology", _("Apology sent")
        ISSUED = "issued", _("Appeasement given")
        RESOLVED = "resolved", _("Resolved")
        ESCALATED = "escalated", _("Escalated")
        SLA_BREACHED = "sla_breached", _("Target missed")
        FOLLOW_UP_SCHEDULED = "follow_up_scheduled", _("Follow-up scheduled")
        FOLLOW_UP_SENT = "follow_up_sent", _("Follow-up sent")
        FOLLOW_UP_SKIPPED = "follow_up_skipped", _("Follow-up skipped")
        SURVEY_ANSWERED = "survey_answered", _("Customer answered")
        REOPENED = "reopened", _("Reopened")
        CLOSED = "closed", _("Closed")

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="events", verbose_name=_("case"))
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("actor"),
    )
    text = models.TextField(_("text"), blank=True)
    data = models.JSONField(_("data"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("case event")
        verbose_name_plural = _("case events")
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.created_at:%Y-%m-%d %H:%M})"

    @property
    def summary(self) -> str:
        """What the line's data says, in the current language ("" when nothing)."""
        return case_event_summary(self.kind, self.data or {})


def _label(choices, value) -> str:
    return str(choices(value).label) if value in choices.values else str(value or "")


# Why a follow-up was skipped or a case closed, as the services record it.
def _why(reason: str) -> str:
    return {
        "no_customer": gettext("no customer to ask"),
        "no_channel": gettext("no channel the customer can be reached on"),
        "quiet_period": gettext("the customer was surveyed recently (quiet period)"),
        "no_answer": gettext("no answer before the survey link expired"),
    }.get(reason, reason or "")


def case_event_summary(kind: str, data: dict) -> str:
    """One timeline line's data in words: who a case went to, why it closed, what the
    customer answered. The data stays as recorded; the words are the reader's."""
    Kind = CaseEvent.Kind
    if kind == Kind.OPENED and data.get("priority"):
        return gettext("priority %(priority)s, score %(score)s") % {
            "priority": _label(Priority, data["priority"]),
            "score": data.get("score", 0),
        }
    if kind == Kind.FEEDBACK:
        parts = [_label(Case.Source, data.get("source"))] if data.get("source") else []
        if data.get("rating") is not None:
            parts.append(gettext("rated %(rating)s/5") % {"rating": data["rating"]})
        if data.get("nps") is not None:
            parts.append(gettext("NPS %(nps)s/10") % {"nps": data["nps"]})
        return ", ".join(parts)
    if kind == Kind.REASSIGNED and data.get("to"):
        return gettext("to %(user)s") % {"user": data["to"]}
    if kind in (Kind.APOLOGY, Kind.ISSUED) and data.get("offer"):
        # The offer's name in the reader's language (kept as an id); older lines hold the
        # name as it was written.
        offers = apps.get_model("coupons", "Offer").objects
        offer = offers.filter(pk=data["offer_id"]).first() if data.get("offer_id") else None
        return gettext("%(offer)s (%(status)s)") % {
            "offer": offer.name if offer is not None else data["offer"],
            "status": _label(Issuance.Status, data.get("status", "")),
        }
    if kind == Kind.RESOLVED and data.get("intervention"):
        return gettext("intervention: %(intervention)s") % {"intervention": _label(Intervention, data["intervention"])}
    if kind == Kind.SLA_BREACHED:
        return gettext("first response") if data.get("target") == "first_response" else gettext("resolution")
    if kind == Kind.FOLLOW_UP_SCHEDULED and data.get("due_at"):
        due = parse_datetime(data["due_at"])
        when = date_format(timezone.localtime(due), "SHORT_DATETIME_FORMAT") if due else data["due_at"]
        return gettext("due %(when)s") % {"when": when}
    if kind == Kind.FOLLOW_UP_SENT and data.get("channel"):
        return gettext("by %(channel)s") % {"channel": _label(Channel, data["channel"])}
    if kind == Kind.FOLLOW_UP_SKIPPED:
        return _why(data.get("reason", ""))
    if kind == Kind.SURVEY_ANSWERED:
        answer = gettext("solved") if data.get("solved") else gettext("not solved")
        if data.get("csat"):
            answer = gettext("%(answer)s, satisfaction %(csat)s/5") % {"answer": answer, "csat": data["csat"]}
        if data.get("issuance"):
            # About an appeasement given outside this case: the offer in the reader's language.
            offer = apps.get_model("coupons", "Offer").objects.filter(pk=data.get("offer_id")).first()
            return gettext("%(answer)s, about %(offer)s given earlier") % {
                "answer": answer,
                "offer": offer.name if offer is not None else "",
            }
        return answer
    if kind == Kind.REOPENED and data.get("priority"):
        return gettext("back in the queue at %(priority)s, score %(score)s") % {
            "priority": _label(Priority, data["priority"]),
            "score": data.get("score", 0),
        }
    if kind == Kind.CLOSED and data.get("status"):
        status = _label(Case.Status, data["status"])
        why = _why(data.get("reason", ""))
        return gettext("%(status)s: %(why)s") % {"status": status, "why": why} if why else status
    return ""
