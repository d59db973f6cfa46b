"""The Billing tab, plan switching from the dashboard, the usage banner and the Overview's usage card."""

import re
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest
import time_machine
from django.template import Context, Template
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent, Team
from accounts.roles import Role
from billing import lifecycle, services
from billing.charts import daily_chart, nice_ceiling
from billing.models import BillingEvent, BillingPeriod, Plan, Subscription, UsageAlert, UsageDaily
from billing.templatetags.billing_tags import cents
from tests.conftest import login_as
from tests.factories import ApplicationFactory, MembershipFactory
from tests.vehicles.api_helpers import make_grant, make_owner, make_token, make_vehicle, request
from vehicles.selectors import mask_vin

pytestmark = pytest.mark.django_db

ODOMETER = "/vehicles/{id}/odometer"
LOCATION = "/vehicles/{id}/location"


@pytest.fixture(autouse=True)
def _no_rate_limits(settings):
    settings.VEHICLE_API_RATE_LIMITS_ENABLED = False


@pytest.fixture
def owner_membership(team, owner):
    return owner.memberships.get(team=team)


@pytest.fixture
def fleet(team, owner):
    """The team's two applications, and a driver with three vehicles connected to the first one."""
    tracker = ApplicationFactory(team=team, name="Fleet Tracker")
    second_app = ApplicationFactory(team=team, name="Valet")
    driver = make_owner()
    vehicles = [make_vehicle(driver, model=model) for model in ("Model S", "Model 3", "Model Y")]
    grant = make_grant(tracker, driver, vehicles)
    other_driver = make_owner()
    valet_car = make_vehicle(other_driver, model="Model X", year=2019)
    valet_grant = make_grant(second_app, other_driver, [valet_car])
    return SimpleNamespace(
        tracker=tracker,
        valet=second_app,
        vehicles=vehicles,
        valet_car=valet_car,
        token=make_token(grant),
        valet_token=make_token(valet_grant),
    )


def call(client, token, vehicle=None, path="/odometer"):
    url = f"/v2.0/vehicles/{vehicle.public_id}{path}" if vehicle else "/v2.0/vehicles"
    response = request(client, "GET", url, token=token)
    assert response.status_code == 200, response.content
    return response


def current_period(team) -> BillingPeriod:
    return lifecycle.current_period(team.pk)


def page(client, url=None, **params) -> str:
    response = client.get(url or reverse("billing"), params)
    assert response.status_code == 200
    return response.content.decode()


def confirmation_url(code: str) -> str:
    return f"{reverse('billing_plan_switch')}?plan={code}"


def confirm_switch(client, code: str):
    return client.post(reverse("billing_plan_switch"), {"plan": code})


def followed(response) -> str:
    """The page a POST redirected to, with its messages."""
    assert response.status_code == 302
    return response.client.get(response["Location"]).content.decode()


def set_team_created(team, when: datetime) -> None:
    Team.objects.filter(pk=team.pk).update(created_at=when)
    team.refresh_from_db()


def add_daily(period, day, *, billable=0, non_billable=0, app=0, vehicle=0, endpoint=ODOMETER, price=0):
    return UsageDaily.objects.create(
        period=period,
        day=day,
        application_key=app,
        vehicle_key=vehicle,
        endpoint=endpoint,
        billable=billable,
        non_billable=non_billable,
        amount_cents=billable * price,
    )


def section(html: str, heading_id: str) -> str:
    """The card whose heading has `heading_id`."""
    return html.split(f'id="{heading_id}"')[1].split("</section>")[0]


def table_rows(html: str) -> list[list[str]]:
    """The body rows of the tables in `html`, as the text of their cells."""
    rows = re.findall(r"<tr>(.*?)</tr>", html.split("<tbody>", 1)[1] if "<tbody>" in html else "", flags=re.S)
    cells = [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, flags=re.S) for row in rows]
    return [[re.sub(r"<[^>]+>", "", cell).strip() for cell in row] for row in cells]


def bars(html: str) -> list[str]:
    return re.findall(r'<g class="chart-day".*?</g>', html, flags=re.S)


def rect_height(bar: str, kind: str) -> float:
    match = re.search(rf'<rect class="chart-{kind}"[^>]* height="([\d.]+)"', bar)
    return float(match.group(1)) if match else 0.0


