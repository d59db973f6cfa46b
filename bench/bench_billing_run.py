"""The billing run at scale: closing every team's period, timed against a plain GROUP BY over the same usage rows.

It creates its own PostgreSQL database (dropped and created each run), migrates it, loads `--teams` Pay-as-you-go
teams, each with a closed-month period of usage (30 days × `--endpoints` endpoints of daily rollups, loaded with
COPY), then times:

1. `SELECT period_id, endpoint, unit_price_cents, SUM(billable) … GROUP BY …` over all the rollups: the least work
   that can price every period (three times, the fastest kept);
2. `billing.closing.close_due_periods`, as beat's task runs it: every period closed, rated and invoiced (one
   transaction each, under its row lock), and the next period opened.

Run: .venv/bin/python bench/bench_billing_run.py --teams 10000
     BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/ignition_bench_billing (the default)
"""

import argparse
import io
import os
import time
from datetime import UTC, datetime, timedelta

from databases import setup_django  # bench/, the script's own folder

DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/ignition_bench_billing"
MONTH_START, MONTH_END = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
ENDPOINTS = ["/vehicles/{id}/odometer", "/vehicles/{id}/location", "/vehicles/{id}/security", "/vehicles/{id}/vin"]


def load(teams: int, endpoints: int) -> int:
    """The teams, their subscriptions and periods (ORM bulk inserts), and the rollups (COPY); rollup rows loaded."""
    from django.db import connection

    from accounts.models import Team
    from billing.models import BillingPeriod, Plan, Subscription

    payg = Plan.objects.get(code="payg")
    Team.objects.bulk_create([Team(name=f"Fleet {n}") for n in range(teams)], batch_size=5000)
    team_ids = list(Team.objects.order_by("pk").values_list("pk", flat=True))
    Team.objects.update(created_at=MONTH_START)  # periods are anchored to the day a team was created
    Subscription.objects.bulk_create([Subscription(team_id=t, plan=payg) for t in team_ids], batch_size=5000)
    BillingPeriod.objects.bulk_create(
        [
            BillingPeriod(
                team_id=t,
                start=MONTH_START,
                end=MONTH_END,
                plan=payg,
                request_allowance=None,
                vehicle_allowance=None,
                unit_price_cents=15,
                requests_used=30 * endpoints * 3,
            )
            for t in team_ids
        ],
        batch_size=5000,
    )
    period_ids = list(BillingPeriod.objects.order_by("pk").values_list("pk", flat=True))
    rows = io.StringIO()
    count = 0
    for period_id in period_ids:
        for day in range(30):
            date = (MONTH_START + timedelta(days=day)).date().isoformat()
            for endpoint in ENDPOINTS[:endpoints]:
                rows.write(f"{period_id}\t{date}\t1\t1\t{endpoint}\t15\t0\t3\t1\t45\n")
                count += 1
    columns = (
        "period_id, day, application_key, vehicle_key, endpoint, unit_price_cents, contract_key, billable, "
        "non_billable, amount_cents"
    )
    with connection.cursor() as cursor, cursor.copy(f"COPY billing_usagedaily ({columns}) FROM STDIN") as copy:
        copy.write(rows.getvalue())
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--teams", type=int, default=10_000)
    parser.add_argument("--endpoints", type=int, default=2, choices=range(1, len(ENDPOINTS) + 1))
    args = parser.parse_args()
    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE)
    setup_django(database_url)
    from django.db import connection

    from billing import closing
    from billing.models import Invoice

    started = time.perf_counter()
    rows = load(args.teams, args.endpoints)
    print(f"loaded {args.teams:,} teams, {rows:,} rollup rows in {time.perf_counter() - started:.1f} s")

    # Three times, the fastest kept: the first scan after the load also sets the rows' hint bits (a write), which
    # made a single timing move by a third from run to run.
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT period_id, endpoint, unit_price_cents, SUM(billable) FROM billing_usagedaily "
                "WHERE billable > 0 AND contract_key = 0 GROUP BY period_id, endpoint, unit_price_cents"
            )
            grouped = len(cursor.fetchall())
        timings.append(time.perf_counter() - started)
    group_by = min(timings)
    each = ", ".join(f"{timing:.2f}" for timing in timings)
    print(f"plain GROUP BY: {grouped:,} groups in {group_by:.2f} s (the fastest of {each})")

    started = time.perf_counter()
    issued = closing.close_due_periods(MONTH_END + timedelta(hours=2))
    close = time.perf_counter() - started
    assert len(issued) == args.teams == Invoice.objects.count(), (len(issued), args.teams)
    expected = 30 * args.endpoints * 3 * 15
    assert set(Invoice.objects.values_list("total_cents", flat=True)) == {expected}, "every invoice is the same"
    print(
        f"close_due_periods: {len(issued):,} periods closed and invoiced in {close:.1f} s "
        f"({close / len(issued) * 1000:.2f} ms each), {close / group_by:.0f} × the GROUP BY"
    )


if __name__ == "__main__":
    main()
