import email
import email.policy
import importlib
import json
import os
import socketserver
import subprocess
import sys
import threading
import urllib.request
import uuid
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.apps import apps as django_apps
from django.core.cache import cache
from django.db import transaction
from django.test import override_settings

from accounts.roles import Role
from tests import processes
from tests.factories import MembershipFactory, TeamFactory, UserFactory, run_seed_demo
from tests.processes import ROOT, database_url_for_subprocess, free_port

DB_FIXTURES = {"db", "transactional_db", "live_server", "django_db_reset_sequences"}

TEST_STRIPE_SECRET_KEY = "sk_test_ignition_tests"  # names the account (and its rate budget) to localstripe


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hasher():
    """Django's tests-only advice: a fast hasher. PBKDF2 takes about a second a password on this machine, and
    nearly every test makes a user. Processes the tests start (workers, the system stack) keep the real one."""
    fast = override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])
    fast.enable()
    yield
    fast.disable()


@pytest.fixture(scope="session", autouse=True)
def _unbilled_counts_written_at_once():
    """In this process non-billable counts and request log rows are written with their request
    (UNBILLED_FLUSH_SECONDS=0, REQUEST_LOG_FLUSH_SECONDS=0), so a test reads them at once; the processes the tests
    start keep the default buffers (tests/billing/test_unbilled_*, tests/requestlog/)."""
    at_once = override_settings(UNBILLED_FLUSH_SECONDS=0, REQUEST_LOG_FLUSH_SECONDS=0)
    at_once.enable()
    yield
    at_once.disable()


@pytest.fixture
def request_log_gathered(settings, monkeypatch):
    """Request log rows gathered as in production (no statement on the request path), in a buffer of the test's own
    whose thread waits an hour: the test writes them with requestlog.services.flush(), or they are dropped."""
    from requestlog import buffer, services

    settings.REQUEST_LOG_FLUSH_SECONDS = 1
    gathered = buffer.RequestLogBuffer(buffer.write_rows, lambda: 3600)
    monkeypatch.setattr(services, "_buffer", gathered)
    return gathered


@pytest.fixture(scope="session", autouse=True)
def _tasks_to_a_queue_of_the_sessions_own():
    """What the tests queue in this process (emails on commit, charges) goes to a queue no worker reads, purged at
    the end: not the default queue, which a developer's `make run` worker on the same broker would run."""
    from dashboard.celery import app

    queue, default = f"test-unread-{uuid.uuid4().hex[:12]}", app.conf.task_default_queue
    app.conf.task_default_queue = queue
    yield
    app.conf.task_default_queue = default
    try:
        with app.connection_for_write() as connection:
            connection.default_channel.queue_purge(queue)
    except Exception:  # noqa: BLE001 - never declared (nothing was queued), or the broker is gone: nothing to purge
        pass


@pytest.fixture(scope="session", autouse=True)
def _a_redis_cache_of_its_own(worker_id):
    """With pytest-xdist (`-n 2`), each worker process its own Redis database: tests clear the cache (FLUSHDB)."""
    from django.conf import settings

    url = urlsplit(settings.CACHE_URL)
    if worker_id == "master" or url.scheme not in ("redis", "rediss"):
        yield
        return
    database = int(url.path.strip("/") or 0) + 1 + int(worker_id.removeprefix("gw"))
    own = urlunsplit(url._replace(path=f"/{database}"))
    with override_settings(CACHE_URL=own, CACHES={"default": {**settings.CACHES["default"], "LOCATION": own}}):
        yield