# --- what an Owner sees ------------------------------------------------------------------------------------------


def test_an_owner_sees_the_plan_the_period_and_meters_counted_from_real_api_calls(client, owner_client, team, fleet):
    for vehicle in fleet.vehicles[:2]:
        call(client, fleet.token, vehicle)
    call(client, fleet.token, fleet.vehicles[0], "/location")
    call(client, fleet.token)  # GET /vehicles: free, shown but not counted

    html = page(owner_client)

    period = current_period(team)
    assert "Free" in html and "Email" in html
    assert f"{period.start:%-d %B} – {(period.end - timedelta(days=1)):%-d %B %Y}" in html
    assert f"{(period.end.date() - timezone.now().date()).days} days left" in html
    assert re.search(r"Billable requests</span> <span class=\"meter-value\">3 of 100</span>", html)
    assert '<progress id="meter-requests" max="100" value="3"' in html
    assert '<progress id="meter-vehicles" max="5" value="2"' in html
    assert "Accrued so far</dt><dd>$0.00" in html
    assert "Projected period total</dt><dd>$0.00" in html
    assert f'href="/api/v1/billing/usage.csv?period={period.start.date().isoformat()}"' in html


def test_accrued_and_projected_amounts_are_shown_in_dollars(owner_client, team):
    period = current_period(team)
    BillingPeriod.objects.filter(pk=period.pk).update(requests_used=1234, accrued_cents=123456, unit_price_cents=15)

    html = page(owner_client)

    assert "Accrued so far</dt><dd>$1,234.56" in html
    assert re.search(r"Projected period total</dt><dd>\$[\d,]+\.\d\d", html)


def test_cents_read_as_dollars():
    assert [cents(0), cents(5), cents(15), cents(1234), cents(123456), cents(-250)] == [
        "$0.00",
        "$0.05",
        "$0.15",
        "$12.34",
        "$1,234.56",
        "-$2.50",
    ]
    assert cents(None) == ""


def test_an_unlimited_allowance_reads_unlimited_without_a_progress_bar(owner_client, team):
    period = current_period(team)
    BillingPeriod.objects.filter(pk=period.pk).update(request_allowance=None, requests_used=7)

    html = page(owner_client)

    assert "7 · Unlimited" in html
    assert 'id="meter-requests"' not in html
    assert 'id="meter-vehicles" max="5"' in html


def test_a_new_team_sees_a_friendly_empty_state_instead_of_a_chart(owner_client):
    html = page(owner_client)

    assert "No API usage yet this period" in html
    assert f'href="{reverse("application_list")}"' in html
    assert "<svg" not in html
    assert "Plans" in html  # switching is still offered


# --- the chart ---------------------------------------------------------------------------------------------------


@time_machine.travel(datetime(2025, 3, 10, 15, 0, tzinfo=UTC), tick=False)
def test_the_chart_has_one_bar_per_day_elapsed_with_heights_in_proportion(owner_client, team):
    set_team_created(team, datetime(2025, 2, 1, 9, 0, tzinfo=UTC))  # periods start on the 1st
    period = current_period(team)
    assert period.start == datetime(2025, 3, 1, tzinfo=UTC)
    add_daily(period, date(2025, 3, 2), billable=10)
    add_daily(period, date(2025, 3, 5), billable=20, non_billable=5)
    add_daily(period, date(2025, 3, 10), non_billable=40)

    html = page(owner_client)

    days = bars(html)
    assert len(days) == 10  # 1 to 10 March; the rest of the month has no bars yet
    by_day = {re.search(r'data-day="([\d-]+)"', bar).group(1): bar for bar in days}
    two, five, ten = by_day["2025-03-02"], by_day["2025-03-05"], by_day["2025-03-10"]
    assert rect_height(five, "billable") == pytest.approx(2 * rect_height(two, "billable"))
    assert rect_height(ten, "non-billable") == pytest.approx(8 * rect_height(five, "non-billable"))
    assert rect_height(by_day["2025-03-03"], "billable") == 0
    assert "<title>5 Mar: 20 billable, 5 non-billable</title>" in five
    # Readable without hovering: a y axis up to the (rounded) maximum, a legend, the busiest day, a summary.
    assert re.search(r'text-anchor="end" dominant-baseline="middle">50</text>', html)
    assert "Non-billable (free)" in html
    assert "Busiest day: <strong>10 March, 40 requests</strong>" in html
    assert "30 billable and 45 non-billable in all" in html
    assert ["Wed 5 Mar", "20", "5"] in table_rows(section(html, "chart-heading"))


