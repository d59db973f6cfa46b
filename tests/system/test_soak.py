"""Soak: mixed traffic from many clients over several teams while beat runs, across a period's end.

`make soak` runs it for SOAK_SECONDS (10 minutes by default; CI runs one minute); without SOAK_SECONDS it is
skipped. Bounded: a fixed number of client threads, for a fixed time, against the stack on 127.0.0.1 only.

Halfway, traffic pauses while the stack's clock moves to just before the period's end; traffic resumes and the
real seconds carry requests across the end, and beat closes the period (after a short grace) under traffic. At
the end the clock moves past the next period's end and beat closes and invoices every period. Then every count
must agree: what the clients saw succeed, the usage events, each period's counter, the daily rollups and the
invoice lines. Nothing lost, nothing counted twice.
"""

import os
import random
import threading
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from django.db.models import Count, Sum

from accounts.roles import Role
from billing import contracts, services
from billing.models import BillingPeriod, Contract, Invoice, InvoiceLine, UsageDaily, UsageEvent
from tests.billing.test_payments import store_card
from tests.factories import ApplicationFactory, MembershipFactory, TeamFactory
from tests.system.stack import wait_until
from tests.vehicles.api_helpers import make_grant, make_owner, make_token, make_vehicle

SOAK_SECONDS = int(os.environ.get("SOAK_SECONDS") or 0)
CLIENTS = int(os.environ.get("SOAK_CLIENTS") or 16)

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(not SOAK_SECONDS, reason="a soak: set SOAK_SECONDS (make soak does) to run it"),
]

# The per-application rate limits (tested elsewhere) would refuse most of this traffic; the soak measures counting.
# A short close grace so that the period closes while traffic still flows.
STACK_ENV = {"VEHICLE_API_RATE_LIMITS_ENABLED": "0", "BILLING_CLOSE_GRACE_SECONDS": "5"}
SECONDS_BEFORE_THE_END = 10  # where the clock is moved to, mid-soak
BILLABLE_READS = ("odometer", "location", "vin", "", "security")
FREE_READS = ("/vehicles", "/user")


@dataclass
class Connected:
    team_id: int
    token: str
    vehicle_ids: list[str]


@dataclass
class Tally:
    """What the clients saw, per team: billable requests that succeeded (replays not counted again)."""

    billable: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)
    errors: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, team_id: int, billable: int, status: int) -> None:
        with self.lock:
            self.billable[team_id] += billable
            self.statuses[status] += 1


def connect_fleet(team, *, applications: int = 2, vehicles: int = 3) -> list[Connected]:
    connected = []
    for _ in range(applications):
        application = ApplicationFactory(team=team)
        driver = make_owner()
        cars = [make_vehicle(driver) for _ in range(vehicles)]
        token = make_token(make_grant(application, driver, cars), expires_in=timedelta(days=120))
        connected.append(Connected(team.pk, token, [str(car.public_id) for car in cars]))
    return connected


def one_request(http: requests.Session, stack, target: Connected, tally: Tally, rng: random.Random) -> None:
    """A request an app would make: mostly billable reads, some free ones, a batch, a retry, a bad id."""
    headers = {"Authorization": f"Bearer {target.token}"}
    vehicle = rng.choice(target.vehicle_ids)
    roll = rng.random()
    if roll < 0.55:
        resource = rng.choice(BILLABLE_READS)
        response = http.get(stack.url(f"/v2.0/vehicles/{vehicle}/{resource}".rstrip("/")), headers=headers, timeout=60)
        tally.add(target.team_id, int(response.ok), response.status_code)
    elif roll < 0.65:
        response = http.get(stack.url("/v2.0" + rng.choice(FREE_READS)), headers=headers, timeout=60)
        tally.add(target.team_id, 0, response.status_code)
    elif roll < 0.75:
        paths = [f"/{rng.choice(('odometer', 'location', 'vin'))}" for _ in range(rng.randint(2, 4))]
        batch = {"requests": [{"path": path} for path in paths]}
        response = http.post(stack.url(f"/v2.0/vehicles/{vehicle}/batch"), json=batch, headers=headers, timeout=60)
        succeeded = sum(item["code"] == 200 for item in response.json()["responses"]) if response.ok else 0
        tally.add(target.team_id, succeeded, response.status_code)
    elif roll < 0.9:  # a client retrying with its Idempotency-Key: counted once, whichever answer it gets
        keyed = {**headers, "Idempotency-Key": str(uuid.uuid4())}
        url = stack.url(f"/v2.0/vehicles/{vehicle}/odometer")
        for _ in range(2):
            response = http.get(url, headers=keyed, timeout=60)
            replayed = response.headers.get("Idempotent-Replayed") == "true"
            tally.add(target.team_id, int(response.ok and not replayed), response.status_code)
    else:  # a vehicle this token doesn't reach: 403, never billed
        response = http.get(stack.url(f"/v2.0/vehicles/{uuid.uuid4()}/odometer"), headers=headers, timeout=60)
        tally.add(target.team_id, 0, response.status_code)


