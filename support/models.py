"""Support tickets: a team opens one on a channel its plan includes; staff reply, and each reply is emailed.

Which channels a team has is data (billing.Plan.support_channels, plus 1:1 with a Garage grant), decided
in support.services.channels_for; the models only hold the conversation.
"""

from django.conf import settings
from django.db import models

from accounts.models import Team

SUBJECT_MAX = 200
BODY_MAX = 5000


class Ticket(models.Model):
    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        CHAT = "chat", "Chat"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ANSWERED = "answered", "Answered"
        CLOSED = "closed", "Closed"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="support_tickets")
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    subject = models.CharField(max_length=SUBJECT_MAX)
    body = models.TextField(max_length=BODY_MAX)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["team", "-created_at"], name="support_ticket_team_created")]

    def __str__(self):
        return f"#{self.pk} {self.subject}"


class TicketMessage(models.Model):
    """One entry in a ticket's thread: a reply, or the ticket being closed; also the audit of staff actions."""

    class Kind(models.TextChoices):
        REPLY = "reply", "Reply"
        CLOSED = "closed", "Closed the ticket"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    from_staff = models.BooleanField(default=False)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.REPLY)
    body = models.TextField(max_length=BODY_MAX, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"{self.get_kind_display()} on ticket #{self.ticket_id}"
