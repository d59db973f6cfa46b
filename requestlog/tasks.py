"""Celery tasks of the request log: thin wrappers, safe to run twice or concurrently."""

from celery import shared_task

from requestlog import services


@shared_task(acks_late=True, reject_on_worker_lost=True, time_limit=1800)
def purge_expired_requests() -> int:
    return services.purge_expired()
