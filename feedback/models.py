"""Closed-loop feedback: what customers say, the cases it becomes, and how each ends.

- `FeedbackSite` and `Feedback`: intake from the widget, the API, surveys and reps.
- `IncidentProfile`, `OwnerTeam`, `KeywordRule`, `PriorityLevel`: triage, all edited
  by supervisors in the admin.
- `Case` and `CaseEvent`: the queue and each case's append-only timeline.
- `RecommendationRule`: which intervention fits which incident and customer.
- `FollowUp`: the message after resolution and the one-question survey it carries.
- `MerchantEvent` and `AutoRule`: events from the merchant's systems and the rules
  that appease automatically (an airline's meal voucher after a three-hour delay).
"""

from __future__ import annotations

import secrets
import uuid
from decimal import Decimal, InvalidOperation

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from appease.core.money import format_money, is_known_currency
from appease.delivery.models import Channel
from appease.issuance.models.customers import AMOUNT, Customer, IncidentType
from appease.issuance.models.issuance import Issuance

LANGUAGES = settings.LANGUAGES  # "en", "es", "pt-br": the codes Django and customers use


def _public_key() -> str:
    return "pk_" + secrets.token_urlsafe(18)


class Intervention(models.TextChoices):
    """What a rep does about an incident: soft (words, time) or hard (value)."""

    APOLOGY = "apology", _("Apology")
    EXPLANATION = "explanation", _("Explanation")
    CALLBACK = "callback", _("Callback")
    DISCOUNT = "discount", _("Discount")
    GIFT_CARD = "gift_card", _("Gift card")
    REFUND_CREDIT = "refund_credit", _("Refund credit")

    @classmethod
    def soft(cls) -> frozenset[str]:
        return frozenset({cls.APOLOGY, cls.EXPLANATION, cls.CALLBACK})

    @classmethod
    def for_offer_kind(cls, kind: str) -> str:
        return {
            "apology": cls.APOLOGY,
            "callback": cls.CALLBACK,
            "gift_card": cls.GIFT_CARD,
            "percent_off": cls.DISCOUNT,
            "amount_off": cls.REFUND_CREDIT,
            "free_item": cls.DISCOUNT,
        }[kind]


class Priority(models.TextChoices):
    CRITICAL = "critical", _("Critical")
    HIGH = "high", _("High")
    NORMAL = "normal", _("Normal")
    LOW = "low", _("Low")


