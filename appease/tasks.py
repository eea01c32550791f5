from celery import shared_task

from appease.services.idempotency import idempotency_keys_purge


@shared_task
def idempotency_keys_purge_task() -> int:
    return idempotency_keys_purge()


@shared_task
def approvals_escalate_task() -> int:
    from appease.services.issuance import approvals_escalate

    return approvals_escalate()


# Sending is idempotent (the row is claimed with a conditional update), so the message
# may be acknowledged late and redelivered if the worker dies mid-send.
@shared_task(acks_late=True, reject_on_worker_lost=True, time_limit=90, soft_time_limit=60)
def delivery_send_task(delivery_id: str) -> str:
    from appease.services.delivery import delivery_send

    return delivery_send(delivery_id=delivery_id)


@shared_task(time_limit=60, soft_time_limit=50)
def deliveries_sweep_task() -> int:
    from appease.services.delivery import deliveries_sweep

    return deliveries_sweep()


@shared_task(time_limit=3600, soft_time_limit=3540)
def personal_data_expire_task() -> dict:
    from appease.services.privacy import personal_data_expire

    return personal_data_expire()


@shared_task(time_limit=600, soft_time_limit=540)
def sessions_clear_task() -> None:
    """Expired sessions out of the database (Django's `clearsessions`), every night."""
    from django.core.management import call_command

    call_command("clearsessions")
