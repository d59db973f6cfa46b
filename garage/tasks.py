"""Celery tasks of the Garage program: thin wrappers over garage.services, safe to run twice or concurrently."""

from celery import shared_task

from garage import services


@shared_task(acks_late=True, reject_on_worker_lost=True, time_limit=600)
def end_due_grants() -> int:
    return services.end_due_grants_and_expire()
