"""Closed-loop feedback: what customers say, the cases it becomes, and how each ends.

- `choices`: the shared vocabularies (`LANGUAGES`, `Intervention`, `Priority`).
- `triage`: `OwnerTeam`, `IncidentProfile`, `KeywordRule`, `PriorityLevel`, all edited
  by supervisors in the admin.
- `intake`: `FeedbackSite` and `Feedback`, from the widget, the API, surveys and reps.
- `cases`: `Case` and `CaseEvent`, the queue and each case's append-only timeline.
- `recommend`: `RecommendationRule` (which intervention fits which incident and
  customer) and `ApologyTemplate`.
- `surveys`: `FollowUp`, the message after resolution and the survey it carries.
- `automation`: `MerchantEvent` and `AutoRule`, events from the merchant's systems and
  the rules that appease automatically.
- `outcomes`: `AppeasementOutcome`, every appeasement as an intervention with an
  outcome, and `Experiment`, the randomised tests that teach the recommendations.

The modules are named after the services that write them (`feedback/services/`).
Import from here (`from feedback.models import Case`), not from the modules.
"""

from feedback.models.automation import AutoRule, MerchantEvent
from feedback.models.cases import Case, CaseEvent, case_event_summary, score_reason_text
from feedback.models.choices import LANGUAGES, Intervention, Priority
from feedback.models.intake import Feedback, FeedbackSite, _public_key
from feedback.models.outcomes import APOLOGY_ARM, AppeasementOutcome, Experiment, Segment, arm_key
from feedback.models.recommend import ApologyTemplate, RecommendationRule
from feedback.models.surveys import FollowUp
from feedback.models.triage import IncidentProfile, KeywordRule, OwnerTeam, PriorityLevel

__all__ = [
    "APOLOGY_ARM",
    "LANGUAGES",
    "ApologyTemplate",
    "AppeasementOutcome",
    "AutoRule",
    "Case",
    "CaseEvent",
    "Experiment",
    "Feedback",
    "FeedbackSite",
    "FollowUp",
    "IncidentProfile",
    "Intervention",
    "KeywordRule",
    "MerchantEvent",
    "OwnerTeam",
    "Priority",
    "PriorityLevel",
    "RecommendationRule",
    "Segment",
    "_public_key",  # named by migration 0001 (feedback.models._public_key)
    "arm_key",
    "case_event_summary",
    "score_reason_text",
]
