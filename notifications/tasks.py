"""The outbox's tasks: thin wrappers over notifications.outbox, safe to run twice or concurrently."""

from celery import shared_task

from notifications import outbox


# max_retries=None: the row counts the tries (EMAIL_OUTBOX_MAX_ATTEMPTS) across this task's retries and the sweep's.
@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, time_limit=120, max_retries=None)
def send_email(self, email_id: int) -> bool:
    try:
        return outbox.send_queued_email(email_id)
    except outbox.TryLater as later:
        raise self.retry(exc=later, countdown=later.seconds) from later


@shared_task(acks_late=True, reject_on_worker_lost=True, time_limit=300)
def sweep_outbox() -> int:
    """Re-enqueue emails whose task was lost, and forget sent ones past their keeping time; how many re-enqueued."""
    overdue = outbox.overdue_email_ids()
    for email_id in overdue:
        send_email.delay(email_id)
    outbox.purge_sent()
    return len(overdue)
