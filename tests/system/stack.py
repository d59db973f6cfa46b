"""The system as deployed, for the system tests: the Procfile's processes under a clock the test moves.

`Stack` migrates a database of its own with `manage.py migrate` (as a deploy does), starts localstripe behind
tests/strict_stripe.py (Stripe's documented strictness localstripe lacks; the app's LOCALSTRIPE_PORT is the proxy's),
then `honcho start -f Procfile` for the rest of what `make run` starts: gunicorn, a Celery worker, Celery
beat with the database scheduler, and the step that registers localstripe's webhook. Those run under
libfaketime (Debian's `faketime` package) reading one offset file, so moving `Clock` moves the clock of
gunicorn, the worker and beat at once (FAKETIME_NO_CACHE: read on every clock read); the test process follows with
time_machine. PostgreSQL, Redis and localstripe keep the real time, as Stripe would; the app never asks
them the time.
"""

import email
import glob
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import requests
import time_machine
from django.conf import settings

from tests.processes import ROOT, free_port, port_answers, wait_for

VENV_BIN = Path(sys.executable).parent
QUIET_SECONDS = 2  # how long the worker must stay idle before the clock moves
# The Procfile's processes that run under the moved clock; its `stripe` (localstripe) is started apart.
PROCESSES_UNDER_TEST = ("web", "worker", "beat", "stripe-webhook")


