"""Dunning: retry a past-due invoice on a schedule, then suspend the team; paying lifts the suspension.

A failed charge makes the invoice past due and the team's subscription `past_due`. The charge is
retried `BILLING_DUNNING_RETRY_DAYS` (default 1, 3 and 5 days) after that first failure; when the
last retry fails too, the team is suspended: its billable API requests answer 430
`BILLING:ACCOUNT_SUSPENDED` (billing.metering) until its past-due invoices are paid, which lifts
the suspension at once (billing.payments). A charge the bank wants the Owner to authenticate is not retried:
only the Owner can authorize it, on the invoice's pay page (they were emailed the link); the team is
suspended when the schedule would have run out, unless they have paid by then. Every run is safe to
repeat: a retry is due only once per scheduled day (it counts the attempts already made), and suspending
twice changes nothing.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Min, OuterRef, Q, Subquery
from django.utils import timezone

from billing.alerts import owner_emails
from billing.models import BillingEvent, Invoice, Payment, Subscription
from notifications.outbox import queue_templated_email


def due_retries(now: datetime | None = None, *, team_id: int | None = None) -> tuple[list[tuple[int, int]], list[int]]:
    """([(past-due invoice, the attempt to make)] whose next retry is due now, [teams whose last retry failed]).

    An invoice with an attempt in flight waits for its outcome. The attempt number goes with the
    retry so that a duplicate task, or the Owner paying meanwhile, makes it a no-op.
    """
    now = now or timezone.now()
    schedule = settings.BILLING_DUNNING_RETRY_DAYS
    to_retry, to_suspend = [], set()
    invoices = Invoice.objects.filter(status=Invoice.Status.PAST_DUE)
    if team_id is not None:
        invoices = invoices.filter(team_id=team_id)
    rows = invoices.annotate(
        # The schedule counts its own attempts; the Owner's tries on the pay page neither use it up nor restart it.
        scheduled=Count("payments", filter=Q(payments__on_session=False)),
        attempts=Count("payments"),
        in_flight=Count("payments", filter=Q(payments__status=Payment.Status.PROCESSING)),
        first_failure=Min(
            "payments__updated_at",
            filter=Q(payments__status=Payment.Status.FAILED, payments__on_session=False),
        ),
        latest_failure=Subquery(
            Payment.objects.filter(invoice=OuterRef("pk")).order_by("-attempt").values("failure_code")[:1]
        ),
    ).values("pk", "team_id", "scheduled", "attempts", "in_flight", "first_failure", "latest_failure")
    for row in rows:
        if row["first_failure"] is None or row["in_flight"]:
            continue
        retries_done = row["scheduled"] - 1
        if row["latest_failure"] == Payment.NEEDS_AUTHENTICATION:  # only the Owner can authorize it: no retry
            if now >= row["first_failure"] + timedelta(days=schedule[-1] if schedule else 0):
                to_suspend.add(row["team_id"])
        elif retries_done < len(schedule):
            if now >= row["first_failure"] + timedelta(days=schedule[retries_done]):
                to_retry.append((row["pk"], row["attempts"] + 1))
        else:
            to_suspend.add(row["team_id"])
    return to_retry, sorted(to_suspend)


def mark_past_due(team_id: int) -> None:
    """A charge failed: an active subscription becomes past due (suspension comes after the retries)."""
    Subscription.objects.filter(team_id=team_id, status=Subscription.Status.ACTIVE).update(
        status=Subscription.Status.PAST_DUE
    )


def suspend_if_still_due(team_id: int) -> bool:
    """The hourly task's suspension: only if, now, the team still has a past-due invoice whose retries are
    all spent (the Owner may have paid since the task looked)."""
    with transaction.atomic():
        # A payment being recorded updates this row in its transaction: once we hold it, the check
        # below sees that payment's outcome (and a later one lifts what we do here).
        Subscription.objects.select_for_update().filter(team_id=team_id).first()
        if team_id not in due_retries(team_id=team_id)[1]:
            return False
        return suspend(team_id)


def suspend(team_id: int) -> bool:
    """Suspend the team after its last retry failed; False if it already was."""
    with transaction.atomic():
        changed = (
            Subscription.objects.filter(team_id=team_id)
            .exclude(status=Subscription.Status.SUSPENDED)
            .update(status=Subscription.Status.SUSPENDED)
        )
        if not changed:
            return False
        BillingEvent.objects.create(team_id=team_id, kind=BillingEvent.Kind.SUSPENDED, after={"status": "suspended"})
        recipients = owner_emails(team_id)
        invoice = Invoice.objects.filter(team_id=team_id, status=Invoice.Status.PAST_DUE).order_by("issued_at").first()
        if recipients:
            context = {"invoice": invoice}
            queue_templated_email("account-suspended", to=recipients, context=context)
    return True


def lift_if_paid_up(team_id: int) -> bool:
    """Back to active once no invoice is past due (called when a payment succeeds); True if it changed."""
    if Invoice.objects.filter(team_id=team_id, status=Invoice.Status.PAST_DUE).exists():
        return False
    changed = (
        Subscription.objects.filter(team_id=team_id)
        .exclude(status=Subscription.Status.ACTIVE)
        .update(status=Subscription.Status.ACTIVE)
    )
    if changed:
        BillingEvent.objects.create(team_id=team_id, kind=BillingEvent.Kind.SUSPENDED, after={"status": "active"})
    return bool(changed)
