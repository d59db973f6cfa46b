"""The billing cycle runs by itself, as deployed: nothing here calls a task or a service to make it happen.

The Procfile's processes run on a database of their own (tests/system/stack.py); the test sets teams up
through the services (as the dashboard and the admin would), drives the vehicle API and the dashboard over
HTTP, and moves the clock of gunicorn, the worker and beat. Beat's rows are shortened to a few seconds,
so each move is acted on at once. The scenario is one test because the clock only goes forward.
"""

import re
from datetime import timedelta

import pytest
import requests
from django.conf import settings
from django.db.models import Count, Sum
from django.test import Client

from accounts.roles import Role
from billing import contracts, grants, lifecycle, services
from billing.models import BillingPeriod, Contract, Grant, Invoice, Payment, Subscription, UsageAlert, UsageDaily
from requestlog.models import ApiRequest
from tests.billing.test_payments import intents_for, store_card
from tests.factories import ApplicationFactory, MembershipFactory, TeamFactory, UserFactory
from tests.system.stack import wait_until
from tests.vehicles.api_helpers import make_grant, make_owner, make_token, make_vehicle

pytestmark = pytest.mark.system

GOOD_CARD, FAILING_CARD = "pm_card_visa", "pm_card_chargeCustomerFail"


class Fleet:
    """A team's Owner and its connected vehicles, called over HTTP like an app using the API."""

    def __init__(self, stack, name: str, *, vehicles: int = 1):
        self.stack = stack
        self.team = TeamFactory(name=name)
        slug = re.sub(r"\W+", "-", name.lower())
        self.owner = MembershipFactory(team=self.team, role=Role.OWNER, user=UserFactory(email=f"owner@{slug}.test"))
        self.application = ApplicationFactory(team=self.team)
        driver = make_owner()
        self.vehicles = [make_vehicle(driver) for _ in range(vehicles)]
        self.grant = make_grant(self.application, driver, self.vehicles)

    def read_odometers(self, count: int) -> list[requests.Response]:
        """`count` billable requests, spread over the vehicles (under each vehicle's rate limit)."""
        token = make_token(self.grant)  # a fresh token: the clock may have moved past an older one's expiry
        return [
            requests.get(
                self.stack.url(f"/v2.0/vehicles/{self.vehicles[i % len(self.vehicles)].public_id}/odometer"),
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            for i in range(count)
        ]

    def read_free(self, count: int) -> list[requests.Response]:
        """`count` requests to free endpoints (the user, the vehicle list): non-billable."""
        headers = {"Authorization": f"Bearer {make_token(self.grant)}"}
        paths = ("/v2.0/user", "/v2.0/vehicles")
        return [requests.get(self.stack.url(paths[i % 2]), headers=headers, timeout=30) for i in range(count)]

    def rollup_totals(self) -> tuple[int, int]:
        """(billable, non-billable) requests in the team's daily rollups: what the Billing tab's chart shows."""
        totals = UsageDaily.objects.filter(period__team=self.team).aggregate(b=Sum("billable"), n=Sum("non_billable"))
        return totals["b"] or 0, totals["n"] or 0

    def logged(self) -> dict[tuple[int, bool], int]:
        """The team's request log: how many requests per (status, billable)."""
        rows = ApiRequest.objects.filter(team=self.team).values_list("status", "billable").annotate(n=Count("id"))
        return {(status, billable): n for status, billable, n in rows}

    def dashboard(self) -> requests.Session:
        """An HTTP session signed in as the Owner (a session row, as signing in makes)."""
        client = Client()
        client.force_login(self.owner.user)
        session = client.session
        session["current_team_id"] = self.team.pk
        session.save()
        return self.stack.http(session.session_key)

    def emails(self, subject: str) -> list:
        return [m for m in self.stack.emails_with_subject(subject) if self.owner.user.email in str(m["To"])]


def beat_ran(stack, task: str, times: int = 1) -> bool:
    return stack.log("worker").count(f"Task {task}[") >= 2 * times  # received + succeeded lines


def test_the_billing_cycle_runs_by_itself(stack):
    alerted = Fleet(stack, "Alert Motors", vehicles=2)
    paying = Fleet(stack, "Paying Motors")
    declined = Fleet(stack, "Declined Motors")
    contracted = Fleet(stack, "Contract Freight")
    granted = Fleet(stack, "Garage Labs")
    for fleet, card in ((paying, GOOD_CARD), (declined, FAILING_CARD)):
        store_card(fleet.owner, card)
        services.switch_plan(actor=fleet.owner, plan_code="payg")
    start = stack.clock.now()
    contract = contracts.create_contract(
        team_id=contracted.team.pk,
        actor=None,
        starts_at=start + timedelta(days=1),
        ends_at=start + timedelta(days=366),
        pricing=Contract.Pricing.GRADUATED,
        tiers=[contracts.TierTerms(up_to=None, unit_price_cents=10)],
        reference="SYS-1",
    )
    grant = grants.start_grant(team_id=granted.team.pk)
    # A grant lasts months (GARAGE_GRANT_MONTHS); this one is made to end in two days so the scenario reaches it.
    Grant.objects.filter(pk=grant.pk).update(ends_at=start + timedelta(days=2))

    # --- usage alerts: 80% and 100% of the Free allowance, each emailed once by the worker ---------------------
    assert [r.status_code for r in alerted.read_odometers(100)] == [200] * 100
    (refused,) = alerted.read_odometers(1)
    assert (refused.status_code, refused.json()["code"]) == (430, "VEHICLE_REQUEST_LIMIT")
    wait_until(lambda: alerted.emails("has used all of its API requests"), message="the 100% alert email")
    wait_until(lambda: beat_ran(stack, "billing.tasks.send_pending_usage_alerts", times=3), message="beat's sweep")
    assert len(alerted.emails("has used 80% of its API requests")) == 1
    assert len(alerted.emails("has used all of its API requests")) == 1
    assert UsageAlert.objects.filter(period__team=alerted.team, emailed_at__isnull=False).count() == 2

    assert [r.status_code for r in paying.read_odometers(7)] == [200] * 7
    assert [r.status_code for r in declined.read_odometers(4)] == [200] * 4
    # Free endpoints and refused requests count as non-billable, written by gunicorn's workers about once a second
    # (billing/unbilled.py); billable ones as billable, before each answer.
    assert [r.status_code for r in paying.read_free(3)] == [200] * 3
    wait_until(lambda: alerted.rollup_totals() == (100, 1), timeout=15, message="the refused request's count")
    wait_until(lambda: paying.rollup_totals() == (7, 3), timeout=15, message="the free requests' counts")
    # Every request is in the team's request log (the Logs tab), written by the same workers about once a second.
    wait_until(lambda: alerted.logged() == {(200, True): 100, (430, False): 1}, timeout=15, message="the log")
    wait_until(lambda: paying.logged() == {(200, True): 7, (200, False): 3}, timeout=15, message="the log")

    # --- a contract starts at its date ---------------------------------------------------------------------
    stack.travel_to(contract.starts_at + timedelta(minutes=1))
    wait_until(lambda: Contract.objects.get(pk=contract.pk).status == Contract.Status.ACTIVE, message="the contract")
    wait_until(lambda: contracted.emails("Your Enterprise contract has started"), message="the contract email")
    assert lifecycle.current_period(contracted.team.pk).contract_id == contract.pk

    # --- a Garage grant ends ------------------------------------------------------------------------------------
    stack.travel_to(start + timedelta(days=2, minutes=1))
    wait_until(lambda: Grant.objects.get(pk=grant.pk).status == Grant.Status.ENDED, message="the grant's end")
    wait_until(lambda: granted.emails("grant has ended"), message="the grant-ended email")
    assert lifecycle.current_period(granted.team.pk).request_allowance == 100  # back on Free's allowance

    # --- the period closes, is invoiced and charged once -------------------------------------------------------
    first_periods = {f.team.pk: BillingPeriod.objects.filter(team=f.team).order_by("start").first() for f in
                     (paying, declined)}  # fmt: skip
    last_end = max(period.end for period in first_periods.values())
    stack.travel_to(last_end + timedelta(seconds=settings.BILLING_CLOSE_GRACE_SECONDS, minutes=2))

    def invoice_of(fleet) -> Invoice | None:
        return Invoice.objects.filter(period=first_periods[fleet.team.pk]).first()

    wait_until(lambda: (i := invoice_of(paying)) and i.status == Invoice.Status.PAID, message="the paid invoice")
    paid = invoice_of(paying)
    assert Invoice.objects.filter(team=paying.team).count() == 1
    assert paid.total_cents == 7 * 15
    assert [(i.amount, i.status) for i in intents_for(paid)] == [(105, "succeeded")]
    wait_until(lambda: paying.emails(f"Receipt for Ignition invoice {paid.number}"), message="the receipt")
    billing_tab = paying.dashboard().get(stack.url("/billing/"), timeout=30)
    assert billing_tab.status_code == 200
    assert re.search(rf"{paid.number}.*?Paid", billing_tab.text, re.S), "the Billing tab lists the paid invoice"

    # --- a failing card: past due, retried on days 1, 3 and 5, then suspended --------------------------------
    wait_until(lambda: (i := invoice_of(declined)) and i.status == Invoice.Status.PAST_DUE, message="past due")
    overdue = invoice_of(declined)
    assert overdue.total_cents == 4 * 15
    wait_until(lambda: declined.emails(f"Payment failed for Ignition invoice {overdue.number}"), message="email")
    failed_at = Payment.objects.get(invoice=overdue, attempt=1).updated_at
    for attempt, day in enumerate(settings.BILLING_DUNNING_RETRY_DAYS, start=2):
        assert Payment.objects.filter(invoice=overdue).count() == attempt - 1  # not retried before its day
        stack.travel_to(failed_at + timedelta(days=day, minutes=1))
        wait_until(lambda a=attempt: Payment.objects.filter(invoice=overdue, attempt=a, status="failed").exists(),
                   message=f"attempt {attempt}")  # fmt: skip
    wait_until(
        lambda: Subscription.objects.get(team=declined.team).status == Subscription.Status.SUSPENDED,
        message="the suspension",
    )
    wait_until(lambda: declined.emails("is suspended until its invoice is paid"), message="the suspension email")
    assert Payment.objects.filter(invoice=overdue).count() == 1 + len(settings.BILLING_DUNNING_RETRY_DAYS)
    (suspended,) = declined.read_odometers(1)
    assert (suspended.status_code, suspended.json()["code"]) == (430, "ACCOUNT_SUSPENDED")

    # --- paying on-session (another card, on the invoice's pay page) lifts it at once ------------------------
    store_card(declined.owner, GOOD_CARD)
    dashboard = declined.dashboard()
    pay_url = stack.url(f"/billing/invoices/{overdue.public_id}/pay/")
    page = dashboard.get(pay_url, timeout=30)
    assert page.status_code == 200
    form = {
        "csrfmiddlewaretoken": re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1),
        "attempt": re.search(r'name="attempt" value="(\d+)"', page.text).group(1),
    }
    paid_page = dashboard.post(pay_url, data=form, headers={"Referer": pay_url}, timeout=60)
    assert paid_page.status_code == 200
    overdue.refresh_from_db()
    assert overdue.status == Invoice.Status.PAID
    assert Subscription.objects.get(team=declined.team).status == Subscription.Status.ACTIVE
    assert [r.status_code for r in declined.read_odometers(1)] == [200]
    assert [i.status for i in intents_for(overdue)].count("succeeded") == 1

    # --- the request log keeps REQUEST_LOG_RETENTION_DAYS: beat purged the first requests once past it ---------
    assert stack.clock.now() - start > timedelta(days=settings.REQUEST_LOG_RETENTION_DAYS)
    wait_until(lambda: not alerted.logged(), message="the request log's purge")
    # The declined team's four first requests went with them; its two since the dunning are kept.
    wait_until(lambda: declined.logged() == {(430, False): 1, (200, True): 1}, message="the recent requests kept")

    # --- and nothing went wrong on the way -----------------------------------------------------------------
    for process in ("worker", "beat"):
        log = stack.log(process)
        assert "Traceback" not in log, f"{process}:\n{log[log.index('Traceback') - 2000 :][:6000]}"
        assert "Couldn't apply scheduled task" not in log
