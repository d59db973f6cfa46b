"""What metering costs on the vehicle API's hot path: a billable read, metered (live vehicle) vs not (test mode),
with the statements each request sends (the over-HTTP figures are bench_http.py's).

Runs the real Django stack in process (test client, no network) against a throwaway test database
on whatever DATABASE_URL points to (SQLite by default; PostgreSQL for production-like figures).
Rate limits are off, so only the request and metering are measured.

Run: .venv/bin/python bench/bench_api_hot_path.py [requests]
     DATABASE_URL=postgres://postgres@127.0.0.1:5432/ignition_bench .venv/bin/python bench/bench_api_hot_path.py
"""

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
os.environ["VEHICLE_API_RATE_LIMITS_ENABLED"] = "0"

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402


def timed(client: Client, path: str, token: str, count: int, key=None) -> list[float]:
    """`key(i)` -> the i-th request's Idempotency-Key (None: no key)."""
    durations = []
    for i in range(count):
        headers = {"Idempotency-Key": key(i)} if key else {}
        start = time.perf_counter()
        response = client.get(path, HTTP_AUTHORIZATION=f"Bearer {token}", headers=headers)
        durations.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.content
    return durations


def statements(client: Client, path: str, token: str) -> str:
    """The statements one more request sends to the database, by their first words."""
    with CaptureQueriesContext(connection) as captured:
        client.get(path, HTTP_AUTHORIZATION=f"Bearer {token}")
    return f"{len(captured)} statements: " + "; ".join(" ".join(q["sql"].split()[:3]) for q in captured)


def report(label: str, durations: list[float]) -> None:
    ordered = sorted(durations)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    print(f"{label:<44} median {statistics.median(ordered):6.2f} ms   p95 {p95:6.2f} ms   n={len(ordered)}")


def main(count: int) -> None:
    setup_test_environment()
    # Non-billable counts are gathered as in production (billing/unbilled.py) but written by this script at the end:
    # the writer thread would hold a connection of its own to the database the script drops.
    settings.UNBILLED_FLUSH_SECONDS = 3600
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        from billing.models import Plan
        from tests.factories import ApplicationFactory, TeamFactory
        from tests.vehicles.api_helpers import make_grant, make_owner, make_token, make_vehicle
        from vehicles.models import Mode

        Plan.objects.filter(code="free").update(request_allowance=None)  # never hit the limit while measuring
        team = TeamFactory()
        application = ApplicationFactory(team=team)
        live, test = make_owner(), make_owner(mode=Mode.TEST)
        live_car, test_car = make_vehicle(live), make_vehicle(test)
        live_token = make_token(make_grant(application, live, [live_car]))
        test_token = make_token(make_grant(application, test, [test_car]))
        client = Client()
        timed(client, f"/v2.0/vehicles/{live_car.public_id}/odometer", live_token, 20)  # warm up
        timed(client, f"/v2.0/vehicles/{test_car.public_id}/odometer", test_token, 20)
        print(f"database: {connection.vendor}")
        report("GET /odometer, test mode (not metered)", timed(
            client, f"/v2.0/vehicles/{test_car.public_id}/odometer", test_token, count))  # fmt: skip
        report("GET /odometer, live (reserve + count)", timed(
            client, f"/v2.0/vehicles/{live_car.public_id}/odometer", live_token, count))  # fmt: skip
        report("GET /vehicles (free)", timed(client, "/v2.0/vehicles", live_token, count))
        print("not metered:", statements(client, f"/v2.0/vehicles/{test_car.public_id}/odometer", test_token))
        print("metered:    ", statements(client, f"/v2.0/vehicles/{live_car.public_id}/odometer", live_token))
        print("free:       ", statements(client, "/v2.0/vehicles", live_token))
        odometer = f"/v2.0/vehicles/{live_car.public_id}/odometer"
        keyed = timed(client, odometer, live_token, count, key=lambda i: f"new-{i}")
        report("GET /odometer, live, a new Idempotency-Key", keyed)
        report("GET /odometer, live, replayed", timed(client, odometer, live_token, count, key=lambda i: "new-0"))
    finally:
        from billing import metering

        metering.flush_unbilled()  # the non-billable counts gathered (billing/unbilled.py), before the tables go
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
