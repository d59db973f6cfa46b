"""The shared Stripe rate limit (billing/stripe_limits.py) and the charge task's retries of Stripe's 429s.

Nothing of ours is mocked: the limiter runs on the configured cache (the SQLite database cache by default; Redis
or PostgreSQL when CACHE_URL/DATABASE_URL say so) from real OS processes, and Stripe calls go through the real
stripe SDK to localstripe behind the test setup's strict layer, which answers 429 above Stripe's test-mode limit
(25 requests a second) and, on demand (`localstripe.fail_next`), to the next requests, as Stripe would.
"""

import itertools
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta

import pytest
import stripe
import time_machine
from django.conf import settings as django_settings
from django.db import connection

from accounts.roles import Role
from billing import payments, stripe_limits, tasks
from billing.models import Invoice, Payment
from billing.stripe_gateway import LONGEST_CALL, stripe_client
from tests import processes
from tests.billing.test_payments import intents_for, pay_as_you_go_invoice, store_card
from tests.factories import TeamFactory
from tests.processes import ROOT, database_url_for_subprocess

VISA = "pm_card_visa"


def busiest_second(stamps: list[float]) -> int:
    """The most timestamps in any window of one second (half-open, starting at any of them)."""
    stamps = sorted(stamps)
    most, first = 0, 0
    for last, stamp in enumerate(stamps):
        while stamp - stamps[first] >= 1:
            first += 1
        most = max(most, last - first + 1)
    return most


def env_for_subprocess(**extra) -> dict:
    return {
        **os.environ,
        "DATABASE_URL": database_url_for_subprocess(connection.settings_dict),
        "CACHE_URL": django_settings.CACHE_URL,
        "DJANGO_SETTINGS_MODULE": "dashboard.settings",
        **extra,
    }


# A process that takes turns as fast as it can from `start` for `seconds`, then prints when it got each.
TAKER = """
import json, sys, time
import django
django.setup()
from billing import stripe_limits
print("ready", flush=True)
start, seconds, per_second = (float(value) for value in sys.stdin.readline().split())
time.sleep(max(start - time.time(), 0))
stamps = []
while time.time() < start + seconds:
    wait = stripe_limits.reserve_turn("cross-process-test", int(per_second))
    if wait is None:
        continue
    stamps.append(time.time() + wait)  # when the turn is, as granted: before sleeping, which may overrun
    time.sleep(wait)
print(json.dumps(stamps), flush=True)
"""


