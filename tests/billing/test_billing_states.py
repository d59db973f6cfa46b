"""One story in every billing state: the Billing tab, the Overview, the usage API, the Garage tab and a real
vehicle API call agree on the allowance, the count used and the words, in each state billing.state knows.

Each test puts a team in a state the way it happens (real metering, the close command, the grant and contract
services), makes one billable API call through the test client, then reads every surface. The call comes first:
it is counted when the state serves it, so every surface shows the count after it.
"""

import html as html_lib
import io
import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from billing import contracts, lifecycle, services
from billing.contracts import TierTerms
from billing.models import BillingPeriod, Subscription
from garage import services as garage
from garage.models import GarageApplication
from tests.billing.usage import count_billable_requests
from tests.conftest import login_as
from tests.factories import GARAGE_APPLICATION, ApplicationFactory, UserFactory
from tests.vehicles.api_helpers import make_grant, make_owner, make_token, make_vehicle, request

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_rate_limits(settings):
    settings.VEHICLE_API_RATE_LIMITS_ENABLED = False


@pytest.fixture
def owner_membership(team, owner):
    return owner.memberships.get(team=team)


@dataclass
class Surfaces:
    """What each surface shows of the team's current period, as text."""

    api: dict  # the vehicle API's answer to one billable call: status, and the error envelope if refused
    billing: str  # the Billing tab's period card
    picker: list[str]  # the Billing tab's period picker labels
    billing_meter: str  # "40 of 2,000", "3 · Unlimited"
    billing_state: str
    overview: str  # the Overview's usage card
    overview_requests: str  # "40 / 2,000"
    overview_state: str
    usage: dict  # GET /api/v1/billing/usage
    garage_meter: str | None  # the Garage tab's, once the team is in the program
    garage_state: str | None

    def agree(self, *, used: int, allowance: int | None, message: str, error: str | None) -> None:
        """Every surface says the same: count, allowance, words, and what a billable request gets."""
        meter = f"{used:,} of {allowance:,}" if allowance is not None else f"{used:,} · Unlimited"
        assert self.billing_meter == meter
        assert (
            self.overview_requests == f"{used:,} / {allowance:,}" if allowance is not None else f"{used:,} / Unlimited"
        )
        assert self.usage["requests"] == {"used": used, "allowance": allowance}
        assert self.billing_state == self.overview_state == self.usage["state"]["message"] == message
        if self.garage_state is not None:
            assert (self.garage_meter, self.garage_state) == (meter, message)
        if error is None:
            assert self.api["status"] == 200
            assert self.usage["state"]["error"] is None
            return
        assert self.api["status"] == 430
        assert self.api["code"] == error
        assert self.usage["state"]["error"] == {
            "type": "BILLING",
            "code": error,
            "description": self.api["description"],
        }
        assert self.api["description"].startswith(message.split(" Your Garage grant")[0])


def text(fragment: str) -> str:
    return re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", " ", fragment))).strip()


def element(html: str, id_: str) -> str:
    """The text of the element with this id ("" if the page has none: `agree` then says which surface lacks it)."""
    match = re.search(rf'<(\w+)[^>]* id="{id_}"[^>]*>(.*?)</\1>', html, flags=re.S)
    return text(match.group(2)) if match else ""


def section(html: str, heading_id: str) -> str:
    return html.split(f'id="{heading_id}"')[1].split("</section>")[0]


class Fleet:
    """An application of the team with a vehicle connected, called through the real vehicle API."""

    def __init__(self, team):
        application = ApplicationFactory(team=team)
        driver = make_owner()
        self.vehicle = make_vehicle(driver)
        self.token = make_token(make_grant(application, driver, [self.vehicle]))

    def call(self) -> dict:
        response = request(Client(), "GET", f"/v2.0/vehicles/{self.vehicle.public_id}/odometer", token=self.token)
        body = response.json()
        return {"status": response.status_code, "code": body.get("code"), "description": body.get("description")}


