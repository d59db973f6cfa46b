"""Usage alerts: raised once as a period crosses 80% and 100% of its request allowance or reaches its vehicle
allowance (by metering, in the reservation's transaction), then emailed to the team's Owners by a task."""

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Membership
from accounts.roles import Role
from billing.models import BillingEvent, BillingPeriod, UsageAlert
from notifications.outbox import queue_templated_email

logger = logging.getLogger("billing.alerts")

ALERT_PERCENT = 80  # the early alert, in whole percent of the allowance (integer arithmetic, as in SQL)


def owner_emails(team_id: int) -> list[str]:
    return list(
        Membership.objects.filter(team_id=team_id, role=Role.OWNER, user__is_active=True)
        .order_by("user__email")
        .values_list("user__email", flat=True)
    )


def send_usage_alert(alert_id: int) -> bool:
    """Email the alert once (queued in the outbox as it is stamped); False if it was already, or is gone."""
    with transaction.atomic():
        alert = (
            UsageAlert.objects.select_for_update(of=("self",))  # not the period row metering locks
            .select_related("period__team", "period__plan")
            .filter(pk=alert_id, emailed_at__isnull=True)
            .first()
        )
        if alert is None:
            return False
        recipients = owner_emails(alert.period.team_id)
        if recipients:
            period = alert.period
            context = {"alert": alert, "period": period, "team": period.team, "plan": period.plan}
            queue_templated_email("usage-alert", to=recipients, context=context)
        alert.emailed_at = timezone.now()
        alert.save(update_fields=["emailed_at"])
    return True


def pending_alert_ids(*, older_than_seconds: int = 60) -> list[int]:
    """Alerts whose email was never sent (its task lost, or the broker down), for the beat sweep."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    return list(UsageAlert.objects.filter(emailed_at__isnull=True, created_at__lt=cutoff).values_list("pk", flat=True))


def alert_threshold(allowance: int) -> int:
    """The request count that raises the early alert: ALERT_PERCENT of the allowance, rounded up."""
    return max(1, (allowance * ALERT_PERCENT + 99) // 100)


def check_alerts(period: BillingPeriod, state: dict, activated: bool) -> None:
    """Create the period's alerts as their thresholds are crossed; each exists once (unique), emailed on commit."""
    used, allowance, vehicles = state["requests_used"], state["request_allowance"], state["vehicle_allowance"]
    if allowance:
        if used == alert_threshold(allowance):
            create_alert(period, UsageAlert.Kind.REQUESTS_80, allowance)
        if used == allowance:
            create_alert(period, UsageAlert.Kind.REQUESTS_100, allowance)
    if activated and vehicles and state["vehicles_active"] + 1 == vehicles:
        create_alert(period, UsageAlert.Kind.VEHICLES_100, vehicles)


def create_alert(period: BillingPeriod, kind: str, allowance: int) -> None:
    try:
        with transaction.atomic():
            alert = UsageAlert.objects.create(period_id=period.pk, kind=kind, allowance=allowance)
    except IntegrityError:
        return  # already raised for this allowance this period
    if kind != UsageAlert.Kind.REQUESTS_80:
        BillingEvent.objects.create(
            team_id=period.team_id, period_id=period.pk, kind=BillingEvent.Kind.LIMIT_REACHED, after={"limit": kind}
        )
    transaction.on_commit(lambda: _enqueue(alert.pk))


def _enqueue(alert_id: int) -> None:
    """Queue the alert's email; if the broker is down, the beat sweep (send_pending_usage_alerts) sends it later."""
    from billing.tasks import send_usage_alert

    try:
        send_usage_alert.delay(alert_id)
    except Exception:  # the request was counted and must still be answered
        logger.exception("Could not queue usage alert %s; the sweep will send it", alert_id)


def note_limit_reached(period: BillingPeriod, code: str) -> None:
    """A refusal at the limit makes sure the period's 100% alert exists (e.g. after a plan's allowance was lowered)."""
    if code not in ("VEHICLE_LIMIT", "VEHICLE_REQUEST_LIMIT"):
        return
    vehicles = code == "VEHICLE_LIMIT"
    kind = UsageAlert.Kind.VEHICLES_100 if vehicles else UsageAlert.Kind.REQUESTS_100
    allowance = (period.vehicle_allowance if vehicles else period.request_allowance) or 0
    if not period.alerts.filter(kind=kind, allowance=allowance).exists():
        try:
            with transaction.atomic():
                create_alert(period, kind, allowance)
        except Exception:  # an alert must never turn a 430 into a 500
            logger.exception("Could not record the %s alert for period %s", kind, period.pk)
