"""Writing the request log: `record` on every vehicle API request, `purge_expired` from beat."""

from datetime import datetime

from django.conf import settings

from accounts.models import Team
from requestlog import buffer, selectors
from requestlog.models import ApiRequest

PURGE_BATCH = 5000  # rows per DELETE: each is short, so the purge never holds a long lock on the table


def record(
    *,
    team_id: int,
    occurred_at: datetime,
    request_id: str,
    application_id: int | None,
    vehicle_id: int | None,
    method: str,
    endpoint: str,
    path: str,
    status: int,
    error_type: str | None = None,
    error_code: str | None = None,
    price_cents: int | None = None,
    duration_ms: int = 0,
    batch_request_id: str = "",
) -> None:
    """Log one answered request of `team_id`'s; `price_cents` is given only for a request counted as billable.

    The row is written within REQUEST_LOG_FLUSH_SECONDS by this process's thread, in a transaction of its own; with
    the setting at 0, at once (inside a caller's transaction, with the caller's writes).
    """
    row = (
        team_id,
        occurred_at,
        request_id,
        batch_request_id,
        application_id or 0,
        vehicle_id or 0,
        method,
        endpoint,
        path[:255],
        status,
        error_type or "",
        error_code or "",
        price_cents is not None,
        price_cents or 0,
        duration_ms,
    )
    if settings.REQUEST_LOG_FLUSH_SECONDS > 0:
        _buffer.add(row)
        return
    buffer.write_rows([row])


def flush() -> int:
    """Write the rows this process has gathered now; how many."""
    return _buffer.flush()


def purge_expired(now: datetime | None = None) -> int:
    """Delete the rows older than REQUEST_LOG_RETENTION_DAYS, team by team and a batch at a time (each DELETE short,
    through the team's index: the table keeps no index on time alone); how many. Safe to run twice or concurrently."""
    cutoff = selectors.retention_cutoff(now)
    purged = 0
    for team_id in Team.objects.order_by("pk").values_list("pk", flat=True).iterator():
        expired = ApiRequest.objects.filter(team_id=team_id, occurred_at__lt=cutoff)
        while batch := list(expired.values_list("pk", flat=True)[:PURGE_BATCH]):
            purged += ApiRequest.objects.filter(pk__in=batch).delete()[0]
    return purged


_buffer = buffer.new_buffer(interval=lambda: settings.REQUEST_LOG_FLUSH_SECONDS)