@pytest.fixture(autouse=True)
def _fresh_cache(request):
    # allauth's rate limits live in the (database) cache; start every database test from zero.
    marker = request.node.get_closest_marker("django_db")
    if not marker and not DB_FIXTURES & set(request.fixturenames):
        yield
        return
    transactional = "transactional_db" in request.fixturenames or (marker and marker.kwargs.get("transaction"))
    request.getfixturevalue("transactional_db" if transactional else "db")
    if transactional:
        # Flushing after a transactional test also empties the rows data migrations seeded: put them back.
        importlib.import_module("billing.migrations.0002_seed_plans").seed(django_apps, None)
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(scope="module")
def seeded_demo(django_db_setup, django_db_blocker):
    """`seed_demo` run once for a module whose tests read what it made (it takes seconds): its two outputs.

    The seeding sits in a transaction kept open for the module and rolled back after it; each test's own
    transaction is a savepoint inside it, so what a test changes (reseeding, a rotated secret) is undone
    after that test.
    """
    with django_db_blocker.unblock(), transaction.atomic():
        text = run_seed_demo()
        credentials = json.loads(run_seed_demo("--json"))  # a second run, as the README's scripts do
        yield SimpleNamespace(text=text, json=credentials)
        transaction.set_rollback(True)


@pytest.fixture
def team(db):
    return TeamFactory(name="Acme Mobility")


@pytest.fixture
def owner(team):
    return MembershipFactory(team=team, role=Role.OWNER).user


@pytest.fixture
def make_member(team):
    def make(role, *, team=team, email=None):
        kwargs = {"email": email} if email else {}
        return MembershipFactory(team=team, role=role, user=UserFactory(**kwargs))

    return make


@pytest.fixture
def other_team(db):
    """A second tenant with its own Owner, for isolation tests."""
    team = TeamFactory(name="Rival Motors")
    MembershipFactory(team=team, role=Role.OWNER)
    return team


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


def login_as(client, membership):
    client.force_login(membership.user)
    session = client.session
    session["current_team_id"] = membership.team_id
    session.save()
    return client


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker, tmp_path_factory, smtp_server, localstripe):
    """A real Celery worker process on the configured broker, reading the test database.

    It consumes a queue of its own, so a developer's `make run` worker (or another test run
    on the same Redis) never takes our messages; the tasks it sends itself go there too
    (CELERY_QUEUE). Its emails go to `smtp_server`, retried after a second; its Stripe calls to `localstripe`.
    Yields the queue name to send tasks to.
    """
    from django.conf import settings
    from django.db import connection

    with django_db_blocker.unblock():
        database_url = database_url_for_subprocess(connection.settings_dict)
    queue = f"test-{uuid.uuid4().hex[:12]}"
    log_path = tmp_path_factory.mktemp("celery") / "worker.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "dashboard.settings",
        "CELERY_QUEUE": queue,  # what it consumes, and where the tasks it sends itself go
        "EMAIL_URL": f"smtp://127.0.0.1:{smtp_server.port}",
        "EMAIL_OUTBOX_RETRY_SECONDS": "1",
        # Its Stripe calls go through the strict layer too (with no STRIPE_API_BASE it would call port 8420), with
        # the test process's key and cache: one Stripe account, one shared rate budget, as in production.
        "STRIPE_API_BASE": localstripe.api_base,
        "STRIPE_JS_URL": localstripe.js_url,
        "STRIPE_SECRET_KEY": TEST_STRIPE_SECRET_KEY,
        "CACHE_URL": settings.CACHE_URL,
    }
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "dashboard", "worker", "--pool", "solo", "--queues", queue,
             "--without-mingle", "--without-gossip", "--loglevel", "INFO", "--hostname", f"{queue}@%h"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        processes.wait_for(lambda: "ready." in log_path.read_text() or process.poll() is not None, timeout=60)
        assert process.poll() is None, f"Celery worker exited early:\n{log_path.read_text()}"
        yield SimpleNamespace(queue=queue, log=log_path)
    finally:
        _stop(process)


@pytest.fixture
def tasks_to_worker(celery_worker):
    """Tasks this process enqueues (e.g. on commit) go to the test worker's queue for the test's length."""
    from dashboard.celery import app

    default = app.conf.task_default_queue
    app.conf.task_default_queue = celery_worker.queue
    yield celery_worker
    app.conf.task_default_queue = default


