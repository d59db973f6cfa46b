"""The outbox on a real Celery worker and broker: what commits is sent, retried through a mail server that refuses
(a real SMTP server in the test, closed and reopened), swept when its task was lost, and sent once however often
its task runs. The worker's emails go to the `smtp_server` fixture (tests/conftest.py)."""

import uuid

import pytest
from django.db import transaction
from django.utils import timezone

from accounts import teams
from dashboard.celery import app
from notifications.models import OutboundEmail
from notifications.tasks import send_email, sweep_outbox

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def lost_task_messages():
    """The tasks this process enqueues go to a queue no worker reads, as if the broker had lost them."""
    default, lost = app.conf.task_default_queue, f"lost-{uuid.uuid4().hex[:12]}"
    app.conf.task_default_queue = lost
    yield
    app.conf.task_default_queue = default
    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge(lost)


def invite(owner, email):
    teams.invite_member(actor=owner, email=email, role="viewer")
    return OutboundEmail.objects.get(template="invitation", recipients=[email])


def status(email) -> str:
    email.refresh_from_db()
    return email.status


def test_an_email_the_mail_server_refuses_is_retried_and_sent_once_it_answers(
    tasks_to_worker, smtp_server, make_member, wait_for
):
    owner = make_member("owner")
    smtp_server.refuse()
    try:
        email = invite(owner, "refused@example.com")  # committed: its task goes to the worker

        def refused_twice():
            email.refresh_from_db()
            return email.attempts >= 2 and email.status == OutboundEmail.Status.QUEUED

        assert wait_for(refused_twice, timeout=30), tasks_to_worker.log.read_text()[-3000:]
        assert "ConnectionRefusedError" in email.last_error
        assert smtp_server.to("refused@example.com") == []
    finally:
        smtp_server.answer()

    assert wait_for(lambda: status(email) == "sent", timeout=30), tasks_to_worker.log.read_text()[-3000:]
    [message] = smtp_server.to("refused@example.com")
    assert message["Subject"] == "You're invited to join Acme Mobility on Ignition"
    assert message["Message-ID"] == email.message_id
    assert email.attempts >= 3 and email.sent_at is not None and email.last_error == ""
    assert email.text_body == ""  # the invitation link is not kept once it is sent


def test_a_rolled_back_change_queues_and_sends_nothing(tasks_to_worker, smtp_server, make_member, wait_for):
    owner = make_member("owner")
    with pytest.raises(RuntimeError), transaction.atomic():
        teams.invite_member(actor=owner, email="rolled-back@example.com", role="viewer")
        raise RuntimeError("the request failed after the invitation was written")

    assert not owner.team.invitations.exists()
    assert not OutboundEmail.objects.exists()
    sweep_outbox.apply_async(queue=tasks_to_worker.queue)
    assert wait_for(lambda: "sweep_outbox" in tasks_to_worker.log.read_text(), timeout=30)
    assert smtp_server.to("rolled-back@example.com") == []


def test_the_sweep_sends_an_email_whose_task_was_lost(
    lost_task_messages, celery_worker, smtp_server, make_member, wait_for
):
    owner = make_member("owner")
    email = invite(owner, "lost@example.com")
    OutboundEmail.objects.filter(pk=email.pk).update(due_at=timezone.now() - timezone.timedelta(minutes=10))
    assert status(email) == "queued"

    sweep_outbox.apply_async(queue=celery_worker.queue)  # as beat does every minute

    assert wait_for(lambda: status(email) == "sent", timeout=30), celery_worker.log.read_text()[-3000:]
    assert len(smtp_server.to("lost@example.com")) == 1
    assert email.attempts == 1


def test_a_duplicated_task_sends_the_email_once(lost_task_messages, celery_worker, smtp_server, make_member, wait_for):
    owner = make_member("owner")
    email = invite(owner, "twice@example.com")
    before = celery_worker.log.read_text().count("succeeded in")

    send_email.apply_async((email.pk,), queue=celery_worker.queue)
    send_email.apply_async((email.pk,), queue=celery_worker.queue)

    assert wait_for(lambda: celery_worker.log.read_text().count("succeeded in") >= before + 2, timeout=30)
    assert status(email) == "sent"
    assert len(smtp_server.to("twice@example.com")) == 1
    assert email.attempts == 1
