"""Usage alert emails to a team's Owners: 80% and 100% of the request allowance, and the vehicle allowance."""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import Membership
from accounts.roles import Role
from billing.models import UsageAlert
from notifications.outbox import queue_templated_email


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
