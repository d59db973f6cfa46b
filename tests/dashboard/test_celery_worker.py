"""The Celery wiring works end to end: a real worker on the configured broker runs our tasks."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.credentials import hash_secret
from accounts.models import Invitation
from accounts.tasks import expire_invitations

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def make_invitation(team, email, *, expires_in):
    return Invitation.objects.create(
        team=team, email=email, role="viewer", token_hash=hash_secret(email),
        expires_at=timezone.now() + expires_in,
    )  # fmt: skip


def test_a_real_worker_expires_stale_invitations_from_the_broker(team, celery_worker, wait_for):
    stale = make_invitation(team, "late@example.com", expires_in=timedelta(hours=-1))
    fresh = make_invitation(team, "soon@example.com", expires_in=timedelta(hours=5))

    expire_invitations.apply_async(queue=celery_worker.queue)

    def stale_expired():
        stale.refresh_from_db()
        return stale.status == Invitation.Status.EXPIRED

    assert wait_for(stale_expired, timeout=30), celery_worker.log.read_text()[-3000:]
    fresh.refresh_from_db()
    assert fresh.status == Invitation.Status.PENDING


def succeeded_runs(worker) -> list[str]:
    lines = worker.log.read_text().splitlines()
    return [line for line in lines if "expire_invitations" in line and "succeeded" in line]


def test_running_the_task_again_changes_nothing_more(team, celery_worker, wait_for):
    stale = make_invitation(team, "twice@example.com", expires_in=timedelta(minutes=-5))
    before = len(succeeded_runs(celery_worker))
    expire_invitations.apply_async(queue=celery_worker.queue)
    assert wait_for(lambda: len(succeeded_runs(celery_worker)) == before + 1, timeout=30)
    stale.refresh_from_db()
    assert stale.status == Invitation.Status.EXPIRED
    first_run = stale.responded_at

    expire_invitations.apply_async(queue=celery_worker.queue)
    assert wait_for(lambda: len(succeeded_runs(celery_worker)) == before + 2, timeout=30)
    assert succeeded_runs(celery_worker)[-1].endswith(": 0")  # nothing left to expire
    stale.refresh_from_db()
    assert stale.responded_at == first_run


def test_tasks_are_acknowledged_late_so_a_dead_worker_loses_nothing():
    assert expire_invitations.acks_late is True
    assert expire_invitations.reject_on_worker_lost is True


def test_a_filesystem_broker_message_is_invisible_to_consumers_until_it_is_whole(tmp_path, monkeypatch):
    """The zero-config broker: a consumer polling the folder mid-write finds nothing, never an empty message (it
    read one once and the worker died on json.loads(""), kombu issue #1551)."""
    import os
    from queue import Empty

    import kombu

    folders = {"data_folder_in": str(tmp_path), "data_folder_out": str(tmp_path), "store_processed": False}
    connection = kombu.Connection(
        "filesystem://", transport="dashboard.celery_filesystem:Transport", transport_options=folders
    )
    channel = connection.default_channel
    mid_write = []
    rename = os.replace

    def replace(partial, final):
        try:
            mid_write.append(channel._get("probe"))
        except Empty:
            mid_write.append("nothing")
        rename(partial, final)

    monkeypatch.setattr("dashboard.celery_filesystem.os.replace", replace)
    channel._put("probe", {"body": "whole"})

    assert mid_write == ["nothing"]
    assert channel._get("probe") == {"body": "whole"}
    connection.close()
