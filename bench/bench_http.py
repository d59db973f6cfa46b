"""The vehicle API over HTTP, as deployed: gunicorn + PostgreSQL, driven by wrk, against a bare Django view.

It creates its own PostgreSQL database (dropped and created again each run), migrates it with manage.py, seeds
one team with a live and a test-mode vehicle plus 100 teams with a vehicle each, then serves Ignition
(`dashboard.wsgi`, production settings: DEBUG off, rate limits off so only the request and metering are measured)
and `bench/bare_app.py` (one view, no middleware, the same JSON) under the same gunicorn, with
`bench/reference_app.py` (the least a metered request costs: the token lookup and the count in one durable
statement), and drives each scenario with wrk for `--seconds` after a warm-up. It prints req/s, p50 and p99 per
scenario, the CPU one request costs in the server's workers, in wrk and in everything else (PostgreSQL above all;
from /proc: on a machine where they share the cores, this says where the time goes), the ratios the performance
targets are stated in, and the resident memory of each Ignition worker.

The machine is shared and noisy: compare the ratios of one run, not absolute figures across runs.

Run: make bench                                    (or .venv/bin/python bench/bench_http.py --seconds 10)
     DB_CONN_MAX_AGE=0 make bench                 (a database connection per request, for comparison)
Needs: wrk (apt-get install wrk), PostgreSQL (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/
ignition_bench_http), Redis for the cache and broker if reachable (as in production; else the database cache).
"""

import argparse
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for tests.processes
from databases import SECRET_KEY, fresh_database  # noqa: E402 (bench/, the script's own folder)

from tests.processes import ROOT, free_port, port_answers, wait_for  # noqa: E402

PYTHON = sys.executable
GUNICORN = str(Path(sys.executable).parent / "gunicorn")
DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/ignition_bench_http"
SPREAD_TEAMS = 100
REFERENCE = "reference: lookup + count, 1 statement"

SEED = """
import json
import django
django.setup()
from billing.models import Plan
from tests.factories import ApplicationFactory, TeamFactory
from tests.vehicles.api_helpers import make_grant, make_owner, make_token, make_vehicle
from vehicles.models import Mode

Plan.objects.update(request_allowance=None, vehicle_allowance=None)  # never hit a limit while measuring
team = TeamFactory()
application = ApplicationFactory(team=team)
live, test = make_owner(), make_owner(mode=Mode.TEST)
live_car, test_car = make_vehicle(live), make_vehicle(test)
seeded = {
    "live": {"token": make_token(make_grant(application, live, [live_car])), "vehicle": str(live_car.public_id)},
    "test": {"token": make_token(make_grant(application, test, [test_car])), "vehicle": str(test_car.public_id)},
    "spread": [],
}
for _ in range(SPREAD_TEAMS):
    other = ApplicationFactory(team=TeamFactory())
    owner = make_owner()
    car = make_vehicle(owner)
    seeded["spread"].append({"token": make_token(make_grant(other, owner, [car])), "vehicle": str(car.public_id)})
print(json.dumps(seeded))
""".replace("SPREAD_TEAMS", str(SPREAD_TEAMS))

# After the run: the test-mode vehicle's non-billable count, as written to the rollups.
NON_BILLABLE = """
import django
django.setup()
from django.db.models import Sum
from billing.models import UsageDaily
from vehicles.models import SimulatedVehicle
vehicle = SimulatedVehicle.objects.get(public_id="VEHICLE")
print(UsageDaily.objects.filter(vehicle_key=vehicle.pk).aggregate(n=Sum("non_billable"))["n"] or 0)
"""

