"""The request log's rows, gathered in each process and written by its thread about once a second.

Logging every API request with its own INSERT would add a round trip and a commit to every request; instead
`services.record` appends the row to this process's list, and dashboard/buffers.py's thread writes the list every
`REQUEST_LOG_FLUSH_SECONDS` (and at a graceful exit): on PostgreSQL with one COPY, elsewhere with one bulk insert.
What a crash can lose: a worker killed without a chance to exit loses at most that many seconds of its log rows;
a write that fails is logged with how many rows it drops. Billing never reads the log (UsageEvent is what is billed).
"""

from django.db import connections, router

from dashboard.buffers import ProcessBuffer, with_flush_at_exit
from requestlog.models import ApiRequest

# The order of the values in a gathered row (services.record builds them in this order).
COLUMNS = (
    "team_id",
    "occurred_at",
    "request_id",
    "batch_request_id",
    "application_key",
    "vehicle_key",
    "method",
    "endpoint",
    "path",
    "status",
    "error_type",
    "error_code",
    "billable",
    "price_cents",
    "duration_ms",
)


class RequestLogBuffer(ProcessBuffer):
    what = "request log rows"

    def _empty(self) -> list:
        return []

    def add(self, row: tuple) -> None:
        with self._gathering() as rows:
            rows.append(row)


def write_rows(rows: list[tuple]) -> None:
    """Insert gathered rows: COPY on PostgreSQL (no model instances, no per-row SQL), bulk_create elsewhere."""
    alias = router.db_for_write(ApiRequest)
    database = connections[alias]
    database.close_if_health_check_failed()  # the thread's connection may predate a database restart
    if database.vendor != "postgresql":
        objs = [ApiRequest(**dict(zip(COLUMNS, row, strict=True))) for row in rows]
        ApiRequest.objects.using(alias).bulk_create(objs)
        return
    # Only the model's own table and column names are formatted in.
    columns = ", ".join(f'"{ApiRequest._meta.get_field(name).column}"' for name in COLUMNS)
    statement = f'COPY "{ApiRequest._meta.db_table}" ({columns}) FROM STDIN'
    with database.cursor() as cursor, cursor.cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def new_buffer(interval) -> RequestLogBuffer:
    return with_flush_at_exit(RequestLogBuffer(write_rows, interval))
