"""What logging a vehicle API request costs a worker: on the request path, and in its writer thread.

It creates its own PostgreSQL database (dropped and created each run) and measures, in process:

1. `ApiCall.log`, what every API request calls once answered (the row appended to the process's list);
2. `requestlog.buffer.write_rows`, what the writer thread does about once a second: one COPY of the rows gathered,
   as CPU time of this process per row and as wall time per row (the rest is PostgreSQL's, inserting the row and
   its index entries).

The whole request's cost with the log, over HTTP, is `make bench`'s (docs/request-log.md has both).

Run: .venv/bin/python bench/bench_request_log.py [rows]
     BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/ignition_bench_log (the default)
"""

import os
import sys
import time
import timeit
import uuid
from datetime import timedelta

from databases import setup_django  # bench/, the script's own folder

DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/ignition_bench_log"


def main(rows: int) -> None:
    setup_django(os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE))
    from django.utils import timezone

    from requestlog import buffer, services
    from requestlog.models import ApiRequest
    from tests.factories import TeamFactory
    from vehicles.api.base import ApiCall

    team = TeamFactory()
    call = ApiCall(request_id=str(uuid.uuid4()), method="GET", endpoint="/vehicles/{id}/odometer")
    call.authenticated(team_id=team.pk, application_id=1)
    call.vehicle_id = 2
    services._buffer._write = lambda taken: None  # the request path alone: the rows are dropped, not written
    calls = 100_000
    seconds = timeit.timeit(lambda: call.log(200, path="/v2.0/vehicles/x/odometer", price_cents=15), number=calls)
    print(f"ApiCall.log (on the request path): {seconds / calls * 1e6:.2f} µs a request ({calls:,} calls)")

    now = timezone.now()
    odometer = "/vehicles/{id}/odometer"
    gathered = []
    for i in range(rows):
        path = f"/v2.0/vehicles/{uuid.uuid4()}/odometer"
        row = (team.pk, now - timedelta(milliseconds=i), str(uuid.uuid4()), "", 1, 2, "GET", odometer, path, 200)
        gathered.append((*row, "", "", True, 15, 3))
    for attempt in range(1, 4):
        cpu, wall = time.process_time(), time.perf_counter()
        buffer.write_rows(gathered[:])
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(
            f"write_rows, run {attempt}: {rows:,} rows, {cpu / rows * 1e6:.1f} µs of this process's CPU a row, "
            f"{wall / rows * 1e6:.1f} µs of wall time a row"
        )
    assert ApiRequest.objects.count() == 3 * rows


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
