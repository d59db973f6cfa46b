"""Celery tasks of the vehicle API: thin wrappers, safe to run twice or concurrently."""

from celery import shared_task

from vehicles import simulator
from vehicles.api import idempotency


@shared_task(acks_late=True, reject_on_worker_lost=True, time_limit=600)
def purge_idempotency_keys() -> int:
    return idempotency.purge_expired()


@shared_task(acks_late=True, reject_on_worker_lost=True, time_limit=1800)
def purge_unused_test_owners() -> int:
    return simulator.purge_unused_test_owners()
