"""Celery tasks: each takes ids, calls one service, and is safe to run twice."""

from celery import shared_task

from coupons.services.alerts import inventory_low_alert_send
from coupons.services.inventory import code_batch_generate, code_batches_sweep, codes_expire


@shared_task(acks_late=True, reject_on_worker_lost=True)
def code_batch_generate_task(batch_id: int) -> None:
    code_batch_generate(batch_id=batch_id)


@shared_task
def code_batches_sweep_task() -> None:
    code_batches_sweep()


@shared_task
def codes_expire_task() -> int:
    return codes_expire()


@shared_task
def inventory_low_alert_task(offer_id: int) -> int:
    return inventory_low_alert_send(offer_id=offer_id)
