"""What a process gathers in memory on a hot path and a thread of the same process writes every few seconds.

The vehicle API's non-billable counts (billing/unbilled.py) and its request log (requestlog/buffer.py) are written
this way, so that an API request adds to a Python container instead of making a database round trip. A subclass
says what is gathered (`_empty`, `_size`) and how an item is added (`add`, through `_gathering`); this class owns
the rest:

- one thread per process writes every buffer of the process (one database connection for them all); it starts with
  the first item in the process, so after gunicorn or Celery forked it, and writes each buffer every `interval()`
  seconds (0: the caller writes at once and nothing comes here);
- `flush()` takes everything gathered and hands it to `write` once: what is taken is never put back, so nothing is
  written twice; if `write` raises, it is logged with what it drops;
- `flush_at_exit` runs from `atexit` (gunicorn's workers exit through `sys.exit` on every graceful path) and waits
  for a write in progress first;
- a forked child drops its copy of the parent's items (the parent writes them) and of its locks.

What it can lose: a process killed without a chance to exit (SIGKILL, the OOM killer) loses what it gathered since
the last write, at most `interval()` seconds of it, plus a write in progress.
"""

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from typing import TypeVar

from django.db import connections

logger = logging.getLogger("dashboard.buffers")


class _Writer:
    """The one thread of a process that writes all its buffers, each every `interval()` seconds: one thread and one
    database connection for them all, whatever the number of buffers."""

    TICK = 0.05  # the shortest sleep between two looks at the buffers

    def __init__(self):
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # the child has no thread: it starts its own

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._buffers: list[ProcessBuffer] = []
        self._pid: int | None = None

    def register(self, buffer: "ProcessBuffer") -> None:
        with self._lock:
            if buffer not in self._buffers:
                self._buffers.append(buffer)
            if self._pid != os.getpid():
                threading.Thread(target=self._run, name="buffers-writer", daemon=True).start()
                self._pid = os.getpid()  # only once the thread runs: if it could not start, the next item retries

    def _run(self) -> None:
        due: dict[int, float] = {}
        while True:
            with self._lock:
                buffers = list(self._buffers)
            now, wait = time.monotonic(), 1.0
            for buffer in buffers:
                interval = buffer.interval()
                interval = interval if interval > 0 else 1  # 0: items are written at once, nothing comes here
                due.setdefault(id(buffer), now + interval)
                if now >= due[id(buffer)]:
                    try:
                        buffer.flush()
                    except Exception:  # the thread must outlive any one write: it writes every buffer
                        logger.exception("The writer of %s failed; it goes on", buffer.what)
                    due[id(buffer)] = time.monotonic() + interval
                wait = min(wait, max(due[id(buffer)] - time.monotonic(), self.TICK))
            try:
                # The thread has its own database connection: renew it as requests' connections are renewed.
                for connection in connections.all(initialized_only=True):
                    connection.close_if_unusable_or_obsolete()
            except Exception:
                logger.exception("The buffers' writer could not renew its database connection; it goes on")
            time.sleep(wait)


_writer = _Writer()


class ProcessBuffer:
    """Items of one process, written with `write(taken)` every `interval()` seconds by the process's writer thread."""

    what = "items"  # for the log: what a failed write drops

    def __init__(self, write: Callable, interval: Callable[[], float]):
        self._write, self.interval = write, interval
        self._reset()
        # A fork (gunicorn --preload, Celery's pool) must not inherit items to write twice, nor a lock held by a
        # thread the child does not have.
        os.register_at_fork(after_in_child=self._reset)

    # What a subclass gathers: an empty container, and how many items one holds.
    def _empty(self):
        raise NotImplementedError

    def _size(self, taken) -> int:
        return len(taken)

    def _prepare(self, taken):
        """What `write` is given for what was taken (by default, the container itself)."""
        return taken

    def _reset(self) -> None:
        self._lock = threading.Lock()  # the container
        self._writing = threading.Lock()  # one write at a time: the exit's waits for the thread's to finish
        self._pending = self._empty()
        self._owner_pid: int | None = None  # the process whose writer thread writes the items

    @contextmanager
    def _gathering(self):
        """The container, with the lock held; the buffer is handed to this process's writer thread first."""
        with self._lock:
            if self._owner_pid != os.getpid():
                _writer.register(self)
                self._owner_pid = os.getpid()
            yield self._pending

    def pending(self) -> int:
        """How many items are gathered here and not written yet."""
        with self._lock:
            return self._size(self._pending)

    def flush(self) -> int:
        """Write what has gathered; how many items it was (written, or dropped if the write failed)."""
        with self._writing:
            with self._lock:
                taken, self._pending = self._pending, self._empty()
            size = self._size(taken)
            if not size:
                return 0
            try:
                self._write(self._prepare(taken))
            except Exception:
                logger.exception("Could not write %d %s; they are dropped", size, self.what)
            return size

    def flush_at_exit(self) -> None:
        if self._owner_pid == os.getpid():
            self.flush()


Buffer = TypeVar("Buffer", bound=ProcessBuffer)


def with_flush_at_exit(buffer: Buffer) -> Buffer:
    atexit.register(buffer.flush_at_exit)  # gunicorn's workers exit through sys.exit, on every graceful path
    return buffer