def test_chart_geometry_stacks_non_billable_on_billable_and_rounds_the_scale_up():
    days = [(date(2025, 1, 1), 30, 10), (date(2025, 1, 2), 0, 0), (date(2025, 1, 3), 15, 0)]

    chart = daily_chart(days, slots=31)

    first, empty, third = chart.bars
    assert chart.scale_max == 50
    assert [tick.value for tick in chart.ticks] == [0, 25, 50]
    assert first.billable_y + first.billable_height == chart.plot_bottom
    assert first.non_billable_y + first.non_billable_height == pytest.approx(first.billable_y)
    assert first.billable_height == pytest.approx(2 * third.billable_height)
    assert (empty.billable_height, empty.non_billable_height) == (0, 0)
    assert third.x + third.width < chart.plot_left + 3 * (chart.plot_right - chart.plot_left) / 31
    assert chart.busiest is first
    assert [label.text for label in chart.labels] == ["1 Jan"]  # 3 Jan would crowd it


def test_chart_labels_the_first_day_each_week_and_the_last_day_without_crowding():
    def labels(n):
        return [label.text for label in daily_chart([(date(2025, 1, d), 1, 0) for d in range(1, n + 1)]).labels]

    assert labels(12) == ["1 Jan", "8 Jan", "12 Jan"]
    assert labels(16) == ["1 Jan", "8 Jan", "16 Jan"]  # 15 Jan gives way to the last day
    assert labels(31) == ["1 Jan", "8 Jan", "15 Jan", "22 Jan", "31 Jan"]
    assert [tick.value for tick in daily_chart([(date(2025, 1, 1), 4, 1)]).ticks] == [0, 5]  # no "2.5" or "2"
    assert [nice_ceiling(n) for n in (0, 1, 3, 10, 11, 199, 2000, 2001)] == [1, 1, 5, 10, 20, 200, 2000, 5000]


# --- breakdowns --------------------------------------------------------------------------------------------------


def test_breakdowns_by_application_endpoint_and_vehicle_come_from_real_usage(client, owner_client, fleet):
    first, second, _ = fleet.vehicles
    for _ in range(3):
        call(client, fleet.token, first)
    call(client, fleet.token, second, "/location")
    call(client, fleet.valet_token, fleet.valet_car)
    call(client, fleet.valet_token)  # free

    html = page(owner_client)

    assert table_rows(section(html, "by-application-heading")) == [
        ["Fleet Tracker", "4", "0", "$0.00"],
        ["Valet", "1", "1", "$0.00"],
    ]
    assert table_rows(section(html, "by-endpoint-heading")) == [
        ["/vehicles/{id}/odometer", "4", "0", "$0.00"],
        ["/vehicles/{id}/location", "1", "0", "$0.00"],
        ["/vehicles", "0", "1", "$0.00"],
    ]
    by_vehicle = table_rows(section(html, "by-vehicle-heading"))
    assert by_vehicle == [
        ["Tesla Model S 2021", mask_vin(first.vin), "3", "0", "$0.00"],
        ["Tesla Model 3 2021", mask_vin(second.vin), "1", "0", "$0.00"],
        ["Tesla Model X 2019", mask_vin(fleet.valet_car.vin), "1", "0", "$0.00"],
    ]  # most used first; /vehicles reaches no vehicle
    assert first.vin not in html


def test_each_breakdown_has_its_own_empty_state(client, owner_client, fleet):
    call(client, fleet.token)  # only a free request that reaches no vehicle

    html = page(owner_client)

    assert "No request reached a vehicle in this period." in html
    assert "<svg" in html  # the chart shows the free request


# --- past periods ------------------------------------------------------------------------------------------------