def read_surfaces(owner_membership, fleet: Fleet) -> Surfaces:
    api = fleet.call()
    client = login_as(Client(), owner_membership)
    billing = client.get(reverse("billing")).content.decode()
    overview = section(client.get(reverse("overview")).content.decode(), "usage-summary-heading")
    usage = client.get("/api/v1/billing/usage")
    assert usage.status_code == 200
    garage_tab = client.get(reverse("garage")).content.decode()
    in_program = 'id="grant-state"' in garage_tab
    card = section(billing, "period-heading")
    requests_row = re.search(r"<dt>Billable requests</dt><dd>(.*?)</dd>", overview, flags=re.S).group(1)
    return Surfaces(
        api=api,
        billing=text(card),
        picker=[text(label) for label in re.findall(r"<option[^>]*>(.*?)</option>", billing)],
        billing_meter=element(card, "meter-requests-label").removeprefix("Billable requests "),
        billing_state=element(card, "period-state"),
        overview=text(overview),
        overview_requests=text(requests_row),
        overview_state=element(overview, "usage-state"),
        usage=usage.json(),
        garage_meter=element(garage_tab, "meter-grant-requests-label").removeprefix("Requests this period ")
        if in_program
        else None,
        garage_state=element(garage_tab, "grant-state") if in_program else None,
    )


def grant_card(owner_membership) -> str:
    billing = login_as(Client(), owner_membership).get(reverse("billing")).content.decode()
    return text(billing.split('class="alert alert-info grant-card"')[1].split("</div>")[0])


def accepted_into_garage(owner_membership, **allowances) -> GarageApplication:
    """Apply on the Garage tab, as an Owner does, and be accepted by staff (which starts the grant now)."""
    response = login_as(Client(), owner_membership).post(reverse("garage"), {"action": "submit", **GARAGE_APPLICATION})
    assert response.status_code == 302
    application = GarageApplication.objects.get(team=owner_membership.team, status="submitted")
    return garage.accept(application.pk, reviewer=UserFactory(is_staff=True), **allowances)


def on_payg(owner_membership) -> None:
    lifecycle.subscription_for(owner_membership.team_id)
    Subscription.objects.filter(team_id=owner_membership.team_id).update(card_on_file=True)  # cards: test_cards.py
    services.switch_plan(actor=owner_membership, plan_code="payg")


def close_early(team) -> BillingPeriod:
    """README's "Try payments" time travel: close the current period as if its end (and grace) had passed."""
    period = lifecycle.current_period(team.pk)
    moment = (period.end + timedelta(hours=2)).isoformat()
    call_command("close_billing_periods", "--now", moment, "--allow-future", "--no-charge", stdout=io.StringIO())
    return period


def starts(moment) -> str:
    return f"{moment:%-d %B %Y}, 00:00 UTC"


# --- the states --------------------------------------------------------------------------------------------------


def test_a_normal_period(owner_membership, team):
    fleet = Fleet(team)
    count_billable_requests(team, 2, vehicle=fleet.vehicle)

    seen = read_surfaces(owner_membership, fleet)

    period = lifecycle.current_period(team.pk)
    assert f"{(period.end.date() - timezone.now().date()).days} day" in seen.billing and "Projected" in seen.billing
    assert seen.usage["state"]["kind"] == "open" and seen.usage["state"]["days_left"] is not None
    seen.agree(used=3, allowance=100, message="97 of 100 billable requests left this period.", error=None)


