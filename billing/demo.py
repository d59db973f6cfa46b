"""Usage for the demo team, so a newcomer on `make run` sees a Billing tab with history at once.

The usage goes through the real metering service (backdated), so the counters, events, rollups and
alerts are exactly what real traffic would have produced. Idempotent: a period that already has
usage is left alone.
"""

import random
from datetime import timedelta

from django.utils import timezone

from accounts.models import Application, Team
from billing import metering
from billing.models import BillingPeriod, UsageDaily

DEMO_HISTORY_DAYS = 20
BILLABLE_ENDPOINTS = [
    "/vehicles/{id}",
    "/vehicles/{id}/odometer",
    "/vehicles/{id}/location",
    "/vehicles/{id}/security",
    "/vehicles/{id}/battery",
]
FREE_ENDPOINTS = ["/vehicles", "/user", "/vehicles/{id}/permissions"]


def seed_demo_usage(*, team: Team, application: Application, vehicle_ids: list[int], now=None) -> int:
    """Fill the demo team's current period with a few plausible requests a day; returns how many were billable."""
    now = now or timezone.now()
    if not BillingPeriod.objects.filter(team=team).exists():
        # A brand-new demo team: start its billing cycle three weeks ago, so there is a history to show.
        Team.objects.filter(pk=team.pk).update(created_at=now - timedelta(days=DEMO_HISTORY_DAYS))
    period = metering.current_period(team.pk, now)
    if period.requests_used or UsageDaily.objects.filter(period=period).exists():
        return 0
    rng = random.Random(f"demo-usage:{team.pk}:{period.start.date()}")  # noqa: S311 (demo data, repeatable)
    counted, day = 0, period.start
    while day < now:
        for index in range(rng.randint(0, 3)):  # at most 63 in 21 days: below Free's 80% alert
            moment = min(day + timedelta(hours=rng.randint(8, 20), minutes=rng.randint(0, 59)), now)
            metering.reserve(
                request_id=f"demo:{team.pk}:{day:%Y%m%d}:{index}",
                team_id=team.pk,
                application_id=application.pk,
                vehicle_id=rng.choice(vehicle_ids),
                endpoint=rng.choice(BILLABLE_ENDPOINTS),
                now=moment,
            )
            counted += 1
        for _ in range(rng.randint(1, 3)):
            moment = min(day + timedelta(hours=rng.randint(8, 20)), now)
            endpoint = rng.choice(FREE_ENDPOINTS)
            vehicle_id = rng.choice(vehicle_ids) if "{id}" in endpoint else None
            metering.record_unbilled(
                team_id=team.pk, application_id=application.pk, vehicle_id=vehicle_id, endpoint=endpoint, now=moment
            )
        day += timedelta(days=1)
    return counted
