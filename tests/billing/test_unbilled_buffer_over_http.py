"""Non-billable counts over HTTP: gunicorn's workers gather them and write them by themselves.

A real gunicorn serves free requests on the test database: its thread writes the counts about once a second
while it serves, and a graceful stop (a deploy, `max_requests`, Ctrl-C) writes what is left. What a worker killed
outright loses is said in docs/performance.md.
"""

import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.db import connection
from django.db.models import Sum

from billing.models import UsageDaily
from tests.factories import ApplicationFactory, TeamFactory
from tests.processes import ROOT, database_url_for_subprocess, free_port, port_answers, wait_for
from tests.vehicles.api_helpers import make_grant, make_owner, make_token, make_vehicle

pytestmark = pytest.mark.django_db(transaction=True)  # gunicorn reads what the test wrote

GUNICORN = Path(sys.executable).parent / "gunicorn"


@contextmanager
def gunicorn(flush_seconds: int, log: Path):
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "dashboard.settings",
        "DATABASE_URL": database_url_for_subprocess(connection.settings_dict),
        "CACHE_URL": settings.CACHE_URL,
        "UNBILLED_FLUSH_SECONDS": str(flush_seconds),
    }
    command = [str(GUNICORN), "dashboard.wsgi", "--workers", "2", "--bind", f"127.0.0.1:{port}"]
    with open(log, "w") as output:  # a process group of its own: stopping it stops the workers too
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        assert wait_for(lambda: port_answers(port) or process.poll() is not None, timeout=60), log.read_text()
        assert process.poll() is None, log.read_text()
        yield process, f"http://127.0.0.1:{port}"
    finally:
        if process.poll() is None:
            process.terminate()  # graceful: the workers write their counts before the test's database goes
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


@pytest.fixture
def fleet():
    team = TeamFactory()
    owner = make_owner()
    token = make_token(make_grant(ApplicationFactory(team=team), owner, [make_vehicle(owner)]))
    return team, {"Authorization": f"Bearer {token}"}


def free_requests(base: str, headers: dict, count: int) -> list[int]:
    paths = ("/v2.0/user", "/v2.0/vehicles")
    return [requests.get(base + paths[i % 2], headers=headers, timeout=30).status_code for i in range(count)]


def non_billable(team) -> int:
    return UsageDaily.objects.filter(period__team=team).aggregate(n=Sum("non_billable"))["n"] or 0


def test_workers_write_their_counts_about_once_a_second_while_serving(fleet, tmp_path):
    team, headers = fleet
    with gunicorn(flush_seconds=1, log=tmp_path / "gunicorn.log") as (_, base):
        assert free_requests(base, headers, 6) == [200] * 6
        assert wait_for(lambda: non_billable(team) == 6, timeout=15), non_billable(team)
        assert free_requests(base, headers, 3) == [200] * 3
        assert wait_for(lambda: non_billable(team) == 9, timeout=15), non_billable(team)


def test_a_graceful_stop_writes_what_the_workers_gathered(fleet, tmp_path):
    team, headers = fleet
    log = tmp_path / "gunicorn.log"
    with gunicorn(flush_seconds=3600, log=log) as (process, base):
        assert free_requests(base, headers, 7) == [200] * 7
        assert non_billable(team) == 0  # gathered, not written: the thread would wait an hour
        process.send_signal(signal.SIGTERM)  # gunicorn's graceful stop
        assert process.wait(timeout=60) == 0, log.read_text()
    assert non_billable(team) == 7