@time_machine.travel(datetime(2025, 3, 10, 15, 0, tzinfo=UTC), tick=False)
def test_a_past_period_can_be_chosen_and_shows_its_own_numbers(owner_client, team):
    set_team_created(team, datetime(2025, 1, 1, 9, 0, tzinfo=UTC))
    february = lifecycle.current_period(team.pk, datetime(2025, 2, 14, tzinfo=UTC))
    BillingPeriod.objects.filter(pk=february.pk).update(requests_used=42, vehicles_active=3, accrued_cents=630)
    add_daily(february, date(2025, 2, 14), billable=42, app=999)
    current_period(team)

    html = page(owner_client)
    assert '<option value="2025-02-01">1 Feb 2025 – 28 Feb 2025</option>' in html
    assert "1 Mar 2025 – 31 Mar 2025 (current)" in html

    html = page(owner_client, period="2025-02-01")

    assert "You are looking at a past period, 1 February to 28 February 2025" in html
    assert "42 of 100" in html and "Accrued in the period</dt><dd>$6.30" in html
    assert "Projected period total" not in html
    assert len(bars(html)) == 28
    assert "<td>Deleted application</td>" in html
    assert 'usage.csv?period=2025-02-01"' in html


def test_another_teams_period_or_a_made_up_date_is_not_found(owner_client, team, other_team):
    set_team_created(other_team, timezone.now() - timedelta(days=70))
    theirs = lifecycle.current_period(other_team.pk, timezone.now() - timedelta(days=60))
    current_period(team)

    assert owner_client.get(reverse("billing"), {"period": theirs.start.date().isoformat()}).status_code == 404
    assert owner_client.get(reverse("billing"), {"period": "2001-01-01"}).status_code == 404
    assert owner_client.get(reverse("billing"), {"period": "not-a-date"}).status_code == 404


# --- plan switching ----------------------------------------------------------------------------------------------


def test_without_a_card_the_upgrade_says_a_card_is_needed_and_changes_nothing(owner_client, team, mailoutbox):
    html = page(owner_client)
    assert f'href="{reverse("billing_card")}?next=upgrade">Add a card to upgrade</a>' in html
    assert "No card on file" in html

    confirm = page(owner_client, confirmation_url("payg"))
    assert "A card on file is required first" in confirm
    assert f'href="{reverse("billing_card")}?next=upgrade">Add a card</a>' in confirm
    assert "Upgrade now</button>" not in confirm

    html = followed(confirm_switch(owner_client, "payg"))

    assert services.CARD_REQUIRED in html
    period = current_period(team)
    assert (Subscription.objects.get(team=team).plan.code, period.request_allowance) == ("free", 100)
    assert not BillingEvent.objects.filter(kind=BillingEvent.Kind.PLAN_CHANGED).exists()
    assert mailoutbox == []


def test_with_a_card_an_upgrade_takes_effect_at_once_and_is_audited_and_emailed(
    client, owner_client, team, owner, fleet, mailoutbox, django_capture_on_commit_callbacks, send_queued_emails
):
    Subscription.objects.filter(pk=lifecycle.subscription_for(team.pk).pk).update(card_on_file=True)
    call(client, fleet.token, fleet.vehicles[0])  # on Free: stays free
    assert f'href="{confirmation_url("payg")}">Upgrade to Pay-as-you-go</a>' in page(owner_client)

    confirm = page(owner_client, confirmation_url("payg"))
    assert "Upgrade now: 2,000 billable requests and 20 active vehicles for the rest of this period" in confirm
    assert "requests from now on at $0.15 each" in confirm
    assert "Requests made on Free stay free (1 so far this period)" in confirm

    with django_capture_on_commit_callbacks(execute=True):
        response = confirm_switch(owner_client, "payg")
    send_queued_emails()
    html = followed(response)

    assert "You&#x27;re on Pay-as-you-go now: 2,000 billable requests and 20 active vehicles" in html
    period = current_period(team)
    assert (period.plan.code, period.request_allowance, period.vehicle_allowance, period.unit_price_cents) == (
        "payg",
        2000,
        20,
        15,
    )
    event = BillingEvent.objects.get(kind=BillingEvent.Kind.PLAN_CHANGED)
    assert (event.actor, event.before["plan"], event.after["plan"]) == (owner, "free", "payg")
    assert AuditEvent.objects.filter(team=team, action="billing.plan_changed", actor=owner).exists()
    assert [message.to for message in mailoutbox] == [[owner.email]]
    assert "Plan changed from Free to Pay-as-you-go" in html  # the history
    assert '<progress id="meter-requests" max="2000" value="1"' in html

    call(client, fleet.token, fleet.vehicles[0])
    assert "Accrued so far</dt><dd>$0.15" in page(owner_client)


