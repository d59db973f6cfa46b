"""The demo team's request log, so a newcomer on `make run` opens the Logs tab on real-looking traffic.

Built from what billing/demo.py metered (backdated): each counted request becomes its 200 with its price, each
non-billable count a free call, and two refusals a developer would meet are added (a vehicle the token does not
reach, a vehicle's rate limit). Idempotent: a team that already has a log is left alone.
"""

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from billing.models import UsageDaily, UsageEvent
from requestlog import services
from requestlog.models import ApiRequest
from vehicles.models import SimulatedVehicle

DEMO_NAMESPACE = uuid.UUID("6f1f0f5e-3c55-4b0e-9a5e-1c0d9b6f2a10")


@dataclass(frozen=True)
class _Demo:
    team_id: int
    application_id: int
    public_ids: dict[int, uuid.UUID]  # the demo vehicles' ids, as the API's paths name them

    def log(self, key: str, moment: datetime, endpoint: str, vehicle_id, status=200, *, price=None, error=None):
        public_id = self.public_ids.get(vehicle_id) if vehicle_id else None
        if "{id}" in endpoint and public_id is None:
            public_id = uuid.uuid5(DEMO_NAMESPACE, f"stranger:{key}")  # a vehicle the token does not reach
        services.record(
            team_id=self.team_id,
            occurred_at=moment,
            request_id=str(uuid.uuid5(DEMO_NAMESPACE, f"{self.team_id}:{key}")),
            application_id=self.application_id,
            vehicle_id=vehicle_id,
            method="GET",
            endpoint=endpoint,
            path="/v2.0" + endpoint.replace("{id}", str(public_id)),
            status=status,
            error_type=error[0] if error else None,
            error_code=error[1] if error else None,
            price_cents=price,
            duration_ms=3,
        )


def seed_demo_log(*, team, application) -> int:
    """Log the demo team's metered usage as its requests; how many rows were written."""
    if ApiRequest.objects.filter(team=team).exists():
        return 0
    rng = random.Random(f"demo-log:{team.pk}")  # noqa: S311 (demo data, repeatable)
    vehicles = SimulatedVehicle.objects.filter(connections__application=application).distinct()
    demo = _Demo(team.pk, application.pk, {vehicle.pk: vehicle.public_id for vehicle in vehicles})
    written, latest = 0, None
    for event in UsageEvent.objects.filter(period__team=team).order_by("occurred_at"):
        demo.log(event.request_id, event.occurred_at, event.endpoint, event.vehicle_id, price=event.unit_price_cents)
        written, latest = written + 1, event.occurred_at
    for daily in UsageDaily.objects.filter(period__team=team, non_billable__gt=0).order_by("day", "pk"):
        for n in range(daily.non_billable):
            moment = datetime.combine(daily.day, time(rng.randint(8, 20), rng.randint(0, 59)), tzinfo=UTC)
            demo.log(f"free:{daily.pk}:{n}", moment, daily.endpoint, daily.vehicle_key or None)
            written += 1
    if latest is not None:
        refused = latest + timedelta(minutes=3)
        demo.log("refused", refused, "/vehicles/{id}/location", None, 403, error=("PERMISSION", None))
        throttled, vehicle_id = ("RATE_LIMIT", "VEHICLE"), min(demo.public_ids, default=None)
        demo.log(
            "throttled", refused + timedelta(seconds=20), "/vehicles/{id}/odometer", vehicle_id, 429, error=throttled
        )
        written += 2
    services.flush()
    return written
