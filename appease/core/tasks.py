"""The kernel's housekeeping, run by beat."""

from celery import shared_task
from django.core.management import call_command

from appease.core.idempotency import idempotency_keys_purge
from appease.core.privacy import personal_data_expire
from appease.core.ratelimit import failure_counters_purge


@shared_task
def idempotency_keys_purge_task() -> int:
    return idempotency_keys_purge()


@shared_task
def failure_counters_purge_task() -> int:
    return failure_counters_purge()


@shared_task(time_limit=3600, soft_time_limit=3540)
def personal_data_expire_task() -> dict:
    return personal_data_expire()


@shared_task(time_limit=600, soft_time_limit=540)
def sessions_clear_task() -> None:
    """Expired sessions out of the database (Django's `clearsessions`), every night."""
    call_command("clearsessions")
