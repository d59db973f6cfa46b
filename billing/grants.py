"""Starting and ending grants of free usage (the Garage program), and the reminders before they end.

A grant overrides its team's plan terms (billing.entitlements) in every period it covers: from
the moment it starts, the current period takes its allowances at $0 a request (requests made
before keep the price they were counted at, as with a plan switch); when it ends, the current
period goes back to the plan's terms (a Free team past the Free allowance is then refused until
the next period, or upgrades). Starting and ending happen under the subscription's row lock, as
plan switches and period rollovers do, and each is recorded as a `grant` billing event. Ending
and reminding are safe to run again and concurrently: a grant ends once, each reminder is sent once.
"""

from datetime import datetime, timedelta

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing import entitlements
from billing.alerts import owner_emails
from billing.lifecycle import current_period, locked_subscription
from billing.models import BillingEvent, BillingPeriod, Contract, Grant
from notifications.outbox import queue_templated_email

LIVE_CONTRACT = (Contract.Status.SCHEDULED, Contract.Status.ACTIVE)
REMINDERS = (("reminded_14_days_at", timedelta(days=14)), ("reminded_1_day_at", timedelta(days=1)))


class GrantError(Exception):
    """Why a grant cannot be started; the message is shown to staff."""


def start_grant(
    *,
    team_id: int,
    actor=None,
    request_allowance: int | None = None,
    vehicle_allowance: int | None = None,
    months: int | None = None,
    now: datetime | None = None,
    program: str = "garage",
) -> Grant:
    """Start a grant now; GrantError if the team already has an active one."""
    now = now or timezone.now()
    months = settings.GARAGE_GRANT_MONTHS if months is None else months
    current_period(team_id, now)  # the period the grant starts in exists before its terms change
    with transaction.atomic():
        subscription = locked_subscription(team_id)
        if Grant.objects.filter(team_id=team_id, status=Grant.Status.ACTIVE).exists():
            raise GrantError("This team already has an active grant.")
        if Contract.objects.filter(team_id=team_id, status__in=LIVE_CONTRACT).exists():
            raise GrantError("This team has an Enterprise contract; a team has a grant or a contract, not both.")
        grant = Grant.objects.create(
            team_id=team_id,
            program=program,
            starts_at=now,
            ends_at=now + relativedelta(months=months),
            request_allowance=settings.GARAGE_GRANT_REQUESTS if request_allowance is None else request_allowance,
            vehicle_allowance=settings.GARAGE_GRANT_VEHICLES if vehicle_allowance is None else vehicle_allowance,
            created_by=actor,
        )
        period = _apply_terms(team_id, subscription.plan, grant, now)
        BillingEvent.objects.create(
            team_id=team_id, period=period, actor=actor, kind=BillingEvent.Kind.GRANT, after=_described(grant)
        )
    return grant


def end_due_grants(now: datetime | None = None) -> list[int]:
    """End every active grant whose time is up (the beat task); the ids of the grants it ended."""
    now = now or timezone.now()
    due = Grant.objects.filter(status=Grant.Status.ACTIVE, ends_at__lte=now).values_list("pk", flat=True)
    return [grant_id for grant_id in list(due) if end_grant(grant_id, now=now)]


def end_grant(grant_id: int, *, now: datetime | None = None, actor=None) -> bool:
    """End a grant (its time is up, or staff end it early); False if it had ended already."""
    now = now or timezone.now()
    team_id = Grant.objects.values_list("team_id", flat=True).get(pk=grant_id)
    current_period(team_id, now)
    with transaction.atomic():
        subscription = locked_subscription(team_id)
        grant = Grant.objects.select_for_update().get(pk=grant_id)
        if grant.status != Grant.Status.ACTIVE:
            return False
        before = _described(grant)
        grant.status, grant.ended_at = Grant.Status.ENDED, now
        grant.save(update_fields=["status", "ended_at"])
        period = _apply_terms(team_id, subscription.plan, None, now)
        BillingEvent.objects.create(
            team_id=team_id,
            period=period,
            actor=actor,
            kind=BillingEvent.Kind.GRANT,
            before=before,
            after={**_described(grant), "plan": subscription.plan.code},
        )
        recipients = owner_emails(team_id)
        if recipients:
            context = {"grant": grant, "plan": subscription.plan, "period": period}
            queue_templated_email("grant-ended", to=recipients, context=context)
    return True


def send_due_reminders(now: datetime | None = None) -> int:
    """Email Owners 14 days and 1 day before their grant ends, each once; how many were sent."""
    now = now or timezone.now()
    sent = 0
    # A 14-day reminder that is overdue by the time the 1-day one is due is skipped, not sent late.
    Grant.objects.filter(
        status=Grant.Status.ACTIVE, ends_at__lte=now + timedelta(days=1), reminded_14_days_at__isnull=True
    ).update(reminded_14_days_at=now)
    for field, ahead in REMINDERS:
        due = Grant.objects.filter(
            status=Grant.Status.ACTIVE, ends_at__gt=now, ends_at__lte=now + ahead, **{f"{field}__isnull": True}
        )
        for grant in due.select_related("team"):
            with transaction.atomic():  # the reminder is marked and its email queued together
                # The conditional UPDATE is the once-only switch: a concurrent run finds it done.
                if not Grant.objects.filter(pk=grant.pk, **{f"{field}__isnull": True}).update(**{field: now}):
                    continue
                recipients = owner_emails(grant.team_id)
                if recipients:
                    queue_templated_email("grant-ending", to=recipients, context={"grant": grant, "days": ahead.days})
            sent += 1
    return sent


def _apply_terms(team_id: int, plan, grant: Grant | None, now: datetime) -> BillingPeriod | None:
    """Give the team's open periods from `now` on the terms of the plan under this grant (or none)."""
    terms = entitlements.terms_for(plan, grant)
    BillingPeriod.objects.filter(team_id=team_id, status=BillingPeriod.Status.OPEN, end__gt=now).update(**terms)
    return BillingPeriod.objects.filter(team_id=team_id, start__lte=now, end__gt=now).first()


def _described(grant: Grant) -> dict:
    return {
        "grant": grant.pk,
        "program": grant.program,
        "status": grant.status,
        "starts_at": grant.starts_at.isoformat(),
        "ends_at": grant.ends_at.isoformat(),
        "request_allowance": grant.request_allowance,
        "vehicle_allowance": grant.vehicle_allowance,
    }
