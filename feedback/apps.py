from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

from appease.delivery.kinds import outcome_listener_register, register


class FeedbackConfig(AppConfig):
    """Closed-loop feedback: the case queue, follow-ups, automatic appeasement rules."""

    name = "feedback"
    verbose_name = _("Feedback")

    def ready(self) -> None:
        from corsheaders.signals import check_request_enabled
        from django.db.models.signals import post_migrate

        from appease.issuance.panel import panel_extension_register
        from appease.issuance.services.issuance import issuance_listener_register
        from coupons.services.redemption import redemption_listener_register
        from feedback.apis import intake_cors_enabled
        from feedback.defaults import defaults_restore
        from feedback.experiment_views import experiment_panel_context
        from feedback.messages import follow_up_compose
        from feedback.privacy import personal_data_register
        from feedback.services import triage  # noqa: F401  (connects its cache-clearing signals)
        from feedback.services.experiments import experiment_give_resolve
        from feedback.services.outcomes import outcome_record, outcome_redemption_record
        from feedback.services.surveys import appeasement_delivered

        check_request_enabled.connect(intake_cors_enabled, dispatch_uid="feedback-cors")
        post_migrate.connect(defaults_restore, sender=self, dispatch_uid="feedback-defaults")
        register("follow_up", compose=follow_up_compose)  # the outbox's follow-ups: nothing to do on outcomes
        personal_data_register()
        # First the experiment's check: it puts the assignment in the context the outcome reads.
        issuance_listener_register(experiment_give_resolve)
        panel_extension_register(experiment_panel_context)  # the panel shows an experiment's assignment
        issuance_listener_register(outcome_record)  # every appeasement is an intervention with an outcome
        outcome_listener_register(appeasement_delivered)  # delivered outside a case: its follow-up is planned
        redemption_listener_register(outcome_redemption_record)  # its code redeemed: the outcome says so
