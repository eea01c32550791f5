"""Intake: what a customer says becomes feedback and, when it matters, a case.

Every path (the widget and API, the survey page, a rep logging a call, a merchant
event) goes through `feedback_submit`: one transaction, so nothing is half-saved.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from phonenumber_field.phonenumber import PhoneNumber, to_python

from appease.core.context import Actor
from appease.delivery.models import Channel
from appease.issuance.models import Customer, CustomerOrder, IncidentType
from appease.issuance.services.customers import customer_create
from feedback.events import case_feedback_event, case_opened_event
from feedback.models import Case, Feedback, FeedbackSite, IncidentProfile, PriorityLevel
from feedback.services.scoring import age_reason, level_for, past_incidents, priority_score
from feedback.services.sla import due_times, rises, tightened_targets
from feedback.services.triage import language_for, triage
from feedback.services.webhooks import case_webhook_emit

# Sources whose feedback must name someone we can answer.
ANSWERABLE = (Case.Source.WIDGET, Case.Source.API)


@dataclass(frozen=True)
class CustomerRef:
    """How the caller names the customer; any one identifier is enough."""

    email: str = ""
    phone: str = ""
    external_id: str = ""
    name: str = ""

    def __bool__(self) -> bool:
        return bool(self.email or self.phone or self.external_id)


def customer_find_or_create(
    *, actor: Actor, ref: CustomerRef, order_reference: str = "", language: str = "", currency: str = ""
) -> Customer | None:
    """The customer these identifiers name (external id, email, phone, then order), or a
    new one when we have never met them (paying in `currency`, when given: the currency
    of the order they were first met by). None when there is nothing to go on."""
    lookups = [("external_id", ref.external_id), ("email__iexact", ref.email), ("phone", ref.phone)]
    for field, value in lookups:
        if value:
            customer = Customer.objects.filter(**{field: value}).order_by("pk").first()
            if customer is not None:
                return customer
    if order_reference:
        order = CustomerOrder.objects.select_related("customer").filter(reference=order_reference).first()
        if order is not None:
            return order.customer
    if not ref:
        return None
    name = ref.name or (ref.email.split("@")[0] if ref.email else "") or ref.phone or ref.external_id
    return customer_create(
        actor=actor,
        name=name[:200],
        email=ref.email,
        phone=ref.phone,
        external_id=ref.external_id or None,
        # Known only by the shop's id: no preferred channel, and nobody to message yet.
        preferred_channel=Channel.EMAIL if ref.email else Channel.SMS if ref.phone else "",
        language=language or "en",
        **({"currency": currency} if currency else {}),
    )


def _text(value) -> str:
    return "" if value is None else str(value).strip()


def _phone(value: str) -> str:
    """E.164 when the number parses (how customers' phones are stored), else as given."""
    number = to_python(value)
    return str(number) if isinstance(number, PhoneNumber) and number.is_valid() else value


def customer_ref_parse(item: dict) -> CustomerRef:
    """How a merchant names a customer (`{email, phone, external_id, name}`, an event's
    customer or an import's row), as a `CustomerRef`; check it with `customer_ref_errors`."""
    return CustomerRef(
        email=_text(item.get("email")),
        phone=_phone(_text(item.get("phone"))),
        external_id=_text(item.get("external_id")),
        name=_text(item.get("name"))[:200],
    )


def customer_ref_errors(item) -> dict[str, str]:
    """What is wrong with how a merchant names one customer, per field ({} when nothing)."""
    if not isinstance(item, dict):
        return {"": _("Each customer must be an object.")}
    errors = {}
    for key in ("email", "phone", "external_id", "name"):
        value = item.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, str | int)):
            errors[key] = _("Give a text value.")
    email, phone, external_id = (_text(item.get(key)) for key in ("email", "phone", "external_id"))
    if "email" not in errors and email:
        try:
            EmailValidator()(email)
        except ValidationError:
            errors["email"] = _("Enter a valid email address.")
        if len(email) > 254:
            errors["email"] = _("Enter a valid email address.")
    if "phone" not in errors and phone:
        number = to_python(phone)
        if not (isinstance(number, PhoneNumber) and number.is_valid()):
            errors["phone"] = _("Enter a valid phone number in international form, e.g. +34 612 345 678.")
    if "external_id" not in errors and len(external_id) > 100:
        errors["external_id"] = _("At most 100 characters.")
    if not errors and not (email or phone or external_id):
        errors[""] = _("This customer needs an email, a phone number or an external id.")
    return errors


