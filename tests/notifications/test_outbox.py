"""The outbox in this process: what is queued with a change, how one email is sent, retried or given up, the sweep's
choice, and staff's “send again”. The same steps on a real worker and mail server: test_outbox_worker.py."""

from datetime import timedelta

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.conf import settings
from django.core import mail
from django.db import transaction
from django.template import TemplateSyntaxError
from django.urls import reverse
from django.utils import timezone

from accounts import teams
from notifications import outbox
from notifications.models import OutboundEmail
from support import services as support_services
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_membership(make_member):
    return make_member("owner")


def queue(subject="Hello", to="ada@example.com") -> OutboundEmail:
    message = mail.EmailMultiAlternatives(subject=subject, body="Text", to=[to])
    message.attach_alternative("<p>Text</p>", "text/html")
    return outbox.queue_email(message, template="test")


def test_the_email_is_queued_with_the_change_and_sent_as_rendered(owner_membership, send_queued_emails):
    teams.invite_member(actor=owner_membership, email="new@example.com", role="viewer")

    email = OutboundEmail.objects.get()
    assert (email.template, email.status, email.recipients) == ("invitation", "queued", ["new@example.com"])
    assert email.subject == "You're invited to join Acme Mobility on Ignition"
    assert "/invitations/" in email.text_body and "/invitations/" in email.html_body
    assert mail.outbox == []

    assert send_queued_emails() == 1
    [message] = mail.outbox
    assert message.subject == email.subject and message.to == ["new@example.com"]
    assert message.alternatives[0].mimetype == "text/html"
    assert message.extra_headers["Message-ID"] == email.message_id
    assert email.message_id.endswith("@ignition.localhost>")  # the sender's domain, the same on every try


def test_a_rolled_back_change_leaves_no_email(owner_membership, send_queued_emails):
    with pytest.raises(RuntimeError), transaction.atomic():
        teams.invite_member(actor=owner_membership, email="new@example.com", role="viewer")
        raise RuntimeError("the request failed after the invitation was written")

    assert not OutboundEmail.objects.exists() and not owner_membership.team.invitations.exists()
    assert send_queued_emails() == 0 and mail.outbox == []


def test_a_template_that_fails_to_render_rolls_the_change_back(owner_membership, settings, tmp_path):
    broken = tmp_path / "emails"
    broken.mkdir()
    (broken / "invitation-subject.txt").write_text("{% if %}")  # a template bug, found when it is rendered
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}]

    with pytest.raises(TemplateSyntaxError):
        teams.invite_member(actor=owner_membership, email="new@example.com", role="viewer")

    assert not owner_membership.team.invitations.exists()  # not an invitation nobody was told about
    assert not OutboundEmail.objects.exists()


def test_a_subject_is_made_one_line(send_queued_emails):
    email = queue(subject="Acme\rBcc: x@evil.example\n\u2028 team\x00")

    assert email.subject == "Acme Bcc: x@evil.example team"
    assert send_queued_emails() == 1  # Django refuses a subject with \r or \n (BadHeaderError)
    assert mail.outbox[0].subject == "Acme Bcc: x@evil.example team" and mail.outbox[0].to == ["ada@example.com"]


def test_plain_text_parts_are_not_html_escaped(
    owner_membership, django_capture_on_commit_callbacks, send_queued_emails
):
    owner_membership.team.name = "Fast & Furious <Fleet>"
    owner_membership.team.save()
    with django_capture_on_commit_callbacks(execute=True):
        ticket = support_services.open_ticket(owner_membership, "email", "Brakes & lights", "What's wrong?")
    send_queued_emails()

    [message] = mail.outbox
    assert message.subject == f"New email ticket #{ticket.pk} from Fast & Furious <Fleet>: Brakes & lights"
    assert "(Fast & Furious <Fleet>)" in message.body and "What's wrong?" in message.body
    assert "Fast &amp; Furious &lt;Fleet&gt;" in message.alternatives[0].content  # the HTML part stays escaped


def test_an_email_is_sent_once_however_often_its_task_runs(send_queued_emails):
    email = queue()

    assert outbox.send_queued_email(email.pk) is True
    assert outbox.send_queued_email(email.pk) is False
    assert len(mail.outbox) == 1
    email.refresh_from_db()
    assert (email.status, email.attempts) == ("sent", 1) and email.sent_at is not None