def test_a_period_closed_early_says_so_everywhere_and_the_api_error_says_the_same(owner_membership, team):
    """The review's first case: after `close_billing_periods --now … --allow-future` the tab called the closed period
    "(current)" with days left and a projection, and the API answered "you have used all the API requests"."""
    on_payg(owner_membership)
    fleet = Fleet(team)
    count_billable_requests(team, 40, vehicle=fleet.vehicle)
    period = close_early(team)

    seen = read_surfaces(owner_membership, fleet)

    assert "used all" not in seen.api["description"]
    assert "day left" not in seen.billing and "days left" not in seen.billing and "Projected" not in seen.billing
    assert "closed early" in seen.billing
    assert f"{period.start:%-d %b %Y} – {period.end - timedelta(days=1):%-d %b %Y} (closed early)" in seen.picker
    assert not any(label.endswith("(current)") for label in seen.picker)
    assert seen.usage["state"]["kind"] == "closed_early" and seen.usage["state"]["days_left"] is None
    assert seen.usage["projected_cents"] == seen.usage["accrued_cents"] == 40 * 15
    seen.agree(
        used=40,
        allowance=2_000,
        message="This billing period was closed early: its usage is invoiced and it takes no more. Billable "
        f"requests are refused until the next period starts on {starts(period.end)}.",
        error="VEHICLE_REQUEST_LIMIT",
    )


def test_a_garage_grant_started_after_the_period_closed_early_promises_nothing_this_period(owner_membership, team):
    """The review's second case: the tab said "1,960 of 25,000 free requests remain" beside a meter at "40 of 2,000"
    (the grant's terms go to open periods; the period holding now was closed by the time travel)."""
    on_payg(owner_membership)
    fleet = Fleet(team)
    count_billable_requests(team, 40, vehicle=fleet.vehicle)
    period = close_early(team)
    accepted_into_garage(owner_membership)  # 25,000 requests a period by default

    seen = read_surfaces(owner_membership, fleet)

    card = grant_card(owner_membership)
    assert "remain" not in card and "1,960" not in card and "left this period" not in card
    message = (
        "This billing period was closed early: its usage is invoiced and it takes no more. Billable requests are "
        f"refused until the next period starts on {starts(period.end)}. Your Garage grant applies from then."
    )
    seen.agree(used=40, allowance=2_000, message=message, error="VEHICLE_REQUEST_LIMIT")


@pytest.mark.parametrize(
    ("grant_requests", "allowance"),
    [(25_000, 25_000), (1_000, 2_000)],  # a grant never lowers a paying team's allowance: the larger one applies
    ids=["grant-larger-than-plan", "grant-smaller-than-plan"],
)
def test_a_garage_grant_mid_period_has_one_allowance_everywhere(owner_membership, team, grant_requests, allowance):
    on_payg(owner_membership)
    fleet = Fleet(team)
    count_billable_requests(team, 39, vehicle=fleet.vehicle)
    accepted_into_garage(owner_membership, request_allowance=grant_requests)

    seen = read_surfaces(owner_membership, fleet)

    card = grant_card(owner_membership)
    message = f"{allowance - 40:,} of {allowance:,} free billable requests left this period under your Garage grant."
    assert f"{allowance:,} billable requests a period across 20 vehicles, free of charge" in card
    assert message in card
    assert seen.usage["state"]["terms"] == "grant" and seen.garage_state is not None
    seen.agree(used=40, allowance=allowance, message=message, error=None)


@pytest.mark.parametrize("request_allowance", [None, 30], ids=["unlimited", "limited"])
def test_an_enterprise_contract(owner_membership, team, request_allowance):
    fleet = Fleet(team)
    contracts.create_contract(
        team_id=team.pk,
        actor=None,
        starts_at=timezone.now() - timedelta(minutes=1),
        ends_at=timezone.now() + timedelta(days=365),
        pricing="graduated",
        tiers=[TierTerms(None, Decimal("12"))],
        request_allowance=request_allowance,
        vehicle_allowance=None,
    )
    count_billable_requests(team, 5, vehicle=fleet.vehicle)

    seen = read_surfaces(owner_membership, fleet)

    expected = (
        "Unlimited billable requests this period under your contract."
        if request_allowance is None
        else "24 of 30 billable requests left this period under your contract."
    )
    assert seen.usage["state"]["terms"] == "contract" and seen.usage["plan"] == "enterprise"
    assert "Enterprise plan" in seen.overview
    seen.agree(used=6, allowance=request_allowance, message=expected, error=None)


