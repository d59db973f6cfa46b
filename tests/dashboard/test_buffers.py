"""dashboard/buffers.py: what a process gathers on a hot path, written by the process's one writer thread.

The non-billable counts and the request log ride on it (tests/billing/test_unbilled_buffer.py,
tests/requestlog/test_request_log_buffer.py, and both over HTTP with gunicorn)."""

import threading
import time

from dashboard.buffers import ProcessBuffer


class Items(ProcessBuffer):
    what = "test items"

    def _empty(self) -> list:
        return []

    def add(self, item) -> None:
        with self._gathering() as items:
            items.append(item)


def wait_for(condition, timeout=10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_one_thread_writes_every_buffer_of_the_process_each_at_its_own_pace():
    """One writer (and so one database connection) per process, however many buffers it has."""
    written = {"fast": [], "slow": []}
    writers = set()

    def writer_of(name):
        def write(items):
            writers.add(threading.current_thread().name)
            written[name].extend(items)

        return write

    fast = Items(writer_of("fast"), interval=lambda: 0.1)
    slow = Items(writer_of("slow"), interval=lambda: 3600)
    fast.add(1)
    slow.add("a")
    assert wait_for(lambda: written["fast"] == [1])
    fast.add(2)
    assert wait_for(lambda: written["fast"] == [1, 2])
    assert written["slow"] == [] and slow.pending() == 1  # its own pace: an hour
    assert writers == {"buffers-writer"}
    assert [t.name for t in threading.enumerate()].count("buffers-writer") == 1
    assert slow.flush() == 1 and written["slow"] == ["a"]


def test_a_failing_write_does_not_stop_the_writer_for_the_others(caplog):
    written = []

    def broken(items):
        raise RuntimeError("down")

    failing = Items(broken, interval=lambda: 0.1)
    working = Items(written.extend, interval=lambda: 0.1)
    failing.add("x")
    working.add("y")
    assert wait_for(lambda: written == ["y"])
    assert wait_for(lambda: "Could not write 1 test items" in caplog.text)
    working.add("z")
    assert wait_for(lambda: written == ["y", "z"])