@pytest.fixture
def send_queued_emails():
    """Send, in this process, every email queued in the outbox: they land in `django.core.mail.outbox`.

    Tests do not run Celery eagerly, so the outbox's task (notifications.tasks.send_email) only runs
    on a worker. A test that reads the emails its code queued calls this once, as a worker would
    have sent them; it returns how many it sent. Proof on a real worker: tests/notifications/.
    """
    from notifications.models import OutboundEmail
    from notifications.outbox import send_queued_email

    def send() -> int:
        queued = OutboundEmail.objects.filter(status=OutboundEmail.Status.QUEUED).order_by("pk")
        return sum(send_queued_email(email_id) for email_id in queued.values_list("pk", flat=True))

    return send


@pytest.fixture
def mail_server_down(settings):
    """This process's email goes through the real SMTP backend to a loopback port nobody listens on: every
    connection is refused (ConnectionRefusedError), as when the mail server is down. Returns `settings`."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()
    return settings


class _SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for Django's backend (smtplib): EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT."""

    def handle(self):
        self._reply("220 ignition-tests ESMTP")
        while line := self.rfile.readline():
            verb = line[:4].upper()
            if verb == b"QUIT":
                self._reply("221 bye")
                return
            if verb == b"DATA":
                self._reply("354 end data with <CR><LF>.<CR><LF>")
                self.server.received.append(email.message_from_bytes(self._data(), policy=email.policy.default))
                self._reply("250 queued")
            else:
                self._reply("250 ok" if verb in (b"EHLO", b"HELO", b"MAIL", b"RCPT", b"RSET", b"NOOP") else "502 no")

    def _data(self) -> bytes:
        lines = []
        while (line := self.rfile.readline()) not in (b".\r\n", b""):
            lines.append(line[1:] if line.startswith(b"..") else line)  # undo dot-stuffing
        return b"".join(lines)

    def _reply(self, text: str) -> None:
        self.wfile.write(text.encode() + b"\r\n")


class _SmtpTcpServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True  # open the same port again right after `refuse()`
    daemon_threads = True


