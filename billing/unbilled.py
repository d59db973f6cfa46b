"""Non-billable counts gathered in each process's memory and written about once a second.

A free endpoint, a failure or a test-mode request costs nothing, but it is counted in the team's daily rollup
(the Billing tab's and the usage API's non-billable figures). Writing that count on every request cost the API
half its unmetered throughput (docs/performance.md), so `billing.metering.record_unbilled` adds it here instead,
and a thread of the process writes what has gathered every `UNBILLED_FLUSH_SECONDS`, and once more when the
process exits through `sys.exit` (gunicorn's workers do, on every graceful path). Billable requests never come
here: their count is written, durably, before the vehicle is called.

What this can lose: a process killed without a chance to exit (SIGKILL, the OOM killer), or one that ends with
`os._exit` (Celery's pool children: nothing counts non-billable requests there today; a task that did would call
`metering.flush_unbilled` itself), loses the counts gathered since the last write, at most
`UNBILLED_FLUSH_SECONDS` of them plus a write in progress; a stream whose write fails is logged with what it
drops. It never counts a request twice: what is taken out of the buffer to be written is never put back.
"""

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import date, datetime
from typing import NamedTuple

from django.db import connections

logger = logging.getLogger("billing.unbilled")


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


class UnbilledBuffer:
    """The counts of one process, and the thread that writes them with `write(gathered)` every `interval` seconds.

    The thread starts with the first count in the process, so after gunicorn or Celery forked it; a fork drops its
    copy of the parent's counts (the parent writes them).
    """

    def __init__(self, write: Callable[[dict[Stream, Gathered]], None], interval: Callable[[], float]):
        self._write, self._interval = write, interval
        self._reset()
        # A fork (gunicorn --preload, Celery's pool) must not inherit counts to write twice, nor a lock held by a
        # thread the child does not have.
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._lock = threading.Lock()  # the counts
        self._writing = threading.Lock()  # one write at a time: the exit's waits for the thread's to finish
        self._counts: dict[Stream, list] = {}
        self._owner_pid: int | None = None  # the process whose thread writes the counts

    def add(self, stream: Stream, at: datetime) -> None:
        with self._lock:
            if self._owner_pid != os.getpid():
                self._start()
            gathered = self._counts.get(stream)
            if gathered is None:
                self._counts[stream] = [1, at]
            else:
                gathered[0] += 1

    def pending(self) -> int:
        """How many requests are counted here and not written yet."""
        with self._lock:
            return sum(count for count, _ in self._counts.values())

    def flush(self) -> int:
        """Write what has gathered (`write` logs and drops a stream it cannot write); how many requests it was."""
        with self._writing:
            with self._lock:
                counts, self._counts = self._counts, {}
            if not counts:
                return 0
            gathered = {stream: Gathered(count, at) for stream, (count, at) in counts.items()}
            total = sum(count for count, _ in counts.values())
            try:
                self._write(gathered)
            except Exception:
                logger.exception("Could not write %d non-billable request counts; they are dropped", total)
            return total

    def _start(self) -> None:
        """Called with the lock held, in a process that has no thread yet (a fork's counts were reset at the fork)."""
        threading.Thread(target=self._run, name="unbilled-flush", daemon=True).start()
        self._owner_pid = os.getpid()  # only once the thread runs: if it could not start, the next count retries

    def _run(self) -> None:
        while True:
            interval = self._interval()
            time.sleep(interval if interval > 0 else 1)  # 0: counts are written at once, nothing comes here
            try:
                self.flush()
                # The thread has its own database connection: renew it as requests' connections are renewed.
                for connection in connections.all(initialized_only=True):
                    connection.close_if_unusable_or_obsolete()
            except Exception:  # the thread must outlive any one write: it is the only one this process has
                logger.exception("The non-billable counts' writer failed; it goes on")

    def flush_at_exit(self) -> None:
        if self._owner_pid == os.getpid():
            self.flush()


def buffer_with_flush_at_exit(write, interval) -> UnbilledBuffer:
    buffer = UnbilledBuffer(write, interval)
    atexit.register(buffer.flush_at_exit)  # gunicorn's workers exit through sys.exit, on every graceful path
    return buffer
