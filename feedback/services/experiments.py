"""Randomised evidence with guardrails: the supervisors' experiments (docs/feedback.md,
"Experiments").

- `experiment_assign` draws, for one customer's incident, whether this appeasement is in
  the running experiment (its share, from the system's random source) and which arm the
  rep is asked to give (uniform, or Thompson sampling over the experiment's own answers),
  among the arms this rep may give this customer.
- The assignment travels from the page (or the API) to the give as a signed token
  (`assignment_token`); the issuance service hands it to `experiment_give_resolve`, a
  listener registered before the outcome's, which checks it and writes the experiment,
  the assigned arm and the override's reason into the context the outcome row is made
  from. Giving another arm without a reason is refused, field by field, nothing given.
- `experiments_review` (beat) stops an arm that is clearly worse than the best and an
  experiment with one arm left, audited, supervisors told once.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from appease.core.audit import audit_event_record, snapshot
from appease.core.context import SYSTEM, Actor
from appease.core.readers import readers_by_locale, reading_as
from appease.core.roles import SUPERVISOR, role_emails
from appease.issuance.models import Customer, Issuance
from appease.issuance.selectors import budget_for, offers_available_to, policy_for
from coupons.models import Offer
from feedback.models import APOLOGY_ARM, AppeasementOutcome, Experiment, arm_key
from feedback.services.estimator import Estimate, probability_worse, thompson_pick

logger = logging.getLogger(__name__)

TOKEN_SALT = "feedback.experiment-assignment"  # noqa: S105 (a salt's name, not a secret)
# The system's random source (os.urandom): a rep cannot predict or replay the draw.
_system_random = random.SystemRandom()


@dataclass(frozen=True)
class Assignment:
    """This customer's incident is in `experiment`; the rep is asked to give `arm`
    (`offer:<id>` or `apology`), with `offer` the one to give (an apology offer for the
    apology arm)."""

    experiment: Experiment
    arm: str
    offer: Offer
    customer_id: int
    incident_type: str

    @property
    def token(self) -> str:
        return assignment_token(self)


def experiment_arms(experiment: Experiment) -> list[str]:
    """Every arm of the experiment, stopped ones included: its offers, then the holdout."""
    arms = [arm_key(offer) for offer in experiment.offers.all()]
    if experiment.apology_arm and APOLOGY_ARM not in arms:
        arms.append(APOLOGY_ARM)
    return list(dict.fromkeys(arms))


def experiment_live_arms(experiment: Experiment) -> list[str]:
    stopped = set(experiment.stopped_arms or [])
    return [arm for arm in experiment_arms(experiment) if arm not in stopped]


def _within_limits(user, offer: Offer) -> bool:
    """The rep's static limits: a hard offer needs a budget in its currency and a face
    value under the per-issuance cap (budgets left today are the give's to check)."""
    if offer.is_soft:
        return True
    policy = policy_for(user)
    if policy is None:
        return True
    budget = budget_for(policy, offer.currency)
    if budget is None:
        return False
    cap = budget.max_face_per_issuance_amount
    return cap is None or offer.value_amount <= cap


def arms_for(*, experiment: Experiment, customer: Customer, user) -> dict[str, Offer]:
    """{arm: the offer to give} for the live arms this rep may give this customer: active,
    in the customer's currency (or soft), allowed by the rep's policy, within its limits."""
    available = list(offers_available_to(user, customer=customer))
    live = set(experiment_live_arms(experiment))
    found: dict[str, Offer] = {}
    for offer in experiment.offers.all():
        arm = arm_key(offer)
        if arm in live and any(o.pk == offer.pk for o in available) and _within_limits(user, offer):
            found[arm] = offer
    if APOLOGY_ARM in live and APOLOGY_ARM not in found:
        apology = next((o for o in available if o.kind == Offer.Kind.APOLOGY), None)
        if apology is not None:
            found[APOLOGY_ARM] = apology
    return found


def arm_tallies(experiment: Experiment) -> dict[str, tuple[int, int]]:
    """{assigned arm: (answered, solved)} over the experiment's answered outcomes, counted
    by the arm assigned (intention to treat: an override stays with the arm it was
    randomised to, so the comparison stays randomised)."""
    rows = (
        AppeasementOutcome.objects.filter(experiment=experiment, solved__isnull=False)
        .values("assigned_arm")
        .annotate(n=Count("pk"), solved=Count("pk", filter=Q(solved=True)))
    )
    return {row["assigned_arm"]: (row["n"], row["solved"]) for row in rows}


def arm_posterior(arm: str, answered: int, solved: int) -> Estimate:
    """The arm's solve rate on a uniform prior, Beta(1 + solved, 1 + not solved): the
    experiment's own answers and nothing else."""
    return Estimate(arm=arm, alpha=1.0 + solved, beta=1.0 + answered - solved, n_segment=answered, n_incident=answered)


def experiment_assign(
    *, customer: Customer | None, incident_type: str, user, rng: random.Random | None = None
) -> Assignment | None:
    """Whether this appeasement is in the incident type's running experiment, and which
    arm: None when there is no experiment, the share draw says no, or fewer than two arms
    are left that this rep may give this customer. `rng` is for tests (seeded); by
    default the system's random source."""
    if customer is None or customer.pk is None or not incident_type:
        return None
    experiment = (
        Experiment.objects.filter(is_active=True, incident_type=incident_type).prefetch_related("offers").first()
    )
    if experiment is None:
        return None
    rng = rng or _system_random
    if rng.random() * 100 >= experiment.share_percent:
        return None
    eligible = arms_for(experiment=experiment, customer=customer, user=user)
    if len(eligible) < 2:
        return None  # one arm is no comparison: the rep chooses as usual
    arms = sorted(eligible)
    if experiment.method == Experiment.Method.THOMPSON:
        tallies = arm_tallies(experiment)
        posteriors = {arm: arm_posterior(arm, *tallies.get(arm, (0, 0))) for arm in arms}
        arm = thompson_pick(posteriors, rng=rng)
    else:
        arm = rng.choice(arms)
    return Assignment(
        experiment=experiment, arm=arm, offer=eligible[arm], customer_id=customer.pk, incident_type=incident_type
    )


def assignment_token(assignment: Assignment) -> str:
    """Signed (SECRET_KEY, salted) and timestamped: the customer, the incident type, the
    experiment and the arm. The client carries it; it cannot change a word of it."""
    return signing.dumps(
        {
            "c": assignment.customer_id,
            "i": assignment.incident_type,
            "e": assignment.experiment.pk,
            "a": assignment.arm,
            "o": assignment.offer.pk,
        },
        salt=TOKEN_SALT,
        compress=True,
    )


def assignment_from_token(token: str, *, customer_id: int, incident_type: str) -> dict:
    """The assignment a token names, for this customer and incident type; a field error
    on `experiment_token` if it was altered, has expired or is for another."""
    try:
        data = signing.loads(token, salt=TOKEN_SALT, max_age=settings.EXPERIMENT_TOKEN_MAX_AGE)
    except signing.SignatureExpired:
        raise ValidationError(
            {"experiment_token": _("This experiment assignment has expired: reload the page to get a fresh one.")}
        ) from None
    except signing.BadSignature:
        raise ValidationError({"experiment_token": _("This experiment assignment is not valid.")}) from None
    if not isinstance(data, dict) or data.get("c") != customer_id or data.get("i") != incident_type:
        raise ValidationError(
            {"experiment_token": _("This experiment assignment is for another customer or incident type.")}
        )
    return data


def experiment_give_check(
    *, token: str, override_reason: str, customer_id: int, incident_type: str, given_arm: str
) -> dict:
    """The outcome's context for a give under an assignment: `experiment_id`,
    `assigned_arm`, `override_reason`. Giving another arm needs a reason (a field error
    on `override_reason` otherwise). An experiment stopped meanwhile takes nothing: the
    give goes ahead outside it."""
    data = assignment_from_token(token, customer_id=customer_id, incident_type=incident_type)
    reason = (override_reason or "").strip()
    if len(reason) > 255:
        raise ValidationError({"override_reason": _("Keep the reason under 255 characters.")})
    if not Experiment.objects.filter(pk=data["e"], is_active=True).exists():
        return {}
    if given_arm != data["a"]:
        if not reason:
            raise ValidationError(
                {
                    "override_reason": _(
                        "This customer is assigned another offer by the experiment: "
                        "give it, or say why you give something else."
                    )
                }
            )
    else:
        reason = ""  # given as assigned: nothing to explain
    return {"experiment_id": data["e"], "assigned_arm": data["a"], "override_reason": reason}


def experiment_context(data) -> dict:
    """The give's context from a form or an API body: the assignment's token and the
    override's reason, checked by `experiment_give_resolve` in the give's transaction."""
    token = str(data.get("experiment_token") or "")
    if not token:
        return {}
    return {"experiment_token": token, "override_reason": str(data.get("override_reason") or "")}


def experiment_give_resolve(issuance: Issuance, context: dict) -> None:
    """The issuance service's listener, registered before the outcome's: a give that
    carries an `experiment_token` is checked, and the context gets the experiment, the
    assigned arm and the reason of an override. Raising rolls the give back."""
    token = context.pop("experiment_token", "") if context else ""
    reason = context.pop("override_reason", "") if context else ""
    if not token:
        return
    incident_type = issuance.case.incident_type if issuance.case_id else issuance.reason_code.incident_type
    context.update(
        experiment_give_check(
            token=token,
            override_reason=reason,
            customer_id=issuance.customer_id,
            incident_type=incident_type,
            given_arm=arm_key(issuance.offer),
        )
    )


# --- Supervisors: start and stop --------------------------------------------------------


@transaction.atomic(durable=True)
def experiment_start(*, actor: Actor, experiment_id: int) -> Experiment:
    """Run it again (stopped arms stay stopped); refused while another runs for its incident type."""
    experiment = Experiment.objects.select_for_update().get(pk=experiment_id)
    if experiment.is_active:
        return experiment
    if Experiment.objects.filter(is_active=True, incident_type=experiment.incident_type).exists():
        raise ValidationError(
            {"incident_type": _("Another experiment is running for this incident type: stop it first.")}
        )
    if len(experiment_live_arms(experiment)) < 2:
        raise ValidationError({"offers": _("An experiment needs at least two arms that are not stopped.")})
    before = snapshot(experiment, ["is_active", "stopped_at"])
    experiment.is_active, experiment.stopped_at = True, None
    experiment.save(update_fields=["is_active", "stopped_at"])
    audit_event_record(
        actor=actor, action="experiment.started", obj=experiment, before=before, after={"is_active": True}
    )
    return experiment


def _stop(*, actor: Actor, experiment: Experiment, reason: str, now: datetime) -> bool:
    won = Experiment.objects.filter(pk=experiment.pk, is_active=True).update(is_active=False, stopped_at=now)
    if won:
        audit_event_record(
            actor=actor,
            action="experiment.stopped",
            obj=experiment,
            before={"is_active": True},
            after={"is_active": False, "reason": reason, "stopped_at": now.isoformat()},
        )
    return bool(won)


@transaction.atomic(durable=True)
def experiment_stop(*, actor: Actor, experiment_id: int, now: datetime | None = None) -> Experiment:
    """A supervisor stops it: nothing more is assigned; its outcomes stay for the report."""
    experiment = Experiment.objects.get(pk=experiment_id)
    _stop(actor=actor, experiment=experiment, reason="supervisor", now=now or timezone.now())
    experiment.refresh_from_db()
    return experiment


# --- Guardrails -------------------------------------------------------------------------


def _worse_arms(experiment: Experiment) -> list[dict]:
    """The live arms clearly worse than the best live arm: each with at least
    EXPERIMENT_GUARDRAIL_MIN_ANSWERS answers and P(worse) at least
    EXPERIMENT_GUARDRAIL_PROBABILITY."""
    minimum = settings.EXPERIMENT_GUARDRAIL_MIN_ANSWERS
    tallies = arm_tallies(experiment)
    posteriors = {
        arm: arm_posterior(arm, *tallies[arm])
        for arm in experiment_live_arms(experiment)
        if tallies.get(arm, (0, 0))[0] >= minimum
    }
    if len(posteriors) < 2:
        return []
    best = max(posteriors.values(), key=lambda e: (e.mean, e.arm))
    worse = []
    for arm, estimate in sorted(posteriors.items()):
        if arm == best.arm:
            continue
        probability = probability_worse(estimate, best)
        if probability >= settings.EXPERIMENT_GUARDRAIL_PROBABILITY:
            worse.append(
                {"arm": arm, "best": best.arm, "probability": round(probability, 4), "answered": tallies[arm][0]}
            )
    return worse


def experiments_review(*, now: datetime | None = None) -> list[dict]:
    """Beat, every EXPERIMENT_REVIEW_MINUTES: stop each clearly worse arm (audited, the
    supervisors emailed once: only the run whose locked check finds the arm still live
    stops it) and each experiment left with one arm. Returns what was stopped."""
    now = now or timezone.now()
    stopped: list[dict] = []
    for experiment in Experiment.objects.filter(is_active=True).prefetch_related("offers"):
        for found in _worse_arms(experiment):
            ended = False
            with transaction.atomic():
                # Locked: stopped_arms is a list read and written back; two reviews at
                # once must not both add the arm, nor both email.
                locked = Experiment.objects.select_for_update().get(pk=experiment.pk)
                if not locked.is_active or found["arm"] in (locked.stopped_arms or []):
                    continue
                before = snapshot(locked, ["stopped_arms"])
                locked.stopped_arms = [*(locked.stopped_arms or []), found["arm"]]
                locked.save(update_fields=["stopped_arms"])
                audit_event_record(
                    actor=SYSTEM,
                    action="experiment.arm_stopped",
                    obj=locked,
                    before=before,
                    after={"stopped_arms": locked.stopped_arms, **found},
                )
                ended = len(experiment_live_arms(locked)) < 2 and _stop(
                    actor=SYSTEM, experiment=locked, reason="one_arm_left", now=now
                )
                event = {"experiment_id": locked.pk, **found, "experiment_stopped": bool(ended)}
                transaction.on_commit(lambda event=event, name=locked.name: _supervisors_tell(name, event))
                stopped.append(event)
            if ended:
                break
    return stopped


def arm_label(arm: str) -> str:
    """An arm in words: the offer's name, or "Apology only"."""
    if arm == APOLOGY_ARM:
        return _("Apology only")
    offer_id = arm.removeprefix("offer:")
    offer = Offer.objects.filter(pk=offer_id).first() if offer_id.isdigit() else None
    return offer.name if offer is not None else arm


def _supervisors_tell(name: str, event: dict) -> None:
    """One email per stop, in each supervisor's language and time zone."""
    recipients = role_emails(SUPERVISOR)
    for (language, zone), emails in readers_by_locale(recipients).items():
        with reading_as(language, zone):
            body = _(
                "The experiment “%(name)s” stopped the arm “%(arm)s”: it solves clearly less often than "
                "“%(best)s” (probability %(probability)s%%, %(answered)d answers)."
            ) % {
                "name": name,
                "arm": arm_label(event["arm"]),
                "best": arm_label(event["best"]),
                "probability": f"{event['probability'] * 100:.1f}",
                "answered": event["answered"],
            }
            if event["experiment_stopped"]:
                body += "\n\n" + _("Only one arm is left, so the experiment has stopped.")
            body += "\n\n" + f"{settings.PUBLIC_URL}/admin/reports/experiments/{event['experiment_id']}/"
            try:
                send_mail(
                    _("Experiment “%(name)s”: an arm was stopped") % {"name": name},
                    body,
                    settings.DEFAULT_FROM_EMAIL,
                    emails,
                )
            except Exception:  # the stop stands; the report shows it
                logger.exception("experiment stop email failed")
