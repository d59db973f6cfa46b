"""Helpers for tests that start other processes (a Celery worker, localstripe, the system stack)."""

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]  # the repository: where manage.py and the Procfile are


def database_url_for_subprocess(settings_dict) -> str:
    """A DATABASE_URL pointing a child process at the database these settings name (the test database)."""
    if settings_dict["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{settings_dict['NAME']}"
    user = quote(settings_dict.get("USER") or "")
    password = quote(settings_dict.get("PASSWORD") or "")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    return f"postgres://{auth}{settings_dict.get('HOST') or ''}{port}/{settings_dict['NAME']}"


def free_port() -> int:
    """A TCP port free on the loopback interface now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_answers(port: int) -> bool:
    """Whether something accepts TCP connections on this loopback port now."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for(condition, *, timeout: float, interval: float = 0.2):
    """Poll `condition` until it returns something true (returned) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(interval)
    return False


@contextmanager
def gunicorn(log: Path, *, workers: int = 2, **env):
    """Ignition under a real gunicorn on the test database (a test that uses it commits: transaction=True), with
    `env` added to its environment. Yields the master process and the base URL. Stopped gracefully at the end (its
    workers write what they gathered), in its own process group so that nothing outlives the test."""
    from django.conf import settings
    from django.db import connection

    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "dashboard.settings",
        "DATABASE_URL": database_url_for_subprocess(connection.settings_dict),
        "CACHE_URL": settings.CACHE_URL,
        **env,
    }
    command = [str(Path(sys.executable).parent / "gunicorn"), "dashboard.wsgi", "--workers", str(workers)]
    command += ["--bind", f"127.0.0.1:{port}"]
    with open(log, "w") as output:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        assert wait_for(lambda: port_answers(port) or process.poll() is not None, timeout=60), log.read_text()
        assert process.poll() is None, log.read_text()
        yield process, f"http://127.0.0.1:{port}"
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
