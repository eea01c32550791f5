from celery import shared_task

from appease.delivery.services import deliveries_sweep, delivery_send


# Sending is idempotent (the row is claimed with a conditional update), so the message
# may be acknowledged late and redelivered if the worker dies mid-send.
@shared_task(acks_late=True, reject_on_worker_lost=True, time_limit=90, soft_time_limit=60)
def delivery_send_task(delivery_id: str) -> str:
    return delivery_send(delivery_id=delivery_id)


@shared_task(time_limit=60, soft_time_limit=50)
def deliveries_sweep_task() -> int:
    return deliveries_sweep()