NO_CONTACT = gettext_lazy("Give an email, a phone number or a customer id, so we can answer.")


def _validate(
    *, rating, nps, text, incident_type, channel, ref: CustomerRef, customer, source, order_reference
) -> None:
    errors: dict[str, str] = {}
    if rating is not None and not 1 <= rating <= 5:
        errors["rating"] = _("Give a rating from 1 to 5.")
    if nps is not None and not 0 <= nps <= 10:
        errors["nps"] = _("Give a score from 0 to 10.")
    if rating is None and nps is None and not text.strip():
        errors["text"] = _("Tell us what happened, or give a rating.")
    if len(text) > 4000:
        errors["text"] = _("Keep it under 4,000 characters.")
    if incident_type and incident_type not in IncidentType.values:
        errors["incident_type"] = _("Choose one of: %(types)s.") % {"types": ", ".join(IncidentType.values)}
    if channel and channel not in Channel.values:
        errors["channel"] = _("Choose one of: %(channels)s.") % {"channels": ", ".join(Channel.values)}
    if customer is None and not ref and not order_reference and source in ANSWERABLE:
        errors["email"] = str(NO_CONTACT)
    if errors:
        raise ValidationError(errors)


def _disposition(*, rating, nps, incident_type, anger, level: PriorityLevel | None) -> str:
    """Happy customers are thanked, not queued (FEEDBACK_PRAISE_*): a high rating or
    NPS, no incident type (named or inferred from the text) and no anger. Otherwise the
    priority level decides."""
    praise = (rating is not None and rating >= settings.FEEDBACK_PRAISE_RATING) or (
        nps is not None and nps >= settings.FEEDBACK_PRAISE_NPS
    )
    if praise and not incident_type and (anger or 0) < settings.FEEDBACK_PRAISE_MAX_ANGER:
        return Feedback.Disposition.ACKNOWLEDGED
    if level is None or not level.creates_case:
        return Feedback.Disposition.ACKNOWLEDGED
    if level.priority == "critical":
        return Feedback.Disposition.CRITICAL
    return Feedback.Disposition.QUEUED