@pytest.fixture
def on_payg(team, owner_membership):
    Subscription.objects.filter(pk=lifecycle.subscription_for(team.pk).pk).update(card_on_file=True)
    services.switch_plan(actor=owner_membership, plan_code="payg")


def test_a_downgrade_is_scheduled_for_the_period_end_shown_and_can_be_canceled(owner_client, team, on_payg):
    period = current_period(team)
    BillingPeriod.objects.filter(pk=period.pk).update(accrued_cents=450)
    end = f"{period.end:%-d %B %Y}"
    assert f'href="{confirmation_url("free")}">Switch to Free</a>' in page(owner_client)

    confirm = page(owner_client, confirmation_url("free"))
    assert f"Switch to Free on {end}" in confirm
    assert "Charges accrued until then are billed ($4.50 so far this period)" in confirm
    assert f"You can cancel the switch any time before {end}" in confirm

    html = followed(confirm_switch(owner_client, "free"))

    assert f"Switches to Free on {end}. You can cancel the switch until then." in html
    assert f"Switches to Free on {end}.</strong>" in html  # the plan card, while the switch is pending
    subscription = Subscription.objects.get(team=team)
    assert (subscription.plan.code, subscription.pending_plan.code) == ("payg", "free")
    assert subscription.pending_at == period.end
    assert current_period(team).request_allowance == 2000  # nothing changes before the period ends
    assert BillingEvent.objects.filter(kind=BillingEvent.Kind.PLAN_CHANGE_SCHEDULED).exists()

    html = followed(owner_client.post(reverse("billing_plan_change_cancel")))

    assert "Scheduled switch canceled: you stay on Pay-as-you-go." in html
    assert "Switches to Free on" not in html
    assert Subscription.objects.get(team=team).pending_plan is None
    assert "Scheduled switch to Free canceled" in html


def test_canceling_when_nothing_is_scheduled_says_so(owner_client):
    html = followed(owner_client.post(reverse("billing_plan_change_cancel")))

    assert "There is no scheduled plan change to cancel." in html


def test_enterprise_is_contact_sales_and_cannot_be_switched_to(owner_client, team):
    html = page(owner_client)
    assert "Contact sales</a>" in html and 'href="mailto:' in html
    assert "?plan=enterprise" not in html
    confirm = page(owner_client, confirmation_url("enterprise"))
    assert "Contact sales" in confirm and '<form method="post"' not in confirm.split("<main")[1]

    html = followed(confirm_switch(owner_client, "enterprise"))

    assert "That plan is set up with our sales team" in html
    assert Subscription.objects.get(team=team).plan.code == "free"


def test_an_unknown_plan_is_not_found(owner_client):
    assert owner_client.get(confirmation_url("platinum")).status_code == 404
    assert owner_client.get(reverse("billing_plan_switch")).status_code == 404
    assert confirm_switch(owner_client, "platinum").status_code == 404


@pytest.mark.parametrize("role", [Role.ADMIN, Role.EDITOR, Role.VIEWER])
def test_only_owners_see_billing_or_switch_plans(client, team, make_member, role):
    Subscription.objects.filter(pk=lifecycle.subscription_for(team.pk).pk).update(card_on_file=True)
    login_as(client, make_member(role))

    assert client.get(reverse("billing")).status_code == 403
    assert client.get(confirmation_url("payg")).status_code == 403
    assert confirm_switch(client, "payg").status_code == 403
    assert client.post(reverse("billing_plan_change_cancel")).status_code == 403
    assert Subscription.objects.get(team=team).plan.code == "free"
    assert not BillingEvent.objects.filter(kind=BillingEvent.Kind.PLAN_CHANGED).exists()