def test_an_email_another_worker_is_sending_is_left_to_it_until_its_claim_lapses():
    email = queue()
    OutboundEmail.objects.filter(pk=email.pk).update(status="sending", due_at=timezone.now() + timedelta(minutes=4))
    assert outbox.send_queued_email(email.pk) is False

    OutboundEmail.objects.filter(pk=email.pk).update(due_at=timezone.now() - timedelta(seconds=1))  # it died
    assert outbox.send_queued_email(email.pk) is True
    assert len(mail.outbox) == 1


def test_a_refused_connection_is_recorded_and_retried_later(mail_server_down):
    email = queue()

    with pytest.raises(outbox.TryLater) as raised:
        outbox.send_queued_email(email.pk)

    assert raised.value.seconds == 30  # EMAIL_OUTBOX_RETRY_SECONDS, doubling with each try, at most 30 minutes
    assert [outbox.retry_delay(attempts) for attempts in range(2, 10)] == [60, 120, 240, 480, 960, 1800, 1800, 1800]
    email.refresh_from_db()
    assert (email.status, email.attempts) == ("queued", 1)
    assert "ConnectionRefusedError" in email.last_error
    assert timezone.now() + timedelta(seconds=25) < email.due_at <= timezone.now() + timedelta(seconds=30)


def test_it_gives_up_after_the_last_attempt_and_staff_send_it_again(mail_server_down, client, send_queued_emails):
    mail_server_down.EMAIL_OUTBOX_MAX_ATTEMPTS = 2
    email = queue()
    with pytest.raises(outbox.TryLater):
        outbox.send_queued_email(email.pk)
    with pytest.raises(ConnectionRefusedError):
        outbox.send_queued_email(email.pk)
    email.refresh_from_db()
    assert (email.status, email.attempts, email.due_at) == ("failed", 2, None)
    assert outbox.overdue_email_ids(timezone.now() + timedelta(days=1)) == []  # the sweep leaves it to staff

    mail_server_down.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"  # the server is back
    staff = UserFactory(is_staff=True, is_superuser=True)
    TOTP.activate(staff, generate_totp_secret())
    client.force_login(staff)
    changelist = reverse("admin:notifications_outboundemail_changelist")
    assert "Failed" in client.get(changelist).content.decode()
    assert list(client.get(changelist, {"q": "ADA@example"}).context["cl"].result_list) == [email]  # by recipient
    assert list(client.get(changelist, {"q": "bob@example"}).context["cl"].result_list) == []
    response = client.post(changelist, {"action": "send_again", "_selected_action": [email.pk]}, follow=True)

    assert "Queued 1 email again." in response.content.decode()
    email.refresh_from_db()
    assert (email.status, email.attempts) == ("queued", 0)
    assert send_queued_emails() == 1 and len(mail.outbox) == 1


def test_staff_cannot_send_again_an_email_that_was_sent(client, send_queued_emails):
    email = queue()
    send_queued_emails()
    staff = UserFactory(is_staff=True, is_superuser=True)
    TOTP.activate(staff, generate_totp_secret())
    client.force_login(staff)

    changelist = reverse("admin:notifications_outboundemail_changelist")
    response = client.post(changelist, {"action": "send_again", "_selected_action": [email.pk]}, follow=True)

    assert "1 not failed (sent, or still being tried) and left as they are." in response.content.decode()
    assert send_queued_emails() == 0 and len(mail.outbox) == 1
    assert client.get(reverse("admin:notifications_outboundemail_add")).status_code == 403


def test_the_sweep_takes_only_unsent_emails_whose_try_is_overdue():
    now = timezone.now()
    fresh, lost, retrying, sent = queue(), queue(), queue(), queue()
    OutboundEmail.objects.filter(pk=lost.pk).update(due_at=now - timedelta(minutes=10))
    OutboundEmail.objects.filter(pk=retrying.pk).update(due_at=now + timedelta(minutes=8))  # its retry is waiting
    OutboundEmail.objects.filter(pk=sent.pk).update(status="sent", due_at=None, sent_at=now - timedelta(days=40))

    assert outbox.overdue_email_ids(now) == [lost.pk]
    assert outbox.purge_sent(now) == 1
    assert set(OutboundEmail.objects.values_list("pk", flat=True)) == {fresh.pk, lost.pk, retrying.pk}


def test_beat_runs_the_sweep_every_minute():
    (entry,) = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "notifications.tasks.sweep_outbox"]
    assert entry["schedule"] == 60
