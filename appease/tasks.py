from celery import shared_task

from appease.services.idempotency import idempotency_keys_purge


@shared_task
def idempotency_keys_purge_task() -> int:
    return idempotency_keys_purge()


@shared_task
def approvals_escalate_task() -> int:
    from appease.services.issuance import approvals_escalate

    return approvals_escalate()