class Traffic:
    """Client threads sending requests until stopped; `paused()` holds them, with none in flight, meanwhile."""

    def __init__(self, stack, targets: list[Connected], clients: int):
        self.stack, self.targets, self.tally = stack, targets, Tally()
        self.open, self.stop, self.in_flight = threading.Event(), threading.Event(), 0
        self.lock = threading.Lock()
        self.open.set()
        self.threads = [threading.Thread(target=self._drive, args=(seed,)) for seed in range(clients)]

    def _drive(self, seed: int) -> None:
        rng, http = random.Random(seed), requests.Session()
        while not self.stop.is_set():
            self.open.wait()
            with self.lock:
                self.in_flight += 1
            try:
                one_request(http, self.stack, rng.choice(self.targets), self.tally, rng)
            except Exception as error:  # noqa: BLE001 - every failure is reported by the test
                self.tally.errors.append(repr(error))
            finally:
                with self.lock:
                    self.in_flight -= 1

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.open.set()
        for thread in self.threads:
            thread.join(timeout=120)

    @contextmanager
    def paused(self):
        self.open.clear()
        try:
            wait_until(lambda: self.in_flight == 0, timeout=120, interval=0.1, message="requests in flight")
            yield
        finally:
            self.open.set()


def test_soak_counts_agree_everywhere(stack):
    teams = [TeamFactory(name=f"Soak {kind} {n}") for kind in ("Free", "Payg", "Contract") for n in (1, 2)]
    for team in teams:
        owner = MembershipFactory(team=team, role=Role.OWNER)
        if "Payg" in team.name:
            store_card(owner, "pm_card_visa")
            services.switch_plan(actor=owner, plan_code="payg")
        elif "Contract" in team.name:  # unlimited requests, graduated tiers: the volume goes somewhere
            contracts.create_contract(
                team_id=team.pk, actor=None, starts_at=stack.clock.now() - timedelta(minutes=1),
                ends_at=stack.clock.now() + timedelta(days=365), pricing=Contract.Pricing.GRADUATED,
                tiers=[contracts.TierTerms(500, Decimal(10)), contracts.TierTerms(None, Decimal(5))],
                paid_by=Contract.PaidBy.INVOICE,
            )  # fmt: skip
    targets = [connected for team in teams for connected in connect_fleet(team)]
    first_end = max(BillingPeriod.objects.filter(team__in=teams).values_list("end", flat=True))
    grace = timedelta(seconds=int(STACK_ENV["BILLING_CLOSE_GRACE_SECONDS"]), minutes=1)

    with Traffic(stack, targets, CLIENTS) as traffic:
        time.sleep(SOAK_SECONDS / 2)
        with traffic.paused():  # the clock moves with nothing in flight, as a real clock never jumps
            stack.travel_to(first_end - timedelta(seconds=SECONDS_BEFORE_THE_END))
        time.sleep(SOAK_SECONDS / 2)  # the period's end passes, and it is closed, under traffic
    tally = traffic.tally
    assert tally.errors == [], tally.errors[:5]
    assert not [status for status in tally.statuses if status >= 500], tally.statuses
    print(f"\nsoak: {sum(tally.statuses.values())} requests, {tally.statuses}, billable {sum(tally.billable.values())}")
    assert BillingPeriod.objects.filter(team__in=teams, end__lte=first_end, status="closed").exists(), "closed"

    last_end = max(BillingPeriod.objects.filter(team__in=teams).values_list("end", flat=True))
    stack.travel_to(last_end + grace)
    periods = BillingPeriod.objects.filter(team__in=teams)
    wait_until(
        lambda: (
            not periods.filter(status=BillingPeriod.Status.OPEN, end__lte=last_end).exists()
            and Invoice.objects.filter(period__in=periods).count() == periods.filter(end__lte=last_end).count()
        ),
        timeout=180,
        message="beat to close and invoice every period",
    )

    events = dict(UsageEvent.objects.filter(period__in=periods).values_list("period").annotate(n=Count("id")))
    rollups = dict(UsageDaily.objects.filter(period__in=periods).values_list("period").annotate(n=Sum("billable")))
    lines = dict(
        InvoiceLine.objects.filter(invoice__period__in=periods, kind="usage")
        .values_list("invoice__period")
        .annotate(n=Sum("quantity"))
    )
    for period in periods.filter(end__lte=last_end):
        counted = events.get(period.pk, 0)
        assert (period.requests_used, rollups.get(period.pk) or 0, lines.get(period.pk) or 0) == (counted,) * 3, (
            f"period {period.pk} of team {period.team_id}: counter, rollups and invoice lines vs {counted} events"
        )
    per_team = Counter(
        dict(UsageEvent.objects.filter(period__in=periods).values_list("period__team").annotate(n=Count("id")))
    )
    assert per_team == +tally.billable, "what the clients saw succeed is what was counted, team by team"
    assert sum(per_team.values()) > 0
    for process in ("web", "worker", "beat"):
        assert "Traceback" not in stack.log(process), stack.log(process)[-5000:]
