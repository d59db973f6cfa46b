"""Contact sales: a team's Owner asks for an Enterprise contract; the sales team is emailed the lead.

One open request per team a day: a team whose last request is still new and less than 24 hours
old (THROTTLE) is told so instead of creating a duplicate. The check runs under
the team's row lock, so two requests at once cannot both pass it.
"""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts.audit import record_audit
from accounts.models import Membership, Team
from accounts.roles import Perm, role_can
from notifications.outbox import queue_templated_email
from sales.models import Lead

THROTTLE = timedelta(hours=24)


class SalesError(Exception):
    """Why the request cannot be made; the message is shown as is."""


def request_contact(membership: Membership, data: dict) -> Lead:
    """Record the team's request to talk to sales, email the sales team and acknowledge to the requester."""
    if not role_can(membership.role, Perm.MANAGE_BILLING):
        raise PermissionDenied("Only Owners contact sales about an Enterprise contract.")
    with transaction.atomic():
        Team.objects.select_for_update().filter(pk=membership.team_id).first()  # one request at a time per team
        _refuse_if_recently_requested(membership.team_id)
        lead = Lead.objects.create(
            team_id=membership.team_id,
            requested_by=membership.user,
            company=data["company"],
            expected_monthly_requests=data["expected_monthly_requests"],
            expected_vehicles=data["expected_vehicles"],
            message=data.get("message") or "",
        )
        record_audit(
            team=membership.team,
            actor=membership.user,
            action="sales.contact_requested",
            target=lead.company,
            lead_id=lead.pk,
        )
        _queue_emails(lead)
    return lead


def _refuse_if_recently_requested(team_id: int) -> None:
    since = timezone.now() - THROTTLE
    open_lead = Lead.objects.filter(team_id=team_id, status=Lead.Status.NEW, created_at__gt=since).first()
    if open_lead is not None:
        again = open_lead.created_at + THROTTLE
        raise SalesError(
            f"Your team asked sales to get in touch on {open_lead.created_at:%-d %B %Y at %H:%M} UTC; "
            f"they will reply by email. You can send another request from {again:%-d %B %Y at %H:%M} UTC."
        )


def _queue_emails(lead: Lead) -> None:
    admin_url = settings.SITE_ROOT + reverse("admin:sales_lead_change", args=[lead.pk])
    context = {"lead": lead, "team": lead.team, "requester": lead.requested_by, "admin_url": admin_url}
    requester_email = lead.requested_by.email if lead.requested_by else ""
    queue_templated_email("sales-lead", to=[settings.SALES_EMAIL], context=context)
    if requester_email:
        queue_templated_email("sales-acknowledgement", to=[requester_email], context=context)
