from django.db import models
from django.db.models import Q
from django.utils import timezone


class OutboundEmail(models.Model):
    """One rendered email, written in the transaction of the change that causes it and sent by a task after commit.

    The row is the record that the email is owed: a rollback drops it with the change, and a commit guarantees it
    is sent eventually (the task retries; the beat sweep re-enqueues rows whose task was lost).
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"  # waiting for its task (first try or a retry)
        SENDING = "sending", "Sending"  # claimed by a worker until due_at
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"  # gave up; staff can send it again from the admin

    template = models.CharField(max_length=120, help_text="The template (or allauth prefix) it was rendered from.")
    message_id = models.CharField(max_length=255, help_text="Its Message-ID header, the same on every try.")
    from_email = models.CharField(max_length=320)
    recipients = models.JSONField(help_text="The To addresses, a list.")
    subject = models.TextField()
    text_body = models.TextField(blank=True)
    html_body = models.TextField(blank=True)
    sensitive = models.BooleanField(
        default=False,
        help_text="It carries a secret link (an invitation, a password reset): its bodies are erased once sent.",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveIntegerField(default=0, help_text="Tries made, successful or not.")
    last_error = models.TextField(blank=True)
    due_at = models.DateTimeField(
        null=True, blank=True, help_text="When the next try is due; while sending, when the worker's claim lapses."
    )
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # The beat sweep's query: the few rows not yet sent, by when they were due.
            models.Index(fields=["due_at"], name="outbox_unsent_due", condition=Q(status__in=["queued", "sending"])),
            models.Index(fields=["created_at"], name="outbox_created"),
            models.Index(fields=["sent_at"], name="outbox_sent"),  # the sweep's purge of old sent rows
        ]

    def __str__(self) -> str:
        return f"{self.template} to {', '.join(self.recipients)}"
