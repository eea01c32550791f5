from celery import shared_task

from appease.issuance.services.issuance import approvals_escalate


@shared_task
def approvals_escalate_task() -> int:
    return approvals_escalate()