# wrk scripts: a POST with a body, and requests spread over many teams (a token and vehicle each).
BATCH_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"requests": [{"path": "/odometer"}, {"path": "/location"}, {"path": "/odometer"}, ' ..
  '{"path": "/vin"}, {"path": "/location"}]}'
"""
SPREAD_LUA = """
local targets = {TARGETS}
local counter = 0
request = function()
  counter = counter + 1
  local target = targets[(counter % #targets) + 1]
  return wrk.format("GET", "/v2.0/vehicles/" .. target[2] .. "/odometer", {["Authorization"] = "Bearer " .. target[1]})
end
"""


def app_env(database_url: str) -> dict:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "dashboard.settings",
        "DATABASE_URL": database_url,
        "DEBUG": "0",
        "SECRET_KEY": SECRET_KEY,
        "SECURE_SSL_REDIRECT": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "VEHICLE_API_RATE_LIMITS_ENABLED": "0",
        "PYTHONUNBUFFERED": "1",
    }
    if port_answers(6379):  # Redis, as in production
        env.setdefault("CACHE_URL", "redis://127.0.0.1:6379/14")
        env.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
    return env


def start_gunicorn(target: str, port: int, workers: int, env: dict, log: Path, threads: int = 1) -> subprocess.Popen:
    command = [GUNICORN, target, "--workers", str(workers), "--bind", f"127.0.0.1:{port}", "--log-level", "warning"]
    if threads > 1:  # gthread: a worker serves another request while one waits on PostgreSQL
        command += ["--worker-class", "gthread", "--threads", str(threads)]
    with open(log, "w") as output:  # the child keeps its own copy of the file descriptor
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    answered = wait_for(lambda: port_answers(port) or process.poll() is not None, timeout=60)
    if process.poll() is not None:
        raise SystemExit(f"gunicorn {target} exited:\n{log.read_text()}")
    if not answered:
        raise SystemExit(f"gunicorn {target} did not answer:\n{log.read_text()}")
    return process


def wrk(url: str, *, seconds: float, connections: int, token: str = "", script: str = "") -> dict:
    """One wrk run: req/s, p50 and p99 in ms, and the count of non-2xx answers."""
    command = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{round(seconds)}s", "--latency", "--timeout", "10s"]
    if token:
        command += ["-H", f"Authorization: Bearer {token}"]
    if script:
        command += ["-s", script]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "requests": int(re.search(r"(\d+) requests in", output).group(1)),
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": _ms(re.search(r"50%\s+([\d.]+\w+)", output).group(1)),
        "p99": _ms(re.search(r"99%\s+([\d.]+\w+)", output).group(1)),
        "errors": int(errors.group(1)) if errors else 0,
    }


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(\w+)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]


def worker_rss_mb(master: subprocess.Popen) -> list[float]:
    """Resident memory of each gunicorn worker (the master's children), in MB."""
    children = Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text().split()
    sizes = []
    for pid in children:
        status = Path(f"/proc/{pid}/status").read_text()
        sizes.append(int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024)
    return sizes


def _cpu_seconds(pid: str) -> float:
    """User + system CPU a process has used, from /proc (0 if it has gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_reading(master: subprocess.Popen) -> dict[str, float]:
    """CPU seconds used so far by the server's workers, by wrk (the finished children of this process), and by the
    whole machine (/proc/stat: every core's busy time)."""
    workers = Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text().split()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]  # user nice system idle iowait irq softirq…
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(value) for value in busy[:8])
    return {
        "workers": sum(_cpu_seconds(pid) for pid in workers),
        "wrk": children.ru_utime + children.ru_stime,
        "machine": (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK"),
    }


def cpu_per_side(before: dict, after: dict) -> dict[str, float]:
    """CPU seconds used between two readings by the workers, by wrk, and by everything else: PostgreSQL's
    processes above all (a PostgreSQL backend may end within a scenario, as persistent connections are renewed,
    so its own counters would lose its work; the machine's total does not)."""
    used = {side: after[side] - before[side] for side in after}
    return {
        "workers": used["workers"],
        "postgres": max(used["machine"] - used["workers"] - used["wrk"], 0.0),
        "wrk": used["wrk"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="more than 1: gthread workers with this many threads")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install wrk")
    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE)
    workdir = Path(tempfile.mkdtemp(prefix="ignition-bench-"))
    env = app_env(database_url)

    fresh_database(database_url, env)
    seeded = json.loads(
        subprocess.run([PYTHON, "-c", SEED], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
        .stdout.strip()
        .splitlines()[-1]
    )
    spread_script = workdir / "spread.lua"
    targets = ", ".join(f'{{"{t["token"]}", "{t["vehicle"]}"}}' for t in seeded["spread"])
    spread_script.write_text(SPREAD_LUA.replace("TARGETS", targets))
    batch_script = workdir / "batch.lua"
    batch_script.write_text(BATCH_LUA)

    app_port, bare_port, reference_port = free_port(), free_port(), free_port()
    app = start_gunicorn("dashboard.wsgi", app_port, args.workers, env, workdir / "app.log", args.threads)
    bare = start_gunicorn(
        "bench.bare_app:application", bare_port, args.workers, env, workdir / "bare.log", args.threads
    )
    reference = start_gunicorn(
        "bench.reference_app:application", reference_port, args.workers, env, workdir / "reference.log", args.threads
    )
    live, test = seeded["live"], seeded["test"]
    app_base, bare_base = f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{bare_port}"
    reference_base = f"http://127.0.0.1:{reference_port}"
    scenarios = [
        ("bare Django JSON view", f"{bare_base}/v2.0/vehicles/x/odometer", "", "", args.connections),
        (
            "odometer, test mode (not metered)",
            f"{app_base}/v2.0/vehicles/{test['vehicle']}/odometer",
            test["token"],
            "",
            args.connections,
        ),
        (
            "odometer, live (metered)",
            f"{app_base}/v2.0/vehicles/{live['vehicle']}/odometer",
            live["token"],
            "",
            args.connections,
        ),
        (
            REFERENCE,  # after the metered scenario, which opened the live team's period
            f"{reference_base}/v2.0/vehicles/{live['vehicle']}/odometer",
            live["token"],
            "",
            args.connections,
        ),
        ("GET /vehicles (free)", f"{app_base}/v2.0/vehicles", live["token"], "", args.connections),
        (
            "batch of 5 (metered each)",
            f"{app_base}/v2.0/vehicles/{live['vehicle']}/batch",
            live["token"],
            str(batch_script),
            args.connections,
        ),
        (
            "one hot team, 64 clients (metered)",
            f"{app_base}/v2.0/vehicles/{live['vehicle']}/odometer",
            live["token"],
            "",
            64,
        ),
        (f"{SPREAD_TEAMS} teams, 64 clients (metered)", app_base, "", str(spread_script), 64),
    ]
    results, cpu, answered = {}, {}, {}
    try:
        for label, url, token, script, connections in scenarios:
            warm_up = wrk(url, seconds=2, connections=connections, token=token, script=script)
            server = bare if url.startswith(bare_base) else reference if url.startswith(reference_base) else app
            before = cpu_reading(server)
            results[label] = wrk(url, seconds=args.seconds, connections=connections, token=token, script=script)
            answered[label] = warm_up["requests"] + results[label]["requests"]
            used = cpu_per_side(before, cpu_reading(server))
            requests = results[label]["rps"] * args.seconds
            cpu[label] = {side: seconds / requests * 1e6 for side, seconds in used.items()}
        rss = worker_rss_mb(app)
    finally:
        for process in (app, bare, reference):
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)

    # The test-mode vehicle's requests are all non-billable: gathered in the workers, written by their threads and
    # at their graceful stop above. wrk counts the answers it read; a few more may have been in flight at its cut.
    written = int(
        subprocess.run(
            [PYTHON, "-c", NON_BILLABLE.replace("VEHICLE", test["vehicle"])],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    bare_rps = results["bare Django JSON view"]["rps"]
    workers = f"gthread workers × {args.threads} threads" if args.threads > 1 else "sync workers"
    print(
        f"\n{args.workers} gunicorn {workers}, "
        f"wrk 2 threads, {args.seconds:g} s per scenario, "
        f"DB_CONN_MAX_AGE={env.get('DB_CONN_MAX_AGE', 'default (60 with DEBUG=0)')}, "
        f"cache {env.get('CACHE_URL', 'database')}\n"
    )
    print(
        f"{'scenario':<38} {'req/s':>9} {'× bare':>7} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}   "
        "CPU µs per request: workers / PostgreSQL and the rest / wrk"
    )
    for label, result in results.items():
        used = cpu[label]
        print(
            f"{label:<38} {result['rps']:>9.0f} {result['rps'] / bare_rps:>7.3f} {result['p50']:>8.2f} "
            f"{result['p99']:>8.2f} {result['errors']:>8}   {used['workers']:>6.0f} / {used['postgres']:>5.0f} / "
            f"{used['wrk']:>4.0f}"
        )
    metered = results["odometer, live (metered)"]
    unmetered = results["odometer, test mode (not metered)"]
    hot = results["one hot team, 64 clients (metered)"]
    spread = results[f"{SPREAD_TEAMS} teams, 64 clients (metered)"]
    print("\ntargets (issue 14):")
    reference_rps = results[REFERENCE]["rps"]
    print(f"  metered ≥ 0.30 × bare:        {metered['rps'] / bare_rps:.3f}")
    print(
        f"    (the reference, the least a metered request costs here: {reference_rps / bare_rps:.3f} × bare; "
        f"metered = {metered['rps'] / reference_rps:.3f} × the reference)"
    )
    print(f"  unmetered ≥ 0.40 × bare:      {unmetered['rps'] / bare_rps:.3f}")
    print(f"  metered ≥ 0.85 × unmetered:   {metered['rps'] / unmetered['rps']:.3f}")
    print(f"  hot team ≥ 0.8 × spread:      {hot['rps'] / spread['rps']:.3f}")
    print(f"  metered p99 ≤ 3 × p50:        {metered['p99'] / metered['p50']:.2f}")
    unmetered_answered = answered["odometer, test mode (not metered)"]
    counts_agree = unmetered_answered <= written <= unmetered_answered + 2 * args.connections
    print(
        f"  non-billable counts written:  {written} for {unmetered_answered} answers wrk read, "
        f"{'agreeing' if counts_agree else 'NOT AGREEING'} "
        f"(requests in flight when wrk stops are answered and counted, not read: up to {args.connections} at each of "
        "its two stops, the warm-up's and the run's)"
    )
    print(f"\nRSS per Ignition worker (MB): {', '.join(f'{size:.0f}' for size in rss)}")
    shutil.rmtree(workdir, ignore_errors=True)
    if not counts_agree:
        raise SystemExit("non-billable requests were lost or counted twice: see the count above")


if __name__ == "__main__":
    main()
