from celery import shared_task

from reporting.digest import supervisor_digest_send
from reporting.services import anomaly_scans_run, rollups_refresh


@shared_task(time_limit=300, soft_time_limit=270)
def supervisor_digest_send_task() -> int:

    return supervisor_digest_send()


@shared_task(time_limit=600, soft_time_limit=570)
def rollups_refresh_task() -> int:

    state = rollups_refresh()
    return state.days_rewritten if state else 0


@shared_task(time_limit=3600, soft_time_limit=3540)
def rollups_restate_task() -> int:

    state = rollups_refresh(restate=True)
    return state.days_rewritten if state else 0


@shared_task(time_limit=900, soft_time_limit=870)
def anomaly_scans_run_task() -> int:

    return anomaly_scans_run()