def feedback_submit(
    *,
    actor: Actor,
    source: str,
    site: FeedbackSite | None = None,
    customer: Customer | None = None,
    ref: CustomerRef = CustomerRef(),
    rating: int | None = None,
    nps: int | None = None,
    text: str = "",
    incident_type: str = "",
    order_reference: str = "",
    channel: str = "",
    page_url: str = "",
    language: str = "",
    force_case: bool = False,
) -> Feedback:
    """Record feedback, triage it, and queue a case when the rules say so.

    `force_case`: a rep logging a call always gets a case. Feedback from a customer who
    already has an open case of the same incident type joins it.
    """
    text = text or ""
    _validate(
        rating=rating,
        nps=nps,
        text=text,
        incident_type=incident_type,
        channel=channel,
        ref=ref,
        customer=customer,
        source=source,
        order_reference=order_reference,
    )
    language = language_for(language or (site.default_language if site else ""))
    judged = triage(text=text, language=language, incident_type=incident_type)
    with transaction.atomic():
        if customer is None:
            customer = customer_find_or_create(actor=actor, ref=ref, order_reference=order_reference, language=language)
            if customer is None and source in ANSWERABLE:
                raise ValidationError({"email": str(NO_CONTACT)})
        if customer is not None:
            # One intake per customer at a time: the open-case check below holds.
            customer = Customer.objects.select_for_update().get(pk=customer.pk)
        now = timezone.now()
        joining = _open_case(customer, judged.incident_type)
        repeats = past_incidents(customer, exclude_case_id=joining.pk if joining else None, now=now)
        score = priority_score(
            incident_type=judged.incident_type,
            customer=customer,
            rating=rating,
            nps=nps,
            anger=judged.anger,
            past_incidents=repeats,
        )
        level = level_for(score.points)
        # "5 stars, but it arrived broken": an incident the keyword rules found is still
        # an incident, not praise.
        named = incident_type or (judged.incident_type if judged.inferred else "")
        disposition = _disposition(rating=rating, nps=nps, incident_type=named, anger=judged.anger, level=level)
        if force_case and disposition == Feedback.Disposition.ACKNOWLEDGED:
            disposition = Feedback.Disposition.QUEUED
        feedback = Feedback(
            site=site,
            source=source,
            customer=customer,
            rating=rating,
            nps=nps,
            text=text,
            incident_type=judged.incident_type if (incident_type or judged.inferred) else "",
            order_reference=order_reference,
            channel=channel,
            page_url=page_url,
            language=language,
            sentiment=judged.sentiment,
            anger=judged.anger,
            disposition=disposition,
            created_by=actor.user,
        )
        if disposition != Feedback.Disposition.ACKNOWLEDGED:
            feedback.case = _case_for(
                feedback=feedback,
                existing=joining,
                judged=judged,
                score=score,
                level=level,
                customer=customer,
                actor=actor,
                now=now,
            )
        feedback.full_clean(exclude=["case", "site", "customer", "created_by"])
        feedback.save()
        if feedback.case_id:
            case_feedback_event(case=feedback.case, actor=actor, feedback=feedback, text=text)
    return feedback


def _open_case(customer, incident_type: str) -> Case | None:
    """The customer's open case of this incident type: new feedback joins it."""
    if customer is None:
        return None
    return (
        Case.objects.select_for_update()
        .filter(customer=customer, incident_type=incident_type, status__in=Case.OPEN_STATUSES)
        .order_by("created_at")
        .first()
    )


def _case_for(*, feedback: Feedback, existing: Case | None, judged, score, level, customer, actor: Actor, now) -> Case:
    """The open case `existing`, its score raised if need be; else a new case."""
    if existing is not None:
        # The wait so far still counts, and the reasons keep adding up to the score.
        age = age_reason(existing.age_points, score.points)
        reasons = score.reasons + ([age] if age else [])
        points = sum(reason["points"] for reason in reasons)
        if points > existing.priority_score:
            existing.priority_score = points
            existing.score_reasons = reasons
            fields = ["priority_score", "score_reasons"]
            raised = level_for(points)
            if rises(existing.priority, raised):
                # A higher priority has tighter targets: counted from when the case (or
                # its round) began, never later than the ones it has.
                existing.priority = raised.priority
                changes = tightened_targets(existing, raised)
                for field, value in changes.items():
                    setattr(existing, field, value)
                fields += ["priority", *changes]
            existing.save(update_fields=fields)
        return existing
    first_due, resolution_due = due_times(level, now) if level else (None, None)
    subject = (feedback.text.strip().splitlines() or [""])[0][:120] or str(IncidentType(judged.incident_type).label)
    case = Case.objects.create(
        customer=customer,
        source=feedback.source,
        subject=subject,
        incident_type=judged.incident_type,
        incident_inferred=judged.inferred,
        order_reference=feedback.order_reference,
        channel=feedback.channel or (customer.preferred_channel if customer else ""),
        language=feedback.language,
        owner_team=_owner_team(judged.incident_type),
        sentiment=judged.sentiment,
        anger=judged.anger,
        priority=level.priority if level else "normal",
        priority_score=score.points,
        score_reasons=score.reasons,
        first_response_due_at=first_due,
        resolution_due_at=resolution_due,
        created_at=now,
    )
    case_opened_event(case=case, actor=actor, judged=judged)
    case_webhook_emit(type="case.opened", case=case)
    return case


def _owner_team(incident_type: str):
    profile = IncidentProfile.objects.select_related("owner_team").filter(incident_type=incident_type).first()
    return profile.owner_team if profile and profile.owner_team and profile.owner_team.is_active else None