@pytest.mark.django_db(transaction=True)
def test_four_processes_together_stay_within_the_limit_and_use_it():
    """4 OS processes hammer the limiter for 3 s on the configured cache. Without it each would take thousands of
    turns; a fixed window counter would let up to twice the limit through in some second; a stingy limiter would
    fall short of the limit. What is measured is when each turn is granted for: a process that then oversleeps
    (a loaded host) sends a little late, which the 5 % spacing and a limit below Stripe's absorb."""
    per_second, seconds = 30, 3.0
    takers = [
        subprocess.Popen(
            [sys.executable, "-c", TAKER],
            cwd=ROOT,
            env=env_for_subprocess(),
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(4)
    ]
    try:
        for taker in takers:
            assert taker.stdout.readline().strip() == "ready", taker.stderr.read()
        start = time.time() + 0.5
        for taker in takers:
            taker.stdin.write(f"{start} {seconds} {per_second}\n")
            taker.stdin.flush()
        per_process = [json.loads(taker.stdout.readline()) for taker in takers]
    finally:
        for taker in takers:
            taker.kill()
            taker.wait(timeout=10)

    stamps = [stamp for taken in per_process for stamp in taken]
    assert all(per_process), [len(taken) for taken in per_process]  # every process got turns
    print(f"{len(stamps)} turns in {seconds} s at {per_second}/s, busiest second {busiest_second(stamps)}")
    assert busiest_second(stamps) <= per_second
    assert len(stamps) >= 0.85 * per_second * seconds, len(stamps)  # by design 1 / 1.05 of it: 86


@pytest.mark.django_db(transaction=True)
def test_sixty_sdk_calls_at_twenty_a_second_take_three_seconds_and_all_succeed(stripe_settings):
    """3 threads make 20 real SDK calls each to localstripe (alone, about 0.5 s in all) with the limit at 20/s."""
    stripe_settings.STRIPE_MAX_REQUESTS_PER_SECOND = 20
    client = stripe_client()
    answered, errors = [], []

    def call_twenty():
        try:
            for _ in range(20):
                answered.append(client.v1.customers.list(params={"limit": 1}).object)
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)
        finally:
            connection.close()  # this thread's connection to the database cache

    began = time.monotonic()
    threads = [threading.Thread(target=call_twenty) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    elapsed = time.monotonic() - began

    print(f"60 calls in {elapsed:.2f} s")
    assert errors == [] and answered == ["list"] * 60
    assert 2.5 <= elapsed < 5, elapsed  # 59 turns 1.05/20 s apart after the first: 3.1 s


def test_a_request_with_no_turn_in_sight_is_refused_as_a_429(db):
    """More queued than MAX_WAIT_SECONDS can serve: refused before anything is sent, as Stripe would refuse it.
    The clock stands still so that no new turn comes within reach meanwhile (on Redis, whose own clock the turns
    follow, the test takes milliseconds of a half-second turn)."""
    account = f"refusal-{uuid.uuid4().hex}"
    waits = []
    with time_machine.travel(time.time(), tick=False):
        while len(waits) < 20 and (wait := stripe_limits.reserve_turn(account, 2)) is not None:
            waits.append(wait)
        with pytest.raises(stripe.RateLimitError):
            stripe_limits.wait_for_turn(account, 2)
    # About every half second for 5 s (on Redis, one more: the first turn is right now).
    assert len(waits) in (9, 10)
    # The first turn is now on Redis; on other caches turns sit on a fixed grid, so it is within one interval.
    assert waits == sorted(waits) and waits[0] < 1.05 / 2
    assert all(later - earlier == pytest.approx(1.05 / 2, abs=0.05) for earlier, later in itertools.pairwise(waits))
    assert stripe_limits.MAX_WAIT_SECONDS - 0.5 < waits[-1] <= stripe_limits.MAX_WAIT_SECONDS


def test_with_the_cache_unreachable_requests_go_out_without_a_turn(settings, caplog):
    """A Redis cache nobody answers on: the request is sent (Stripe's 429s, retried, are the limit meanwhile)."""
    url = f"redis://127.0.0.1:{processes.free_port()}/0"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}}
    assert stripe_limits.wait_for_turn("unreachable", 20) == 0
    assert "the cache is unreachable" in caplog.text


def test_waiting_for_turns_is_within_the_longest_call_a_claim_outlasts():
    assert timedelta(seconds=stripe_limits.MAX_WAIT_SECONDS * 3) < LONGEST_CALL < payments.LEASE


@pytest.fixture
def owner_membership(make_member):
    return make_member(Role.OWNER, email="payer@example.com")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_retries_stripes_429s_and_the_invoice_is_paid_once(
    owner_membership, stripe_settings, localstripe, celery_worker
):
    """A real Celery worker charges through a Stripe that answers the first two PaymentIntent creations 429: the
    task retries with backoff (at most 5 + 10 s), and the invoice ends paid with exactly one PaymentIntent."""
    store_card(owner_membership, VISA)
    invoice = pay_as_you_go_invoice(owner_membership, 9)
    localstripe.reset_stats()
    localstripe.fail_next("/v1/payment_intents", status=429, count=2)
    tasks.charge_invoice.apply_async((invoice.pk,), queue=celery_worker.queue)

    def paid():
        return Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.PAID

    assert processes.wait_for(paid, timeout=60), celery_worker.log.read_text()[-3000:]
    assert localstripe.stats()["failed_on_purpose"] == 2
    assert [(intent.status, intent.amount) for intent in intents_for(invoice)] == [("succeeded", 135)]
    assert list(Payment.objects.filter(invoice=invoice).values_list("attempt", "status")) == [(1, "succeeded")]


# A process charging invoices as a busy worker pool would: each invoice id read from stdin in a thread of its own.
CHARGER = """
import sys, threading
import django
django.setup()
from billing import payments
print("ready", flush=True)
ids = [int(value) for value in sys.stdin.readline().split()]
threads = [threading.Thread(target=payments.charge_invoice, args=(invoice_id,)) for invoice_id in ids]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print("done", flush=True)
"""