class OwnerTeam(models.Model):
    """The team that fixes the cause (logistics, billing, product…), not the rep who
    appeases. It gets a periodic digest of its top issues."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    digest_emails = models.TextField(
        _("digest recipients"), blank=True, help_text=_("Email addresses, one per line, that get the digest.")
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("owning team")
        verbose_name_plural = _("owning teams")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def recipients(self) -> list[str]:
        return [line.strip() for line in self.digest_emails.splitlines() if line.strip()]


class IncidentProfile(models.Model):
    """How much an incident type weighs in the priority score, and whose it is."""

    incident_type = models.CharField(_("incident type"), max_length=20, choices=IncidentType.choices, unique=True)
    impact_weight = models.PositiveSmallIntegerField(
        _("impact weight"),
        default=20,
        validators=[MaxValueValidator(50)],
        help_text=_("Points this incident type adds to the priority score (0–50)."),
    )
    owner_team = models.ForeignKey(
        OwnerTeam,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="incident_profiles",
        verbose_name=_("owner team"),
    )

    class Meta:
        verbose_name = _("incident profile")
        verbose_name_plural = _("incident profiles")
        ordering = ["incident_type"]

    def __str__(self) -> str:
        return self.get_incident_type_display()


class KeywordRule(models.Model):
    """Words that reveal an incident type, or anger, in one language."""

    class Kind(models.TextChoices):
        INCIDENT = "incident", _("Incident type")
        ANGER = "anger", _("Anger")

    language = models.CharField(_("language"), max_length=10, choices=LANGUAGES)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.INCIDENT)
    incident_type = models.CharField(
        _("incident type"), max_length=20, choices=IncidentType.choices, blank=True, help_text=_("For incident rules.")
    )
    keywords = models.TextField(
        _("keywords"),
        help_text=_("One word or phrase per line. Matching ignores case and accents; a phrase matches whole words."),
    )
    weight = models.PositiveSmallIntegerField(
        _("weight"), default=1, help_text=_("Each matching keyword counts this many times.")
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("keyword rule")
        verbose_name_plural = _("keyword rules")
        ordering = ["language", "kind", "incident_type"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="anger", incident_type="") | (Q(kind="incident") & ~Q(incident_type="")),
                name="keyword_rule_kind_matches_type",
            )
        ]

    def __str__(self) -> str:
        target = self.get_incident_type_display() if self.kind == self.Kind.INCIDENT else self.get_kind_display()
        return f"{self.language}: {target}"

    @property
    def keyword_list(self) -> list[str]:
        return [line.strip() for line in self.keywords.splitlines() if line.strip()]


class PriorityLevel(models.Model):
    """A band of priority scores, and its service-level targets.

    The highest band whose `min_score` a case reaches is its priority. Feedback in a
    band that does not `create_case` is acknowledged automatically.
    """

    priority = models.CharField(_("priority"), max_length=10, choices=Priority.choices, unique=True)
    min_score = models.PositiveSmallIntegerField(_("minimum score"))
    creates_case = models.BooleanField(
        _("creates a case"), default=True, help_text=_("Off: feedback in this band is acknowledged automatically.")
    )
    first_response_seconds = models.PositiveIntegerField(_("first response within (seconds)"))
    resolution_seconds = models.PositiveIntegerField(_("resolution within (seconds)"))
    business_hours_only = models.BooleanField(
        _("business hours only"), default=True, help_text=_("Off: the clock runs around the clock.")
    )

    class Meta:
        verbose_name = _("priority level")
        verbose_name_plural = _("priority levels")
        ordering = ["-min_score"]

    def __str__(self) -> str:
        return self.get_priority_display()


class FeedbackSite(models.Model):
    """A shop page or app that embeds the widget. Its key is public (it sits in the
    page's HTML): it names the site, it does not prove anything, so intake is rate
    limited per key and per IP and guarded by a honeypot."""

    name = models.CharField(_("name"), max_length=100)
    public_key = models.CharField(_("public key"), max_length=40, unique=True, default=_public_key, editable=False)
    allowed_origins = models.TextField(
        _("allowed origins"),
        blank=True,
        help_text=_(
            "Origins allowed to post, one per line, e.g. https://shop.example.com. Empty: no other website "
            "(only this server's own pages)."
        ),
    )
    default_language = models.CharField(_("default language"), max_length=10, choices=LANGUAGES, default="en")
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("feedback site")
        verbose_name_plural = _("feedback sites")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def origins(self) -> list[str]:
        return [line.strip().rstrip("/") for line in self.allowed_origins.splitlines() if line.strip()]


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


class Feedback(models.Model):
    """One thing a customer told us, as received. Low-impact feedback stays here,
    acknowledged; the rest opens (or joins) a case."""

    class Disposition(models.TextChoices):
        ACKNOWLEDGED = "acknowledged", _("Acknowledged automatically")
        QUEUED = "queued", _("Queued for a rep")
        CRITICAL = "critical", _("Critical")

    site = models.ForeignKey(
        FeedbackSite, null=True, blank=True, on_delete=models.PROTECT, related_name="feedback", verbose_name=_("site")
    )
    source = models.CharField(_("source"), max_length=10, choices=Case.Source.choices)
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.PROTECT, related_name="feedback", verbose_name=_("customer")
    )
    case = models.ForeignKey(
        Case, null=True, blank=True, on_delete=models.PROTECT, related_name="feedback", verbose_name=_("case")
    )
    rating = models.PositiveSmallIntegerField(
        _("rating"), null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    nps = models.PositiveSmallIntegerField(_("NPS"), null=True, blank=True, validators=[MaxValueValidator(10)])
    text = models.TextField(_("text"), blank=True, max_length=4000)
    incident_type = models.CharField(_("incident type"), max_length=20, choices=IncidentType.choices, blank=True)
    order_reference = models.CharField(_("order reference"), max_length=100, blank=True)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices, blank=True)
    page_url = models.URLField(_("page"), blank=True, max_length=500)
    language = models.CharField(_("language"), max_length=10, choices=LANGUAGES, default="en")
    sentiment = models.FloatField(_("sentiment"), null=True, blank=True)
    anger = models.FloatField(_("anger"), null=True, blank=True)
    disposition = models.CharField(_("disposition"), max_length=12, choices=Disposition.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("feedback")
        verbose_name_plural = _("feedback")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(rating__gte=1, rating__lte=5) | Q(rating=None), name="rating_1_to_5"),
            models.CheckConstraint(condition=Q(nps__lte=10) | Q(nps=None), name="nps_0_to_10"),
        ]

    def __str__(self) -> str:
        return f"{self.get_source_display()} {self.created_at:%Y-%m-%d %H:%M}"


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
            return gettext("%(answer)s, satisfaction %(csat)s/5") % {"answer": answer, "csat": data["csat"]}
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


class RecommendationRule(models.Model):
    """Incident type × customer tier × history → an intervention and its size.

    Empty incident type or tier matches any. The suggested value is
    `(base + order total × percent) × tier factor`, capped at `max_amount`.
    """

    name = models.CharField(_("name"), max_length=100)
    incident_type = models.CharField(_("incident type"), max_length=20, choices=IncidentType.choices, blank=True)
    tier = models.CharField(_("customer tier"), max_length=10, choices=Customer.Tier.choices, blank=True)
    min_past_incidents = models.PositiveSmallIntegerField(
        _("at least this many past incidents"), default=0, help_text=_("In the last 90 days, this case excluded.")
    )
    intervention = models.CharField(_("intervention"), max_length=15, choices=Intervention.choices)
    offer = models.ForeignKey(
        "coupons.Offer",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("The offer to give. Empty: the best matching offer the rep may give."),
        verbose_name=_("offer"),
    )
    base_amount = models.DecimalField(_("base value"), **AMOUNT, default=Decimal("0"))
    percent_of_order = models.DecimalField(
        _("percent of the order"),
        max_digits=5,
        decimal_places=2,
        default=Decimal("0"),
        validators=[MinValueValidator(0), MaxValueValidator(100)],
    )
    max_amount = models.DecimalField(_("at most"), **AMOUNT, null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=3, default=settings.DEFAULT_CURRENCY)
    reason = models.CharField(
        _("why"), max_length=255, help_text=_("Shown to the rep, e.g. “Staff attitude: respect and an apology first.”")
    )
    rank = models.PositiveSmallIntegerField(_("rank"), default=100, help_text=_("Lower comes first."))
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("recommendation rule")
        verbose_name_plural = _("recommendation rules")
        ordering = ["rank", "pk"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.currency and not is_known_currency(self.currency):
            raise ValidationError({"currency": _("Give a known ISO 4217 currency code, e.g. USD.")})


class ApologyTemplate(models.Model):
    """Words for a soft intervention, per language, that a rep sends from the case page.

    `{first_name}` and `{shop_name}` are filled in."""

    name = models.CharField(_("name"), max_length=100)
    language = models.CharField(_("language"), max_length=10, choices=LANGUAGES)
    incident_type = models.CharField(
        _("incident type"), max_length=20, choices=IncidentType.choices, blank=True, help_text=_("Empty: any.")
    )
    text = models.TextField(_("text"), max_length=2000)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("apology template")
        verbose_name_plural = _("apology templates")
        ordering = ["language", "incident_type", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.language})"

    def render(self, customer) -> str:
        first_name = customer.name.split(" ")[0] if customer else ""
        return self.text.replace("{first_name}", first_name).replace("{shop_name}", settings.SHOP_NAME)


class FollowUp(models.Model):
    """The message after a resolved case: thanks, and "was your problem solved?".

    Due in the database; the beat task hands due ones to the delivery outbox. The
    survey link carries a signed token naming this row; answering sets `answered_at`
    with a conditional update, so a link works once.
    """

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("Scheduled")
        SENT = "sent", _("Sent")
        ANSWERED = "answered", _("Answered")
        EXPIRED = "expired", _("No answer")
        SKIPPED = "skipped", _("Skipped")

    id = models.UUIDField(_("ID"), primary_key=True, default=uuid.uuid4, editable=False)
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="follow_ups", verbose_name=_("case"))
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="follow_ups", verbose_name=_("customer")
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.SCHEDULED)
    # What the case got in the round this follow-up asks about (the case's intervention
    # when it was resolved). A reopened case may get something else next round; its
    # answers are credited to what was actually tried. db_default for COPY-loaded rows.
    intervention = models.CharField(
        _("intervention"), max_length=15, choices=Intervention.choices, blank=True, default="", db_default=""
    )
    due_at = models.DateTimeField(_("due at"))
    expires_at = models.DateTimeField(_("expires at"), help_text=_("After this the survey link no longer works."))
    delivery = models.OneToOneField(
        "delivery.Delivery",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="follow_up",
        verbose_name=_("delivery"),
    )
    skip_reason = models.CharField(_("skip reason"), max_length=100, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)
    solved = models.BooleanField(_("solved"), null=True, blank=True)
    csat = models.PositiveSmallIntegerField(
        _("satisfaction"), null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    comment = models.TextField(_("comment"), blank=True, max_length=2000)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("follow-up")
        verbose_name_plural = _("follow-ups")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["due_at"], name="follow_up_due_idx", condition=Q(status="scheduled")),
            models.Index(fields=["expires_at"], name="follow_up_open_idx", condition=Q(status="sent")),
            models.Index(fields=["customer", "sent_at"]),
            # Answers since the last rollup refresh (reporting.services).
            models.Index(fields=["answered_at"], name="follow_up_answered_idx", condition=Q(answered_at__isnull=False)),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(csat__gte=1, csat__lte=5) | Q(csat=None), name="csat_1_to_5"),
        ]

    def __str__(self) -> str:
        return f"{self.case} ({self.get_status_display()})"


class AutoRule(models.Model):
    """Event type + condition → an offer for each affected customer, as the system,
    within a total budget and a per-customer cap, while active."""

    class Operator(models.TextChoices):
        ANY = "", _("always")
        GTE = ">=", "≥"
        GT = ">", ">"
        LTE = "<=", "≤"
        LT = "<", "<"
        EQ = "==", "="

    name = models.CharField(_("name"), max_length=100)
    event_type = models.CharField(_("event type"), max_length=50, db_index=True)
    condition_field = models.CharField(
        _("field"), max_length=50, blank=True, help_text=_("A field of the event's data, e.g. delay_minutes.")
    )
    condition_operator = models.CharField(
        _("operator"), max_length=2, choices=Operator.choices, blank=True, default=Operator.ANY
    )
    condition_value = models.CharField(_("value"), max_length=100, blank=True)
    offer = models.ForeignKey("coupons.Offer", on_delete=models.PROTECT, related_name="+", verbose_name=_("offer"))
    reason_code = models.ForeignKey(
        "appease.ReasonCode", on_delete=models.PROTECT, related_name="+", verbose_name=_("reason code")
    )
    budget_amount = models.DecimalField(_("total budget"), **AMOUNT, help_text=_("In the offer's currency, at cost."))
    spent_amount = models.DecimalField(_("spent"), **AMOUNT, default=Decimal("0"), editable=False)
    issued_count = models.PositiveIntegerField(_("issued"), default=0, editable=False)
    per_customer_cap = models.PositiveSmallIntegerField(
        _("per customer"), default=1, help_text=_("At most this many from this rule to one customer.")
    )
    active_from = models.DateTimeField(_("active from"), null=True, blank=True)
    active_until = models.DateTimeField(_("active until"), null=True, blank=True)
    is_paused = models.BooleanField(_("paused"), default=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("automatic appeasement rule")
        verbose_name_plural = _("automatic appeasement rules")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(spent_amount__lte=models.F("budget_amount")), name="auto_rule_within_budget"
            ),
            models.CheckConstraint(condition=Q(budget_amount__gte=0), name="auto_rule_budget_non_negative"),
        ]

    def __str__(self) -> str:
        return self.name

    ORDERING = (Operator.GTE, Operator.GT, Operator.LTE, Operator.LT)

    def clean(self) -> None:
        """A condition that can never be read the way it is written is refused, field by
        field, instead of silently never (or always) matching."""
        errors = {}
        field, operator, value = self.condition_field.strip(), self.condition_operator, self.condition_value.strip()
        if operator and not field:
            errors["condition_field"] = _("Name the event field the operator compares, e.g. delay_minutes.")
        if field and not operator:
            errors["condition_operator"] = _("Choose how to compare the field, or clear the field.")
        if operator in self.ORDERING:
            try:
                number = Decimal(value)
            except InvalidOperation:
                number = None
            if number is None or not number.is_finite():
                errors["condition_value"] = _("Give a number to compare with, e.g. 180.")
        elif operator == self.Operator.EQ and not value:
            errors["condition_value"] = _("Give the value to compare with.")
        if self.active_from and self.active_until and self.active_until <= self.active_from:
            errors["active_until"] = _("The end of the active window must be after its start.")
        if errors:
            raise ValidationError(errors)


class MerchantEvent(models.Model):
    """An event from the merchant's systems. (merchant, event id) is unique: the same
    event twice has no second effect."""

    merchant = models.ForeignKey(
        "coupons.Merchant", on_delete=models.PROTECT, related_name="events", verbose_name=_("merchant")
    )
    event_id = models.CharField(_("event id"), max_length=100)
    event_type = models.CharField(_("event type"), max_length=50)
    data = models.JSONField(_("data"), default=dict)
    occurred_at = models.DateTimeField(_("occurred at"), null=True, blank=True)
    received_at = models.DateTimeField(_("received at"), auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)
    result = models.JSONField(_("result"), default=dict, blank=True)

    class Meta:
        verbose_name = _("merchant event")
        verbose_name_plural = _("merchant events")
        ordering = ["-received_at"]
        constraints = [models.UniqueConstraint(fields=["merchant", "event_id"], name="one_event_per_id")]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id}"
