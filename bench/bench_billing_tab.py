"""The Billing tab at volume: its queries and time with 0 to 1,000,000 usage events in the current period.

It creates its own PostgreSQL database (dropped and created each run), migrates it, and makes a Pay-as-you-go team
whose current period it fills, step by step, with usage events (loaded with COPY: 20 vehicles, 4 endpoints, spread
over the period's days) and the daily rollups, counters and active vehicles that metering would have written for
them. At each step it renders the tab as the team's Owner (Django's test client, in process) and prints the
number of queries and the median time of 5 renders. The tab reads the period's counters and rollups, never the
events, so the query count must not move.

Run: .venv/bin/python bench/bench_billing_tab.py
     BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/ignition_bench_tab (the default)
"""

import io
import os
import statistics
import time
from collections import Counter
from datetime import timedelta

from databases import setup_django  # bench/, the script's own folder

DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/ignition_bench_tab"
STEPS = [0, 1_000, 100_000, 1_000_000]
ENDPOINTS = ["/vehicles/{id}/odometer", "/vehicles/{id}/location", "/vehicles/{id}/security", "/vehicles/{id}/vin"]
VEHICLES = 20
PRICE = 15


def add_events(period, application_id: int, vehicle_ids: list[int], first: int, count: int) -> None:
    """`count` more usage events (numbered from `first`) and what metering writes with them, in bulk."""
    from django.db import connection
    from django.db.models import F

    from billing.models import ActiveVehicle, BillingPeriod, UsageDaily

    days = max(1, (period.end - period.start).days - 1)
    events = io.StringIO()
    daily = Counter()
    for number in range(first, first + count):
        vehicle = vehicle_ids[(number // 7) % len(vehicle_ids)]  # strides apart: every day × vehicle × endpoint
        endpoint = ENDPOINTS[(number // 3) % len(ENDPOINTS)]
        moment = period.start + timedelta(days=number % days, seconds=number % 86_000)
        events.write(
            f"e{number}\t{period.pk}\t{application_id}\t{vehicle}\t{endpoint}\t{PRICE}\t{moment.isoformat()}\n"
        )
        daily[(moment.date(), vehicle, endpoint)] += 1
    columns = "request_id, period_id, application_id, vehicle_id, endpoint, unit_price_cents, occurred_at"
    with connection.cursor() as cursor, cursor.copy(f"COPY billing_usageevent ({columns}) FROM STDIN") as copy:
        copy.write(events.getvalue())
    for (day, vehicle, endpoint), requests in daily.items():
        key = {"period": period, "day": day, "application_key": application_id, "vehicle_key": vehicle}
        row, _ = UsageDaily.objects.get_or_create(**key, endpoint=endpoint, unit_price_cents=PRICE)
        UsageDaily.objects.filter(pk=row.pk).update(
            billable=F("billable") + requests, amount_cents=F("amount_cents") + requests * PRICE
        )
    for vehicle in vehicle_ids:
        first = {"first_request_at": period.start}
        ActiveVehicle.objects.get_or_create(period=period, vehicle_id=vehicle, defaults=first)
    BillingPeriod.objects.filter(pk=period.pk).update(
        requests_used=F("requests_used") + count,
        accrued_cents=F("accrued_cents") + count * PRICE,
        vehicles_active=ActiveVehicle.objects.filter(period=period).count(),
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def render(client) -> tuple[int, float]:
    """Queries of one render, and the median time of 5."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times = []
    for _ in range(5):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get("/billing/")
            times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
    return len(captured), statistics.median(times)


def main() -> None:
    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE)
    # DEBUG on: pages find their static files without collectstatic; queries are counted the same.
    setup_django(database_url, DEBUG="1", ALLOWED_HOSTS="testserver", SECURE_SSL_REDIRECT="0")
    from django.test import Client

    from billing import lifecycle
    from billing.models import Plan, Subscription, UsageDaily
    from tests.factories import ApplicationFactory, MembershipFactory
    from tests.vehicles.api_helpers import make_owner, make_vehicle

    membership = MembershipFactory(role="owner")
    team = membership.team
    lifecycle.subscription_for(team.pk)
    Subscription.objects.filter(team=team).update(plan=Plan.objects.get(code="payg"), card_on_file=True)
    Plan.objects.filter(code="payg").update(request_allowance=None)  # a million requests must not hit a limit
    period = lifecycle.current_period(team.pk)
    application = ApplicationFactory(team=team)
    owner = make_owner()
    vehicle_ids = [make_vehicle(owner).pk for _ in range(VEHICLES)]

    client = Client()
    client.force_login(membership.user)
    session = client.session
    session["current_team_id"] = team.pk
    session.save()

    print(f"{'usage events':>14} {'rollup rows':>12} {'queries':>8} {'median ms':>10}")
    loaded = 0
    for step in STEPS:
        if step > loaded:
            add_events(period, application.pk, vehicle_ids, loaded, step - loaded)
            loaded = step
        queries, median = render(client)
        rollups = UsageDaily.objects.filter(period=period).count()
        print(f"{loaded:>14,} {rollups:>12,} {queries:>8} {median:>10.1f}")


if __name__ == "__main__":
    main()