def faketime_library() -> str | None:
    """libfaketime's path, wherever Debian put it for this architecture; None if it is not installed."""
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1")) + sorted(glob.glob("/usr/lib/faketime/*.so.1"))
    return found[0] if found else None


def real_time() -> float:
    """The real time, whether or not the test process is travelling with time_machine."""
    return time_machine.escape_hatch.time.time() if time_machine.escape_hatch.is_travelling() else time.time()


def real_now() -> datetime:
    return datetime.fromtimestamp(real_time(), UTC)


class Clock:
    """The stack's clock: an offset from the real time, only ever moved forward."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0
        self._traveller = None
        path.write_text("+0s\n")

    def now(self) -> datetime:
        return datetime.fromtimestamp(real_time() + self.offset, UTC)

    def advance_to(self, moment: datetime) -> None:
        offset = int((moment - real_now()).total_seconds()) + 1
        if offset <= self.offset:
            return  # the clock never goes back; `moment` has come already
        self.offset = offset
        self.path.write_text(f"+{offset}s\n")
        self.stop()
        self._traveller = time_machine.travel(self.now(), tick=True)
        self._traveller.start()
        time.sleep(0.5)

    def stop(self) -> None:
        if self._traveller is not None:
            self._traveller.stop()
            self._traveller = None


@dataclass
class Stack:
    workdir: Path
    database_url: str
    clock: Clock = field(init=False)
    web_port: int = field(default_factory=free_port)
    stripe_port: int = field(default_factory=free_port)  # the strict layer's: what the app calls localstripe
    localstripe_port: int = field(default_factory=free_port)  # localstripe itself, behind it
    queue: str = field(default_factory=lambda: f"system-{os.getpid()}-{time.monotonic_ns() % 10**6}")
    extra_env: dict = field(default_factory=dict)
    process: subprocess.Popen | None = None
    stripe_process: subprocess.Popen | None = None
    strict_process: subprocess.Popen | None = None

    def __post_init__(self):
        self.mail_dir = self.workdir / "mail"
        self.mail_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "honcho.log"
        self.clock = Clock(self.workdir / "faketime")

    @property
    def site_root(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def stripe_api_base(self) -> str:
        return f"http://127.0.0.1:{self.stripe_port}"

    def _database_url_for_a_moving_clock(self) -> str:
        """psycopg times its connect on the (faked) monotonic clock: a connect a process was making when the clock
        jumped a month would time out at once. A timeout longer than any jump keeps it waiting as it should."""
        if not self.database_url.startswith("postgres"):
            return self.database_url
        separator = "&" if "?" in self.database_url else "?"
        return f"{self.database_url}{separator}connect_timeout={10 * 365 * 24 * 3600}"

    def env(self) -> dict:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("FAKETIME", "LD_PRELOAD"))}
        env.update(
            PATH=f"{VENV_BIN}:{env.get('PATH', '')}",
            DJANGO_SETTINGS_MODULE="dashboard.settings",
            DATABASE_URL=self._database_url_for_a_moving_clock(),
            CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
            CACHE_URL=settings.CACHE_URL,  # the test process's own (one per pytest-xdist worker)
            CELERY_QUEUE=self.queue,  # not a developer's `make run` worker's queue on a shared broker
            VAR_DIR=str(self.workdir / "var"),  # the filesystem broker's folders, when that is the broker
            EMAIL_URL=f"file://{self.mail_dir}",
            SITE_ROOT=self.site_root,
            WEB_BIND=f"127.0.0.1:{self.web_port}",
            LOCALSTRIPE_PORT=str(self.stripe_port),
            PYTHONUNBUFFERED="1",
            **self.extra_env,
        )
        for key in ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_API_BASE", "STRIPE_JS_URL"):
            env.pop(key, None)  # localstripe, as `make run` has it
        return env

    def clock_env_file(self) -> Path:
        """libfaketime's variables, for honcho's `-e`: its processes get them, honcho itself keeps the real time
        (moved, its output loop stalls and the processes block writing to it)."""
        path = self.workdir / "clock.env"
        library = faketime_library()
        assert library, "libfaketime is not installed (apt-get install faketime)"
        path.write_text(
            f"LD_PRELOAD={library}\n"
            f"FAKETIME_TIMESTAMP_FILE={self.clock.path}\n"
            "FAKETIME_NO_CACHE=1\n"  # every clock read sees a move at once (a cached offset lagged for seconds)
        )
        return path

    def migrate(self) -> None:
        env = self.env()
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)

    def start(self) -> None:
        # localstripe stands in for Stripe, whose clock is the real one: it runs outside libfaketime (its event
        # loop, moved, holds back its own charges and webhooks), fresh (`--from-scratch`), before the rest; the
        # strict layer in front of it likewise. The webhook step's /_config/ call goes through it to localstripe.
        with open(self.workdir / "localstripe.log", "w") as log:
            self.stripe_process = subprocess.Popen(
                [str(VENV_BIN / "localstripe"), "--port", str(self.localstripe_port), "--from-scratch"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(lambda: self._answers(self.stripe_process, self.localstripe_port), timeout=30, message="localstripe")
        upstream = f"http://127.0.0.1:{self.localstripe_port}"
        with open(self.workdir / "strict_stripe.log", "w") as log:
            self.strict_process = subprocess.Popen(
                [sys.executable, "-m", "tests.strict_stripe", "--upstream", upstream, "--port", str(self.stripe_port)],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(lambda: self._answers(self.strict_process, self.stripe_port), timeout=30, message="strict_stripe")
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                [
                    str(VENV_BIN / "honcho"),
                    "start",
                    "-f",
                    "Procfile",
                    "-e",
                    str(self.clock_env_file()),
                    *PROCESSES_UNDER_TEST,
                ],  # fmt: skip
                cwd=ROOT,
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # one process group: stopping it stops every process
            )
        ready = {
            "web": "Listening at:",
            "worker": " ready.",
            "beat": "beat: Starting...",
            "stripe-webhook": "localstripe sends its webhooks to",
        }
        deadline = time.monotonic() + 90
        while not all(marker in self.log(name) for name, marker in ready.items()):
            assert self.process.poll() is None, f"the stack stopped:\n{self.log_path.read_text()[-5000:]}"
            assert time.monotonic() < deadline, f"the stack did not start:\n{self.log_path.read_text()[-5000:]}"
            time.sleep(0.3)

    def _answers(self, process: subprocess.Popen, port: int) -> bool:
        assert process.poll() is None, f"{process.args} exited: see its log in {self.workdir}"
        return port_answers(port)

    def stop(self) -> None:
        self.clock.stop()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # honcho stops each process gracefully, as Ctrl-C on `make run` does
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        for process in (self.strict_process, self.stripe_process):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=10)

    def pid_of(self, name: str) -> int:
        match = re.search(rf"system\s+\| {re.escape(name)}\.1 started \(pid=(\d+)\)", self.log_path.read_text())
        assert match, f"honcho did not start {name}"
        return int(match.group(1))

    def travel_to(self, moment: datetime) -> None:
        """Move the stack's clock to `moment` while no task runs.

        libfaketime moves the monotonic clock too (sleeping breaks if it doesn't), and a Celery pool
        would take a task running across the jump for one that ran past its time limit. So beat is
        paused, the worker's tasks finish, the clock moves, and beat resumes (and finds every entry due).
        """
        beat = self.pid_of("beat")
        os.kill(beat, signal.SIGSTOP)
        try:
            # Idle for a while, not just now: a task beat sent just before the pause may still be on its way.
            idle_since = []

            def settled() -> bool:
                if not self.worker_idle():
                    idle_since.clear()
                    return False
                idle_since.append(time.monotonic())
                return idle_since[-1] - idle_since[0] >= QUIET_SECONDS

            wait_until(settled, timeout=90, interval=0.2, message="the worker to finish its tasks")
            self.clock.advance_to(moment)
        finally:
            os.kill(beat, signal.SIGCONT)

    def worker_idle(self) -> bool:
        log = self.log("worker")
        received = set(re.findall(r"Task [\w.]+\[([0-9a-f-]{36})\] received", log))
        finished = set(re.findall(r"Task [\w.]+\[([0-9a-f-]{36})\] (?:succeeded|raised|retry|failed)", log))
        finished |= set(re.findall(r"Discarding revoked task: [\w.]+\[([0-9a-f-]{36})\]", log))  # expired
        return received <= finished

    def log(self, name: str) -> str:
        """What one Procfile process printed (honcho prefixes each line with its name)."""
        prefix = re.compile(rf"^\d\d:\d\d:\d\d {re.escape(name)}\.1\s+\| ?(.*)$")
        lines = self.log_path.read_text(errors="replace").splitlines() if self.log_path.exists() else []
        return "\n".join(match.group(1) for line in lines if (match := prefix.match(line)))

    def emails(self) -> list[email.message.Message]:
        """Every email the stack sent, parsed (Django's file backend writes them one after another per file)."""
        messages = []
        for path in sorted(self.mail_dir.glob("*.log")):
            for chunk in path.read_text(errors="replace").split("\n" + "-" * 79 + "\n"):
                if chunk.strip():
                    messages.append(email.message_from_string(chunk.strip()))
        return messages

    def emails_with_subject(self, fragment: str) -> list[email.message.Message]:
        return [message for message in self.emails() if fragment in str(message["Subject"])]

    def http(self, session_key: str | None = None) -> requests.Session:
        http = requests.Session()
        if session_key:
            http.cookies.set(settings.SESSION_COOKIE_NAME, session_key, domain="127.0.0.1")
        return http

    def url(self, path: str) -> str:
        return self.site_root + path


def wait_until(condition, *, timeout: float = 60, interval: float = 0.5, message: str = ""):
    """tests.processes.wait_for, failing the test with `message` when time is up."""
    result = wait_for(condition, timeout=timeout, interval=interval)
    if not result:
        raise AssertionError(f"timed out after {timeout}s waiting for {message or condition}")
    return result
