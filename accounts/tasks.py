from celery import shared_task

from accounts import teams


@shared_task(acks_late=True, reject_on_worker_lost=True)
def expire_invitations() -> int:
    return teams.expire_invitations()