def test_an_enterprise_contract_at_its_allowance(owner_membership, team):
    fleet = Fleet(team)
    contracts.create_contract(
        team_id=team.pk,
        actor=None,
        starts_at=timezone.now() - timedelta(minutes=1),
        ends_at=timezone.now() + timedelta(days=365),
        pricing="volume",
        tiers=[TierTerms(None, Decimal("12"))],
        request_allowance=10,
        vehicle_allowance=5,
    )
    count_billable_requests(team, 10, vehicle=fleet.vehicle)

    seen = read_surfaces(owner_membership, fleet)

    end = lifecycle.current_period(team.pk).end
    seen.agree(
        used=10,
        allowance=10,
        message="You have used all 10 billable requests of this period. Billable requests are refused until the "
        f"next period starts on {starts(end)}, or until your allowance is raised.",
        error="VEHICLE_REQUEST_LIMIT",
    )


def test_a_suspended_team(owner_membership, team):
    fleet = Fleet(team)
    count_billable_requests(team, 7, vehicle=fleet.vehicle)
    Subscription.objects.filter(team=team).update(status=Subscription.Status.SUSPENDED)  # dunning: test_dunning.py

    seen = read_surfaces(owner_membership, fleet)

    assert seen.usage["state"]["kind"] == "suspended"
    seen.agree(
        used=7,
        allowance=100,
        message="Your account is suspended: a past-due invoice could not be collected. Billable requests are refused "
        "until it is paid; paying lifts the suspension at once.",
        error="ACCOUNT_SUSPENDED",
    )


def test_a_free_team_at_its_limit(owner_membership, team):
    fleet = Fleet(team)
    count_billable_requests(team, 100, vehicle=fleet.vehicle)

    seen = read_surfaces(owner_membership, fleet)

    end = lifecycle.current_period(team.pk).end
    assert "Projected" in seen.billing  # the period is still running: it has days left and a projection
    seen.agree(
        used=100,
        allowance=100,
        message="You have used all 100 billable requests of this period. Billable requests are refused until the "
        f"next period starts on {starts(end)}, or until your allowance is raised.",
        error="VEHICLE_REQUEST_LIMIT",
    )


def test_pay_as_you_go_at_its_limit(owner_membership, team):
    on_payg(owner_membership)
    fleet = Fleet(team)
    count_billable_requests(team, 1, vehicle=fleet.vehicle)
    period = lifecycle.current_period(team.pk)
    BillingPeriod.objects.filter(pk=period.pk).update(requests_used=2_000)  # 1,999 more through metering is slow

    seen = read_surfaces(owner_membership, fleet)

    seen.agree(
        used=2_000,
        allowance=2_000,
        message="You have used all 2,000 billable requests of this period. Billable requests are refused until the "
        f"next period starts on {starts(period.end)}, or until your allowance is raised.",
        error="VEHICLE_REQUEST_LIMIT",
    )


def test_upgrading_in_a_period_closed_early_applies_from_the_next_period_and_says_so(owner_membership, team, client):
    """The plan-switch page promised "for the rest of this period" for a period already invoiced, and the upgrade
    rewrote that closed period's terms."""
    count_billable_requests(team, 40)
    period = close_early(team)
    Subscription.objects.filter(team_id=team.pk).update(card_on_file=True)  # cards: test_cards.py
    login_as(client, owner_membership)

    page = html_lib.unescape(client.get(reverse("billing_plan_switch") + "?plan=payg").content.decode())
    assert "for the rest of this period" not in page
    assert f"the upgrade applies from the next period, which starts on {period.end:%-d %B %Y}, 00:00 UTC" in page

    client.post(reverse("billing_plan_switch"), {"plan": "payg"})

    period.refresh_from_db()
    following = BillingPeriod.objects.get(team=team, start=period.end)
    assert (period.plan.code, period.request_allowance, period.unit_price_cents) == ("free", 100, 0)
    assert (following.plan.code, following.request_allowance, following.unit_price_cents) == ("payg", 2_000, 15)
