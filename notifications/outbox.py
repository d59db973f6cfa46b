"""The transactional outbox: every email the product sends goes through here.

1. `queue_templated_email` (or `queue_email`, for a message rendered elsewhere, e.g. by allauth) renders the
   email and writes it as an `OutboundEmail` row in the caller's transaction: a template error or any later
   failure rolls the change back with its email, and a rollback sends nothing.
2. On commit, the `send_email` task is enqueued with the row's id. `send_queued_email` claims the row (a
   conditional UPDATE, committed before the network call), sends it, and marks it sent. A transport error
   (OSError; smtplib's errors are OSErrors) is recorded and the task retries with a doubling delay; after
   EMAIL_OUTBOX_MAX_ATTEMPTS tries the row is marked failed, for staff to send again from the admin.
3. Beat's `sweep_outbox` re-enqueues rows whose try is overdue: the task message was lost (a broker outage,
   a worker killed mid-send), so a committed email is always sent in the end.

Delivery is at least once: a worker that dies after the mail server accepted a message and before the row
is marked sent leaves the claim to lapse, and the message is sent again. Every try carries the row's
Message-ID, which lets mail systems that de-duplicate by it drop the copy.
"""

import logging
from datetime import timedelta
from email.utils import parseaddr
from functools import partial

from django.conf import settings
from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.core.mail.message import make_msgid
from django.core.mail.utils import DNS_NAME
from django.db import transaction
from django.db.models import F, Q
from django.template import Context
from django.template.loader import get_template
from django.utils import timezone

from notifications.models import OutboundEmail
from notifications.text import single_line

logger = logging.getLogger("notifications.outbox")

# Longer than the send task's hard time limit: a claim only lapses once its worker is surely gone.
CLAIM = timedelta(minutes=5)
# How late a try may be before the sweep takes it for lost (the task may be waiting behind others).
SWEEP_AFTER = timedelta(minutes=2)
# Below the broker's visibility timeout (an hour), so a waiting retry is not delivered twice.
LONGEST_RETRY_DELAY = 1800
UNSENT = (OutboundEmail.Status.QUEUED, OutboundEmail.Status.SENDING)


class TryLater(Exception):
    """The mail server could not take the email now; the task tries again in `seconds`."""

    def __init__(self, error: Exception, seconds: int):
        super().__init__(f"{error!r}; trying again in {seconds} s")
        self.seconds = seconds


def render_templated_email(name: str, *, to: list[str], context: dict) -> EmailMultiAlternatives:
    """templates/emails/<name>-subject.txt, -body.txt and -body.html, healthchecks-style.

    The subject and text body are plain text, rendered without HTML escaping (“Fast & Furious”, not “&amp;”).
    """
    context = {"site_name": settings.SITE_NAME, "site_root": settings.SITE_ROOT, **context}
    subject = _render(f"emails/{name}-subject.txt", context, autoescape=False)
    message = EmailMultiAlternatives(
        subject=subject, body=_render(f"emails/{name}-body.txt", context, autoescape=False), to=to
    )
    message.attach_alternative(_render(f"emails/{name}-body.html", context, autoescape=True), "text/html")
    return message


def _render(template_name: str, context: dict, *, autoescape: bool) -> str:
    return get_template(template_name).template.render(Context(context, autoescape=autoescape))


def queue_templated_email(name: str, *, to: list[str], context: dict, sensitive: bool = False) -> OutboundEmail:
    """Render the `name` email now and queue it in the current transaction (call it inside the change's)."""
    return queue_email(render_templated_email(name, to=to, context=context), template=name, sensitive=sensitive)


def queue_email(message: EmailMessage, *, template: str, sensitive: bool = False) -> OutboundEmail:
    """Queue a rendered message (To, subject, text and HTML bodies) in the current transaction.

    `sensitive`: it carries a secret link (an invitation, a password reset); its bodies are erased once sent.
    """
    if message.cc or message.bcc or message.reply_to or message.attachments or message.extra_headers:
        raise ValueError("The outbox keeps To, subject and bodies only; this message has more.")
    html_parts = [content for content, mimetype in getattr(message, "alternatives", []) if mimetype == "text/html"]
    text_body, html_body = message.body, html_parts[0] if html_parts else ""
    if message.content_subtype == "html":  # an HTML-only message (allauth sends one when it has no .txt template)
        text_body, html_body = "", message.body
    email = OutboundEmail.objects.create(
        template=template,
        message_id=_message_id(message.from_email),
        from_email=message.from_email,
        recipients=list(message.to),
        subject=single_line(message.subject),  # a \r or \n in a subject would make the send fail (header injection)
        text_body=text_body,
        html_body=html_body,
        sensitive=sensitive,
        due_at=timezone.now(),
    )
    _enqueue_on_commit(email.pk)
    return email


