"""Exact limits under real concurrency: many HTTP clients at once against a live server on PostgreSQL.

DESIGN §4: "count, then insert" overshoots (112-130 of 100 under 32 clients); the conditional
UPDATE under the period row's lock must give exactly the allowance, and the books must agree.
"""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.db.models import Sum

from billing.models import ActiveVehicle, BillingPeriod, UsageDaily, UsageEvent
from tests.factories import ApplicationFactory, MembershipFactory, TeamFactory
from tests.vehicles.api_helpers import make_grant, make_owner, make_token, make_vehicle

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CLIENTS = 64


@pytest.fixture(autouse=True)
def _no_rate_limits(settings):
    settings.VEHICLE_API_RATE_LIMITS_ENABLED = False


def free_team_with_vehicles(count: int):
    team = TeamFactory(name="Hammer Co")
    MembershipFactory(team=team, role="owner")
    owner = make_owner()
    vehicles = [make_vehicle(owner) for _ in range(count)]
    token = make_token(make_grant(ApplicationFactory(team=team), owner, vehicles))
    return team, vehicles, token


def hammer(urls: list[str], token: str) -> list[int]:
    """GET every url from CLIENTS threads released at the same moment; the status codes."""
    start = threading.Barrier(min(CLIENTS, len(urls)))
    session_per_thread = threading.local()

    def get(url):
        if not hasattr(session_per_thread, "session"):
            session_per_thread.session = requests.Session()
            start.wait(timeout=30)
        return session_per_thread.session.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=60).status_code

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        return list(pool.map(get, urls))


def test_64_clients_get_exactly_the_free_allowance_and_the_books_agree(live_server):
    team, (vehicle,), token = free_team_with_vehicles(1)
    url = f"{live_server.url}/v2.0/vehicles/{vehicle.public_id}/odometer"

    statuses = hammer([url] * (CLIENTS * 3), token)

    assert statuses.count(200) == 100
    assert statuses.count(430) == CLIENTS * 3 - 100
    period = BillingPeriod.objects.get(team=team)
    daily = UsageDaily.objects.filter(period=period).aggregate(billable=Sum("billable"))["billable"]
    assert period.requests_used == UsageEvent.objects.filter(period=period).count() == daily == 100


def test_ten_vehicles_first_requests_in_parallel_activate_exactly_five(live_server):
    team, vehicles, token = free_team_with_vehicles(10)
    urls = [f"{live_server.url}/v2.0/vehicles/{vehicle.public_id}/vin" for vehicle in vehicles]

    statuses = hammer(urls, token)

    assert sorted(statuses) == [200] * 5 + [430] * 5
    period = BillingPeriod.objects.get(team=team)
    assert period.vehicles_active == ActiveVehicle.objects.filter(period=period).count() == 5
    assert period.requests_used == 5
