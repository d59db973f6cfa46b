"""Support channels by plan (DESIGN §1): which channels a team has, opening tickets, staff replies.

A team's channels come only from data: its plan row's `support_channels`, plus "one_to_one" while
it has an active Garage grant. Nothing here names a plan.
"""

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone
from django.utils.text import Truncator

from accounts.models import Membership, Team
from billing.entitlements import active_grant
from billing.lifecycle import subscription_for
from billing.models import Plan
from notifications.outbox import queue_templated_email
from support.models import BODY_MAX, SUBJECT_MAX, Ticket, TicketMessage

ONE_TO_ONE = "one_to_one"  # the Garage grant's 1:1 with our engineers
TICKET_CHANNELS = tuple(Ticket.Channel.values)  # the channels a ticket can be opened on


class SupportError(Exception):
    """Why the ticket cannot be opened or changed; the message is shown as is."""


def channels_for(team: Team, *, now=None) -> list[str]:
    """The team's support channels: its plan's, plus "one_to_one" with an active Garage grant."""
    channels = list(subscription_for(team.pk).plan.support_channels or [])
    if active_grant(team.pk, now or timezone.now()) is not None:
        channels.append(ONE_TO_ONE)
    return channels


def plans_offering(channel: str) -> list[Plan]:
    """The plans whose rows include `channel`, in catalog order (read from the rows, not named here)."""
    # A handful of rows; filtering in Python keeps this portable (SQLite has no JSON `contains`).
    return [plan for plan in Plan.objects.all() if channel in (plan.support_channels or [])]


def open_ticket(membership: Membership, channel: str, subject: str, body: str) -> Ticket:
    """Any member opens a ticket on one of the team's channels; the support desk is emailed."""
    if channel not in TICKET_CHANNELS:
        raise SupportError("Tickets are opened by email or chat.")
    if channel not in channels_for(membership.team):
        offered = " / ".join(plan.name for plan in plans_offering(channel)) or "no plan"
        raise SupportError(f"Your team's plan does not include {channel} support; it is available on {offered}.")
    body = body.strip()
    if not body:
        raise SupportError("Write your question first.")
    if len(body) > BODY_MAX:
        raise SupportError(f"Keep the message under {BODY_MAX:,} characters.")
    subject = subject.strip() or Truncator(body.splitlines()[0]).chars(80)
    with transaction.atomic():  # the ticket and its email to the desk, together
        ticket = Ticket.objects.create(
            team=membership.team, opened_by=membership.user, channel=channel, subject=subject[:SUBJECT_MAX], body=body
        )
        queue_templated_email(
            "support-opened", to=[settings.SUPPORT_EMAIL], context={"ticket": ticket, "opener": membership.user}
        )
    return ticket


def reply_as_staff(ticket_id: int, staff_user, body: str) -> TicketMessage:
    """Staff answer a ticket: the reply joins the thread, the ticket is answered, the opener is emailed."""
    if not getattr(staff_user, "is_staff", False):
        raise PermissionDenied("Only staff reply to tickets.")
    body = body.strip()
    if not body:
        raise SupportError("Write the reply first.")
    if len(body) > BODY_MAX:
        raise SupportError(f"Keep the reply under {BODY_MAX:,} characters.")
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update(of=("self",)).select_related("opened_by").get(pk=ticket_id)
        if ticket.status == Ticket.Status.CLOSED:
            raise SupportError(f"Ticket #{ticket.pk} is closed.")
        message = TicketMessage.objects.create(ticket=ticket, author=staff_user, from_staff=True, body=body)
        ticket.status = Ticket.Status.ANSWERED
        ticket.save(update_fields=["status", "updated_at"])
        opener = ticket.opened_by
        if opener is not None and opener.email:
            context = {"ticket": ticket, "message": message}
            queue_templated_email("support-reply", to=[opener.email], context=context)
    return message


def close_ticket(ticket_id: int, *, actor, by_staff: bool = False) -> Ticket:
    """Close the ticket (idempotent); who closed it is recorded in its thread."""
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().get(pk=ticket_id)
        if ticket.status == Ticket.Status.CLOSED:
            return ticket
        ticket.status = Ticket.Status.CLOSED
        ticket.save(update_fields=["status", "updated_at"])
        TicketMessage.objects.create(ticket=ticket, author=actor, from_staff=by_staff, kind=TicketMessage.Kind.CLOSED)
    return ticket