def _message_id(from_email: str) -> str:
    """A Message-ID in the sender's domain (no DNS lookup inside the caller's transaction)."""
    domain = parseaddr(from_email)[1].rpartition("@")[2]
    return make_msgid(domain=domain or DNS_NAME)


def _enqueue_on_commit(email_id: int) -> None:
    # robust: a broker outage must not fail the request that already committed; the sweep sends it later.
    transaction.on_commit(partial(_enqueue, email_id), robust=True)


def _enqueue(email_id: int) -> None:
    from notifications.tasks import send_email  # the tasks module imports this one

    send_email.delay(email_id)


def send_queued_email(email_id: int) -> bool:
    """Send the email once; False if it was sent already, another worker is sending it, or it failed for good.

    Raises TryLater (for the task to retry) when the mail server cannot take it yet.
    """
    now = timezone.now()
    claimed = (
        OutboundEmail.objects.filter(pk=email_id)
        .filter(Q(status=OutboundEmail.Status.QUEUED) | Q(status=OutboundEmail.Status.SENDING, due_at__lte=now))
        .update(status=OutboundEmail.Status.SENDING, attempts=F("attempts") + 1, due_at=now + CLAIM)
    )
    if not claimed:
        return False
    email = OutboundEmail.objects.get(pk=email_id)
    try:
        as_message(email).send()
    except Exception as error:
        _record_failure(email, error)
        raise
    sent = {"status": OutboundEmail.Status.SENT, "sent_at": timezone.now(), "due_at": None, "last_error": ""}
    if email.sensitive:
        sent.update(text_body="", html_body="")  # the secret link is in the recipient's mailbox, not in our tables
    OutboundEmail.objects.filter(pk=email_id, status=OutboundEmail.Status.SENDING).update(**sent)
    return True


def as_message(email: OutboundEmail) -> EmailMessage:
    headers = {"Message-ID": email.message_id}
    if not email.text_body:
        message = EmailMessage(email.subject, email.html_body, email.from_email, email.recipients, headers=headers)
        message.content_subtype = "html"
        return message
    message = EmailMultiAlternatives(
        email.subject, email.text_body, email.from_email, email.recipients, headers=headers
    )
    if email.html_body:
        message.attach_alternative(email.html_body, "text/html")
    return message


def _record_failure(email: OutboundEmail, error: Exception) -> None:
    """A transport error is retried until the last attempt; anything else (a bug, a bad header) fails at once."""
    retry = isinstance(error, OSError) and email.attempts < settings.EMAIL_OUTBOX_MAX_ATTEMPTS
    delay = retry_delay(email.attempts)
    OutboundEmail.objects.filter(pk=email.pk, status=OutboundEmail.Status.SENDING).update(
        status=OutboundEmail.Status.QUEUED if retry else OutboundEmail.Status.FAILED,
        due_at=timezone.now() + timedelta(seconds=delay) if retry else None,
        last_error=f"attempt {email.attempts}: {type(error).__name__}: {error}"[:2000],
    )
    if not retry:
        logger.error("Gave up on email %s (%s) after %s attempts: %r", email.pk, email.template, email.attempts, error)
        return
    raise TryLater(error, delay) from error


def retry_delay(attempts: int) -> int:
    """Seconds before the next try after `attempts` tries: EMAIL_OUTBOX_RETRY_SECONDS, doubling, at most 30 min."""
    return min(settings.EMAIL_OUTBOX_RETRY_SECONDS * 2 ** max(attempts - 1, 0), LONGEST_RETRY_DELAY)


def overdue_email_ids(now=None, *, limit: int = 1000) -> list[int]:
    """Unsent emails whose try is overdue (their task was lost), oldest first, for the beat sweep."""
    cutoff = (now or timezone.now()) - SWEEP_AFTER
    overdue = OutboundEmail.objects.filter(status__in=UNSENT, due_at__lt=cutoff).order_by("due_at")
    return list(overdue.values_list("pk", flat=True)[:limit])


def purge_sent(now=None) -> int:
    """Delete sent emails older than EMAIL_OUTBOX_KEEP_DAYS; how many."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.EMAIL_OUTBOX_KEEP_DAYS)
    deleted, _ = OutboundEmail.objects.filter(status=OutboundEmail.Status.SENT, sent_at__lt=cutoff).delete()
    return deleted


@transaction.atomic
def send_again(email_ids: list[int]) -> int:
    """Staff's “send again”: failed emails get a fresh round of tries, enqueued on commit; how many."""
    failed = list(
        OutboundEmail.objects.select_for_update()
        .filter(pk__in=email_ids, status=OutboundEmail.Status.FAILED)
        .values_list("pk", flat=True)
    )
    OutboundEmail.objects.filter(pk__in=failed).update(
        status=OutboundEmail.Status.QUEUED, attempts=0, due_at=timezone.now()
    )
    for email_id in failed:
        _enqueue_on_commit(email_id)
    return len(failed)
