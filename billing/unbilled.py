"""Non-billable counts gathered in each process's memory and written about once a second.

A free endpoint, a failure or a test-mode request costs nothing, but it is counted in the team's daily rollup
(the Billing tab's and the usage API's non-billable figures). Writing that count on every request cost the API
half its unmetered throughput (docs/performance.md), so `billing.metering.record_unbilled` adds it here instead,
and a thread of the process writes what has gathered every `UNBILLED_FLUSH_SECONDS`, and once more when the
process exits through `sys.exit` (gunicorn's workers do, on every graceful path). Billable requests never come
here: their count is written, durably, before the vehicle is called.

The thread, the write at exit and what happens at a fork are dashboard/buffers.py's. What this can lose: a
process killed without a chance to exit (SIGKILL, the OOM killer), or one that ends with `os._exit` (Celery's pool
children: nothing counts non-billable requests there today; a task that did would call `metering.flush_unbilled`
itself), loses the counts gathered since the last write, at most `UNBILLED_FLUSH_SECONDS` of them plus a write in
progress; a stream whose write fails is logged with what it drops. It never counts a request twice: what is taken
out of the buffer to be written is never put back.
"""

from datetime import date, datetime
from typing import NamedTuple

from dashboard.buffers import ProcessBuffer, with_flush_at_exit


class Stream(NamedTuple):
    """What one rollup row's non-billable count is kept per (the team's period is found when written)."""

    team_id: int
    application_id: int | None
    vehicle_id: int | None
    endpoint: str
    day: date


class Gathered(NamedTuple):
    count: int
    first_at: datetime  # the moment of the stream's first request: the period it is written to holds it


class UnbilledBuffer(ProcessBuffer):
    """The counts of one process, per stream, written with `write(gathered)` every `interval()` seconds."""

    what = "non-billable request counts"

    def _empty(self) -> dict:
        return {}

    def _size(self, taken: dict) -> int:
        return sum(count for count, _ in taken.values())

    def _prepare(self, taken: dict) -> dict[Stream, Gathered]:
        return {stream: Gathered(count, at) for stream, (count, at) in taken.items()}

    def add(self, stream: Stream, at: datetime) -> None:
        with self._gathering() as counts:
            gathered = counts.get(stream)
            if gathered is None:
                counts[stream] = [1, at]
            else:
                gathered[0] += 1


def buffer_with_flush_at_exit(write, interval) -> UnbilledBuffer:
    return with_flush_at_exit(UnbilledBuffer(write, interval))