def test_switching_needs_the_csrf_token(team, owner):
    Subscription.objects.filter(pk=lifecycle.subscription_for(team.pk).pk).update(card_on_file=True)
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)

    assert confirm_switch(client, "payg").status_code == 403
    assert Subscription.objects.get(team=team).plan.code == "free"

    form = client.get(confirmation_url("payg")).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    response = client.post(reverse("billing_plan_switch"), {"plan": "payg", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert Subscription.objects.get(team=team).plan.code == "payg"


# --- a bounded number of queries ---------------------------------------------------------------------------------


def _fill_period(period, *, apps: int, vehicles: int, endpoints: int) -> int:
    """Rollup rows for every day of March × application × vehicle × endpoint, inserted straight into the table."""
    team = period.team
    app_ids = [ApplicationFactory(team=team).pk for _ in range(apps)]
    driver = make_owner()
    vehicle_ids = [make_vehicle(driver).pk for _ in range(vehicles)]
    rows = [
        UsageDaily(
            period=period,
            day=date(2025, 3, day),
            application_key=app,
            vehicle_key=vehicle,
            endpoint=f"/vehicles/{{id}}/endpoint-{endpoint}",
            billable=day % 3,
            non_billable=1,
            amount_cents=(day % 3) * 15,
        )
        for day in range(1, 31)
        for app in app_ids
        for vehicle in vehicle_ids
        for endpoint in range(endpoints)
    ]
    UsageDaily.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


QUERY_BUDGET = 21  # 20, plus the active grant (Garage program)


@time_machine.travel(datetime(2025, 3, 30, 12, 0, tzinfo=UTC), tick=False)
def test_the_tab_costs_the_same_few_queries_whatever_the_volume(
    owner_client, team, owner_membership, on_payg, django_assert_max_num_queries
):
    set_team_created(team, datetime(2025, 1, 1, 9, 0, tzinfo=UTC))
    for month in (1, 2):  # past periods for the picker
        lifecycle.current_period(team.pk, datetime(2025, month, 15, tzinfo=UTC))
    period = current_period(team)
    services.switch_plan(actor=owner_membership, plan_code="free")  # a pending change and history rows
    UsageAlert.objects.create(period=period, kind=UsageAlert.Kind.REQUESTS_80)
    BillingPeriod.objects.filter(pk=period.pk).update(requests_used=1700, vehicles_active=12, accrued_cents=25500)

    assert _fill_period(period, apps=2, vehicles=5, endpoints=3) == 900
    owner_client.get(reverse("billing"))  # warm the session
    with django_assert_max_num_queries(QUERY_BUDGET):
        html = page(owner_client)
    assert len(bars(html)) == 30 and "used 80% of this period" in html

    assert _fill_period(period, apps=5, vehicles=18, endpoints=3) == 8100  # 10× the rows in all
    with django_assert_max_num_queries(QUERY_BUDGET):
        html = page(owner_client)
    assert "more in the CSV export" in html


# --- the usage banner --------------------------------------------------------------------------------------------


def _alert(team, kind, **counters):
    period = current_period(team)
    BillingPeriod.objects.filter(pk=period.pk).update(**counters)
    UsageAlert.objects.create(period=period, kind=kind)
    return period


def test_owners_see_the_80_percent_banner_on_every_dashboard_page(owner_client, team):
    _alert(team, UsageAlert.Kind.REQUESTS_80, requests_used=80)

    for name in ("overview", "application_list", "team", "billing"):
        html = page(owner_client, reverse(name))
        assert "You've used 80% of this period's API requests</strong> (80 of 100)" in html.replace("&#x27;", "'")
    assert f'<a href="{reverse("billing")}">See Billing</a>' in page(owner_client, reverse("overview"))


def test_at_the_allowance_the_banner_says_billable_requests_are_refused_until_the_period_ends(owner_client, team):
    _alert(team, UsageAlert.Kind.REQUESTS_80, requests_used=100)
    period = _alert(team, UsageAlert.Kind.REQUESTS_100)
    _alert(team, UsageAlert.Kind.VEHICLES_100, vehicles_active=5)

    html = page(owner_client, reverse("overview"))

    assert (
        f"Billable requests are refused until the next period starts on {period.end:%-d %B %Y, %H:%M} UTC, "
        "or until your allowance is raised." in html
    )
    assert "80%" not in html
    assert "Requests to other vehicles are refused" in html


def test_the_banner_goes_away_once_an_upgrade_lifts_the_limit(owner_client, team, owner_membership):
    _alert(team, UsageAlert.Kind.REQUESTS_100, requests_used=100)
    assert "Billable requests are refused" in page(owner_client, reverse("overview"))
    Subscription.objects.filter(team=team).update(card_on_file=True)

    services.switch_plan(actor=owner_membership, plan_code="payg")

    assert "Billable requests are refused" not in page(owner_client, reverse("overview"))


def test_other_roles_and_other_periods_show_no_banner(client, team, make_member):
    _alert(team, UsageAlert.Kind.REQUESTS_100, requests_used=100)
    login_as(client, make_member(Role.ADMIN))
    assert "usage-banner" not in page(client, reverse("overview"))


def test_the_banner_costs_two_queries_for_owners_and_none_for_anyone_else(
    team, owner_membership, make_member, django_assert_num_queries
):
    _alert(team, UsageAlert.Kind.REQUESTS_80, requests_used=90)
    template = Template("{% load billing_tags %}{% usage_banner %}")
    owner_membership = type(owner_membership).objects.get(pk=owner_membership.pk)
    admin = make_member(Role.ADMIN)

    with django_assert_num_queries(2):  # the account's status, and the period's alerts
        assert "80%" in template.render(Context({"current_membership": owner_membership}))
    with django_assert_num_queries(0):
        assert template.render(Context({"current_membership": admin})).strip() == ""
        assert template.render(Context({"current_membership": None})).strip() == ""
        assert template.render(Context({})).strip() == ""  # anonymous pages: no current_membership at all


def test_the_login_page_renders_no_banner(client):
    assert "usage-banner" not in client.get(reverse("account_login")).content.decode()


# --- the Overview tab --------------------------------------------------------------------------------------------


def test_the_overview_shows_owners_a_usage_summary_linking_to_billing(client, owner_client, team, fleet):
    call(client, fleet.token, fleet.vehicles[0])
    call(client, fleet.token, fleet.vehicles[1])

    html = page(owner_client, reverse("overview"))

    card = html.split('id="usage-summary-heading"')[1].split("</section>")[0]
    period = current_period(team)
    assert f"Free plan · {period.start:%-d %b} – {period.end - timedelta(days=1):%-d %b %Y} (UTC)" in card
    assert "2<small> / 100</small>" in card and "2<small> / 5</small>" in card
    assert "$0.00" in card
    assert f'href="{reverse("billing")}"' in card


@pytest.mark.parametrize("role", [Role.ADMIN, Role.EDITOR, Role.VIEWER])
def test_other_roles_see_no_usage_numbers_on_the_overview(client, team, make_member, role):
    login_as(client, make_member(role))

    html = page(client, reverse("overview"))

    assert "Usage this period" not in html


def test_a_team_on_an_unlimited_contract_reads_unlimited_on_the_overview(owner_client, team):
    enterprise = Plan.objects.get(code=Plan.ENTERPRISE)
    period = current_period(team)
    BillingPeriod.objects.filter(pk=period.pk).update(plan=enterprise, request_allowance=None, vehicle_allowance=None)

    html = page(owner_client, reverse("overview"))

    assert "0<small> / Unlimited</small>" in html and "Enterprise plan" in html


def test_an_owner_of_two_teams_sees_the_chosen_teams_numbers(client, team, owner, other_team):
    MembershipFactory(team=other_team, user=owner, role=Role.OWNER)
    BillingPeriod.objects.filter(pk=current_period(other_team).pk).update(requests_used=77)
    BillingPeriod.objects.filter(pk=current_period(team).pk).update(requests_used=12)
    login_as(client, owner.memberships.get(team=team))

    html = page(client)

    assert "12 of 100" in html and "77 of 100" not in html


@pytest.mark.parametrize(("status", "words"), [("past_due", "A payment failed"), ("suspended", "is suspended")])
def test_owners_see_why_payments_need_them(owner_client, team, status, words):
    from billing.lifecycle import subscription_for

    Subscription.objects.filter(pk=subscription_for(team.pk).pk).update(status=status)
    assert words in page(owner_client, reverse("overview"))
