from celery import shared_task


@shared_task(time_limit=300, soft_time_limit=270)
def supervisor_digest_send_task() -> int:
    from reporting.digest import supervisor_digest_send

    return supervisor_digest_send()
