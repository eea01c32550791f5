from celery import shared_task

from feedback.services.automation import event_process, events_sweep
from feedback.services.digest import team_digests_send
from feedback.services.experiments import experiments_review
from feedback.services.scoring import cases_age
from feedback.services.sla import sla_breaches_escalate
from feedback.services.surveys import follow_ups_expire, follow_ups_send


# Processing is idempotent (one issuance per rule, event and customer, enforced by a
# unique constraint), so a redelivered message does no harm.
@shared_task(acks_late=True, reject_on_worker_lost=True, time_limit=600, soft_time_limit=540)
def event_process_task(event_id: int) -> dict:

    return event_process(event_id=event_id)


@shared_task(time_limit=60, soft_time_limit=50)
def events_sweep_task() -> int:

    return events_sweep()


@shared_task(time_limit=60, soft_time_limit=50)
def sla_breaches_escalate_task() -> int:

    return sla_breaches_escalate()


@shared_task(time_limit=60, soft_time_limit=50)
def cases_age_task() -> int:

    return cases_age()


@shared_task(time_limit=300, soft_time_limit=270)
def follow_ups_send_task() -> int:

    return follow_ups_send()


@shared_task(time_limit=300, soft_time_limit=270)
def follow_ups_expire_task() -> int:

    return follow_ups_expire()


@shared_task(time_limit=300, soft_time_limit=270)
def team_digests_send_task() -> int:

    return team_digests_send()


# Reviewing twice is harmless: an arm already stopped is skipped under the row's lock.
@shared_task(time_limit=120, soft_time_limit=100)
def experiments_review_task() -> int:

    return len(experiments_review())