class SmtpServer:
    """A real SMTP server on a loopback port. `refuse()` closes the port, so a client's connection is refused
    (ConnectionRefusedError, as when a mail server is down); `answer()` opens it again."""

    def __init__(self):
        self.port = free_port()
        self.received: list[email.message.EmailMessage] = []
        self._server = None

    def answer(self) -> None:
        if self._server is None:
            self._server = _SmtpTcpServer(("127.0.0.1", self.port), _SmtpHandler)
            self._server.received = self.received
            threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def refuse(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def to(self, address: str) -> list:
        return [message for message in self.received if address in str(message["To"])]


@pytest.fixture(scope="session")
def smtp_server():
    """The test worker's mail server (see `SmtpServer`), answering unless a test says otherwise."""
    server = SmtpServer()
    server.answer()
    yield server
    server.refuse()


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
def wait_for():
    return processes.wait_for


def pytest_collection_modifyitems(config, items):
    """Tests marked `postgres` need real row locks; report them skipped, with why, elsewhere."""
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    if engine == "django.db.backends.postgresql":
        return
    skip = pytest.mark.skip(
        reason=f"needs PostgreSQL row locks; DATABASE_URL points to {engine.rsplit('.', 1)[-1]} "
        "(set DATABASE_URL=postgres://... to run it, as .ci/run does)"
    )
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


class StrictStripe:
    """localstripe behind tests/strict_stripe.py: `api_base` and `js_url` are the proxy's, `upstream` is localstripe's
    own base (for a test that must see what localstripe alone does). The helpers drive the proxy's /_strict/ controls.
    """

    def __init__(self, api_base: str, upstream: str, log: Path, proxy_log: Path):
        self.api_base, self.upstream, self.log, self.proxy_log = api_base, upstream, log, proxy_log
        self.js_url = f"{api_base}/js.stripe.com/v3/"

    def _control(self, method: str, name: str, data: dict | None = None) -> dict:
        body = json.dumps(data).encode() if data is not None else (b"{}" if method == "POST" else None)
        request = urllib.request.Request(f"{self.api_base}/_strict/{name}", data=body, method=method)
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (the test's own proxy, http)
            return json.loads(response.read() or b"{}")

    def stats(self) -> dict:
        """max_requests_in_a_second, rate_limited, replayed, idempotency_errors, requests ("POST /v1/…": n), …"""
        return self._control("GET", "stats")

    def reset_stats(self) -> None:
        """Counts from zero, and an empty rate-limit window (the requests of the tests before are forgotten)."""
        self._control("POST", "reset_stats")

    def configure(self, *, rate_limit: int) -> None:
        self._control("POST", "config", {"rate_limit": rate_limit})

    def fail_next(
        self, path: str, *, method: str = "POST", status: int = 500, count: int = 1, error_type: str = ""
    ) -> None:
        """The next `count` requests `method path` get `status` with an error of `error_type` (api_error for a
        5xx, invalid_request_error otherwise, unless named), unforwarded; a 5xx is saved under its idempotency key
        as Stripe saves it, so a retry with that key gets it again. `count=0` forgets the rules for that request."""
        control = {"path": path, "method": method, "status": status, "count": count, "type": error_type}
        self._control("POST", "fail_next", control)

    def slow_next(self, path: str, seconds: float, *, method: str = "POST", count: int = 1) -> None:
        """The next `count` requests `method path` wait `seconds` before they are forwarded: in flight meanwhile."""
        self._control("POST", "slow_next", {"path": path, "method": method, "seconds": seconds, "count": count})


def _answering(port: int, process: subprocess.Popen):
    """Done waiting once the port answers, or the process has exited (the caller then says why)."""
    return lambda: processes.port_answers(port) or process.poll() is not None


@pytest.fixture(scope="session")
def localstripe(tmp_path_factory):
    """A fresh localstripe on a free loopback port for this test session, behind the strict layer.

    The real `stripe` SDK talks to tests/strict_stripe.py, which forwards to localstripe and enforces what
    localstripe lets pass and Stripe does not (minimum amounts, idempotency keys, the rate limit, off-session
    authentication; see its docstring). `--from-scratch` so no state leaks in. A `StrictStripe`.
    """
    port, proxy_port = free_port(), free_port()
    logs = tmp_path_factory.mktemp("localstripe")
    log_path, proxy_log_path = logs / "localstripe.log", logs / "strict_stripe.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "localstripe"), "--port", str(port), "--from-scratch"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    upstream = f"http://127.0.0.1:{port}"
    proxy = None
    try:
        processes.wait_for(_answering(port, process), timeout=30)
        assert process.poll() is None, f"localstripe exited early:\n{log_path.read_text()}"
        with open(proxy_log_path, "w") as log:
            command = [sys.executable, "-m", "tests.strict_stripe", "--upstream", upstream, "--port", str(proxy_port)]
            proxy = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        processes.wait_for(_answering(proxy_port, proxy), timeout=30)
        assert proxy.poll() is None, f"strict_stripe exited early:\n{proxy_log_path.read_text()}"
        yield StrictStripe(f"http://127.0.0.1:{proxy_port}", upstream, log_path, proxy_log_path)
    finally:
        if proxy is not None:
            _stop(proxy)
        _stop(process)


@pytest.fixture
def stripe_settings(settings, localstripe):
    """Point the app's Stripe settings at this session's localstripe (behind the strict layer), its statistics and
    rate-limit window fresh: a test's own requests are limited, not those of the tests just before."""
    localstripe.reset_stats()
    settings.STRIPE_API_BASE = localstripe.api_base
    settings.STRIPE_JS_URL = localstripe.js_url
    settings.STRIPE_SECRET_KEY = TEST_STRIPE_SECRET_KEY
    return settings