@pytest.mark.django_db(transaction=True)
def test_a_mass_close_charged_from_two_processes_at_once_stays_under_stripes_limit(
    make_member, stripe_settings, localstripe
):
    """Two processes charge 16 invoices at once, 8 threads each, as two busy workers would. Stripe's limit is set
    to 10 a second at the strict layer (which answers 429 above it) and the shared budget to 9: no 429, and each
    invoice is paid once. The same load without the shared budget (STRIPE_MAX_REQUESTS_PER_SECOND=0) gets 429s:
    this machine's localstripe takes over 20 requests a second."""
    invoices = []
    for index in range(16):
        owner = make_member(Role.OWNER, team=TeamFactory(), email=f"fleet-{index}@example.com")
        store_card(owner, VISA)
        invoices.append(pay_as_you_go_invoice(owner, 4))
    per_second = int(os.environ.get("MASS_CLOSE_BUDGET", "9"))  # 0 shows the load without the budget
    env = env_for_subprocess(
        STRIPE_API_BASE=localstripe.api_base,
        STRIPE_SECRET_KEY=stripe_settings.STRIPE_SECRET_KEY,
        STRIPE_MAX_REQUESTS_PER_SECOND=str(per_second),
    )
    chargers = [
        subprocess.Popen(
            [sys.executable, "-c", CHARGER], cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    try:
        for charger in chargers:
            assert charger.stdout.readline().strip() == "ready"
        localstripe.configure(rate_limit=10)
        localstripe.reset_stats()
        for charger, share in zip(chargers, (invoices[::2], invoices[1::2]), strict=True):
            charger.stdin.write(" ".join(str(invoice.pk) for invoice in share) + "\n")
            charger.stdin.flush()
        for charger in chargers:
            assert charger.stdout.readline().strip() == "done"
        seen = localstripe.stats()
    finally:
        localstripe.configure(rate_limit=25)
        for charger in chargers:
            charger.kill()
            charger.wait(timeout=10)

    assert seen["rate_limited"] == 0, seen
    assert seen["max_requests_in_a_second"] <= 10, seen
    for invoice in invoices:
        assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.PAID
        assert [intent.status for intent in intents_for(invoice)] == ["succeeded"]


def test_after_the_last_retry_the_attempt_waits_for_the_reconciliation(owner_membership, stripe_settings, localstripe):
    """Eager (apply()): the retries run at once, without their countdowns. Stripe refuses every one of them; the
    attempt stays processing with no claim, and the nightly reconciliation charges it once Stripe answers."""
    store_card(owner_membership, VISA)
    invoice = pay_as_you_go_invoice(owner_membership, 9)
    localstripe.reset_stats()
    localstripe.fail_next("/v1/payment_intents", status=429, count=tasks.charge_invoice.max_retries + 1)

    result = tasks.charge_invoice.apply(args=(invoice.pk,))

    assert isinstance(result.result, stripe.RateLimitError)
    assert localstripe.stats()["failed_on_purpose"] == tasks.charge_invoice.max_retries + 1  # the run, each retry
    payment = Payment.objects.get(invoice=invoice)
    assert (payment.status, payment.claimed_by, payment.stripe_payment_intent_id) == ("processing", "", "")
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.OPEN

    assert payments.reconcile(stuck_after=timedelta(0)) == 1  # Stripe answers again
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.PAID
    assert [intent.status for intent in intents_for(invoice)] == ["succeeded"]
    assert list(Payment.objects.filter(invoice=invoice).values_list("attempt", "status")) == [(1, "succeeded")]


def test_the_charge_task_retries_what_stripe_says_to_retry_and_has_no_per_node_rate_limit():
    task = tasks.charge_invoice
    assert task.rate_limit is None
    assert issubclass(stripe_limits.OutOfStripeBudget, task.autoretry_for)
    assert {stripe.RateLimitError, stripe.APIConnectionError, stripe.APIError} <= set(task.autoretry_for)
    assert not issubclass(stripe.CardError, task.autoretry_for)  # a decline is an answer, not a hiccup
    assert task.retry_backoff and task.retry_jitter and task.max_retries == 6
