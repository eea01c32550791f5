"""The rep's side of an experiment: the assignment shown in the customer panel's give
form (a fragment the panel loads when the rep chooses the reason, and the context the
panel's own views ask for through `appease.issuance.panel`), and on the case page."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from appease.issuance.models import Customer, ReasonCode
from appease.issuance.sidebar_auth import sidebar_authentication
from appease.issuance.views import staff_required
from coupons.models import Offer
from feedback.models import Experiment
from feedback.services.experiments import assignment_from_token, experiment_assign


def _shown(*, token: str, offer: Offer | None, experiment: Experiment | None) -> dict | None:
    if offer is None or experiment is None:
        return None
    return {"token": token, "offer": offer, "experiment": experiment}


def assignment_for(*, user, customer: Customer, incident_type: str, token: str = "") -> dict | None:
    """What the give form shows: the assignment a valid token already names for this
    customer and incident type (the rep changed the reason back, or the form came back
    with an error: no new draw), else a fresh draw; None outside any experiment."""
    if not incident_type:
        return None
    if token:
        try:
            data = assignment_from_token(token, customer_id=customer.pk, incident_type=incident_type)
        except ValidationError:
            data = None
        if data is not None:
            experiment = Experiment.objects.filter(pk=data["e"], is_active=True).first()
            return _shown(token=token, offer=Offer.objects.filter(pk=data["o"]).first(), experiment=experiment)
    assignment = experiment_assign(customer=customer, incident_type=incident_type, user=user)
    if assignment is None:
        return None
    return _shown(token=assignment.token, offer=assignment.offer, experiment=assignment.experiment)


def _incident_of(reason_code_id) -> str:
    if not str(reason_code_id or "").isdigit():
        return ""
    return (
        ReasonCode.objects.filter(pk=reason_code_id, is_active=True).values_list("incident_type", flat=True).first()
        or ""
    )


def experiment_panel_context(*, request, customer: Customer, form) -> dict:
    """The customer panel's extension (registered in feedback's `ready()`): the
    assignment for the reason the form holds, and the override's error if any."""
    data = form.data if form.is_bound else {}
    shown = assignment_for(
        user=request.user,
        customer=customer,
        incident_type=_incident_of(data.get("reason_code")),
        token=data.get("experiment_token", ""),
    )
    errors = form.errors if form.is_bound else {}
    return {
        "experiment": shown,
        "override_reason": data.get("override_reason", "") if shown else "",
        "experiment_errors": [*errors.get("override_reason", []), *errors.get("experiment_token", [])],
    }


@sidebar_authentication  # the helpdesk sidebar's panel asks here too
@require_GET
@staff_required
def assignment(request, customer_id: int):
    """The panel's fragment, fetched when the rep chooses the reason."""
    customer = get_object_or_404(Customer, pk=customer_id)
    shown = assignment_for(
        user=request.user,
        customer=customer,
        incident_type=_incident_of(request.GET.get("reason_code")),
        token=request.GET.get("experiment_token", ""),
    )
    return render(request, "feedback/_experiment_assignment.html", {"customer": customer, "experiment": shown})
