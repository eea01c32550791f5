from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FeedbackConfig(AppConfig):
    """Closed-loop feedback: the case queue, follow-ups, automatic appeasement rules."""

    name = "feedback"
    verbose_name = _("Feedback")
