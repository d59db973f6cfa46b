"""GET /api/v1/billing/usage (JSON) and /usage.csv: usage counted from real vehicle API calls, past periods,
who may read it (Owners, by session or personal access token), tenant isolation, the CSV, and query bounds."""

import csv
import io
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts import applications, personal_tokens
from accounts.models import Membership, Team
from accounts.roles import Role
from billing import lifecycle, services
from billing.api import CSV_COLUMNS
from billing.models import Subscription, UsageDaily
from dashboard.csv_export import safe_cell
from tests.conftest import login_as
from tests.factories import ApplicationFactory, MembershipFactory, TeamFactory, UserFactory
from tests.vehicles.api_helpers import make_grant, make_owner, make_token, make_vehicle, request

pytestmark = pytest.mark.django_db

USAGE = "/api/v1/billing/usage"
CSV_URL = "/api/v1/billing/usage.csv"
ODOMETER, LOCATION, VEHICLES = "/vehicles/{id}/odometer", "/vehicles/{id}/location", "/vehicles"
MARCH_1 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_rate_limits(settings):
    settings.VEHICLE_API_RATE_LIMITS_ENABLED = False


@pytest.fixture
def owner_membership(team, owner):
    return Membership.objects.get(team=team, user=owner)


@pytest.fixture
def secret(owner_membership):
    """A personal access token of the team's Owner."""
    return personal_tokens.create_personal_token(actor=owner_membership, name="usage", expires_in_days=None)[1]


def created_on(team: Team, when: datetime) -> Team:
    """Anchor the team's billing periods on `when`'s day (before any period is opened)."""
    Team.objects.filter(pk=team.pk).update(created_at=when)
    team.refresh_from_db()
    return team


def build_fleet(team: Team, name="Fleet Tracker", vins=("5YJSA1E2XMF401234", "5YJ3E1EA7KF305678")):
    """An application and a driver with a 2021 Tesla Model S and Model 3 connected; call inside the time travel."""
    app = ApplicationFactory(team=team, name=name)
    driver = make_owner()
    cars = [
        make_vehicle(driver, vin=vin, model=model) for vin, model in zip(vins, ("Model S", "Model 3"), strict=False)
    ]
    token = make_token(make_grant(app, driver, cars), expires_in=timedelta(days=90))
    return SimpleNamespace(app=app, cars=cars, token=token)


def drive(fleet, vehicle=None, path="/odometer"):
    """One real vehicle API call (GET /vehicles when no vehicle is given)."""
    url = f"/v2.0/vehicles/{vehicle.public_id}{path}" if vehicle else "/v2.0/vehicles"
    response = request(Client(), "GET", url, token=fleet.token)
    assert response.status_code == 200, response.content
    return response


def api(secret: str, url=USAGE, **params):
    return Client().get(url, params, headers={"Authorization": f"Bearer {secret}"})


def usage(secret: str, **params) -> dict:
    response = api(secret, **params)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    return response.json()


def csv_rows(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response.streaming
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def days(start: date, counts: list[tuple[int, int]]) -> list[dict]:
    return [
        {"date": (start + timedelta(days=n)).isoformat(), "billable": billable, "non_billable": non_billable}
        for n, (billable, non_billable) in enumerate(counts)
    ]


# --- the JSON ----------------------------------------------------------------------------------------------------


def test_the_current_period_is_answered_from_real_api_calls(team, secret):
    created_on(team, datetime(2025, 3, 1, 8, 0, tzinfo=UTC))
    with time_machine.travel(MARCH_1, tick=False) as clock:
        fleet = build_fleet(team)
        drive(fleet, fleet.cars[0])
        drive(fleet, fleet.cars[0])
        drive(fleet, fleet.cars[1], "/location")
        drive(fleet)  # GET /vehicles: free, in the daily chart but not counted
        clock.move_to(datetime(2025, 3, 3, 10, 0, tzinfo=UTC))
        drive(fleet, fleet.cars[0])

        body = usage(secret)

    assert body == {
        "period": {"start": "2025-03-01T00:00:00+00:00", "end": "2025-04-01T00:00:00+00:00"},
        "plan": "free",
        "state": {
            "kind": "open",
            "terms": "plan",
            "message": "96 of 100 billable requests left this period.",
            "days_left": 29,
            "error": None,
            "new_vehicle_error": None,
        },
        "requests": {"used": 4, "allowance": 100},
        "vehicles": {"active": 2, "allowance": 5},
        "accrued_cents": 0,
        "projected_cents": 0,
        "daily": days(date(2025, 3, 1), [(3, 1), (0, 0), (1, 0)]),  # every day so far, quiet ones included
    }


def test_pay_as_you_go_cents_are_integers_accrued_and_projected_at_the_current_pace(team, owner_membership, secret):
    created_on(team, datetime(2025, 3, 1, 8, 0, tzinfo=UTC))
    with time_machine.travel(MARCH_1, tick=False) as clock:
        Subscription.objects.filter(pk=lifecycle.subscription_for(team.pk).pk).update(card_on_file=True)
        services.switch_plan(actor=owner_membership, plan_code="payg")
        fleet = build_fleet(team)
        for _ in range(4):
            drive(fleet, fleet.cars[0])
        clock.move_to(datetime(2025, 3, 5, 0, 0, tzinfo=UTC))  # 4 of the period's 31 days gone

        body = usage(secret)

    assert (body["plan"], body["requests"], body["vehicles"]) == (
        "payg",
        {"used": 4, "allowance": 2000},
        {"active": 1, "allowance": 20},
    )
    assert body["accrued_cents"] == 4 * 15
    # 4 requests in 4 days → 27 more in the remaining 27 days, at 15 cents.
    assert body["projected_cents"] == 60 + 27 * 15
    assert type(body["accrued_cents"]) is int and type(body["projected_cents"]) is int
    assert len(body["daily"]) == 5


def test_a_past_period_is_chosen_by_its_start_date(team, secret):
    created_on(team, datetime(2025, 2, 1, 12, 0, tzinfo=UTC))
    with time_machine.travel(datetime(2025, 2, 10, 9, 0, tzinfo=UTC), tick=False) as clock:
        fleet = build_fleet(team)
        for car in fleet.cars:
            drive(fleet, car)
        drive(fleet, fleet.cars[0], "/location")
        clock.move_to(datetime(2025, 3, 10, 9, 0, tzinfo=UTC))
        drive(fleet, fleet.cars[1])

        february = usage(secret, period="2025-02-01")
        current = usage(secret)
        march = usage(secret, period="2025-03-01")

    assert february["period"] == {"start": "2025-02-01T00:00:00+00:00", "end": "2025-03-01T00:00:00+00:00"}
    assert (february["requests"]["used"], february["vehicles"]["active"]) == (3, 2)
    assert february["projected_cents"] == february["accrued_cents"] == 0
    assert len(february["daily"]) == 28  # a closed period: all its days
    assert february["daily"][9] == {"date": "2025-02-10", "billable": 3, "non_billable": 0}
    assert current == march
    assert (current["requests"]["used"], len(current["daily"])) == (1, 10)


@pytest.mark.parametrize("value", ["not-a-date", "2025-02-30", "2025-2-1", "20250201", "", "2025-02-01T00:00"])
def test_a_malformed_period_is_a_400_that_says_what_is_expected(secret, value):
    for url in (USAGE, CSV_URL):
        response = api(secret, url, period=value)
        assert response.status_code == 400
        assert response["Content-Type"] == "application/json"
        assert response.json() == {
            "detail": "`period` must be the start date of a billing period, as YYYY-MM-DD (e.g. 2025-02-01)."
        }


def test_a_date_that_starts_none_of_the_teams_periods_is_a_404(team, secret):
    created_on(team, datetime(2025, 2, 1, 12, 0, tzinfo=UTC))
    with time_machine.travel(datetime(2025, 3, 10, tzinfo=UTC), tick=False):
        lifecycle.current_period(team.pk)
        for value in ("2025-02-02", "2025-02-01", "2099-01-01"):  # February was never opened: no requests then
            for url in (USAGE, CSV_URL):
                response = api(secret, url, period=value)
                assert response.status_code == 404
                assert response.json() == {"detail": f"This team has no billing period starting on {value}."}


# --- who may read it ---------------------------------------------------------------------------------------------


def test_an_owner_reads_it_with_the_dashboard_session(owner_client):
    response = owner_client.get(USAGE)
    assert response.status_code == 200
    assert response.json()["plan"] == "free"
    assert owner_client.get(CSV_URL).status_code == 200


def test_the_session_reads_the_team_chosen_in_the_dashboard(client, owner_membership):
    rival = TeamFactory(name="Rival Motors")
    as_viewer = MembershipFactory(team=rival, user=owner_membership.user, role=Role.VIEWER)

    login_as(client, as_viewer)
    assert client.get(USAGE).status_code == 403

    login_as(client, owner_membership)
    assert client.get(USAGE).status_code == 200


@pytest.mark.parametrize("role", [Role.ADMIN, Role.EDITOR, Role.VIEWER])
def test_other_roles_get_403_by_session_and_by_token(client, make_member, role):
    member = make_member(role)
    secret = personal_tokens.create_personal_token(actor=member, name="mine", expires_in_days=30)[1]
    login_as(client, member)
    expected = {"detail": f"Only the team's Owners can see its billing (your role: {role.label})."}

    for response in (client.get(USAGE), client.get(CSV_URL), api(secret), api(secret, CSV_URL)):
        assert response.status_code == 403
        assert response["Content-Type"] == "application/json"
        assert response.json() == expected


def test_a_signed_in_user_in_no_team_gets_403(client):
    client.force_login(UserFactory())
    response = client.get(USAGE)
    assert response.status_code == 403
    assert response.json() == {"detail": "You are not a member of any team."}


def test_anonymous_callers_and_bad_tokens_get_401_json_even_for_the_csv(client):
    for url in (USAGE, CSV_URL):
        response = client.get(url, HTTP_ACCEPT="text/csv")
        assert (response.status_code, response["Content-Type"]) == (401, "application/json")
        assert response.json() == {"detail": "Authentication credentials were not provided."}
        assert api("igp_unknown", url).json() == {"detail": "Invalid token."}


def test_a_revoked_token_gets_401_on_both_endpoints(owner_membership, secret):
    personal_tokens.revoke_personal_token(
        actor=owner_membership, token=owner_membership.user.personal_access_tokens.get()
    )
    for url in (USAGE, CSV_URL):
        assert api(secret, url).status_code == 401


def test_it_is_read_only_and_never_cached_by_shared_caches(secret):
    assert Client().post(USAGE, headers={"Authorization": f"Bearer {secret}"}).status_code == 405
    response = api(secret)
    assert response["Cache-Control"] == "private, no-store"
    assert "Authorization" in response["Vary"]


# --- tenant isolation --------------------------------------------------------------------------------------------


def test_another_teams_data_is_never_reachable(client, team, owner_membership, secret, other_team):
    created_on(team, datetime(2025, 3, 1, 8, 0, tzinfo=UTC))
    created_on(other_team, datetime(2025, 2, 15, 8, 0, tzinfo=UTC))
    rival_owner = Membership.objects.get(team=other_team)
    rival_secret = personal_tokens.create_personal_token(actor=rival_owner, name="r", expires_in_days=None)[1]
    with time_machine.travel(datetime(2025, 3, 20, 9, 0, tzinfo=UTC), tick=False):
        ours = build_fleet(team)
        drive(ours, ours.cars[0])
        theirs = build_fleet(other_team, name="Rival Secret Project", vins=("WBA00000000009999", "WBA00000000008888"))
        for _ in range(5):
            drive(theirs, theirs.cars[1])
        their_start = "2025-03-15"

        # Our Owner, by token and by session, with the rival's period start: not found, no data.
        login_as(client, owner_membership)
        for response in (
            api(secret, period=their_start),
            api(secret, CSV_URL, period=their_start),
            client.get(USAGE, {"period": their_start}),
        ):
            assert response.status_code == 404
        # Our data, even for someone who is also an Owner of the rival team, is ours only.
        MembershipFactory(team=other_team, user=owner_membership.user, role=Role.OWNER)
        assert client.get(USAGE, {"period": their_start}).status_code == 404
        assert usage(secret)["requests"]["used"] == 1
        our_csv = b"".join(api(secret, CSV_URL).streaming_content).decode()
        # The rival's token sees the rival's team only, and not our period.
        assert usage(rival_secret)["requests"]["used"] == 5
        assert api(rival_secret, period="2025-03-01").status_code == 404

    assert "Rival Secret Project" not in our_csv and "9999" not in our_csv and "8888" not in our_csv
    assert str(theirs.app.client_id) not in our_csv


# --- the CSV -----------------------------------------------------------------------------------------------------


def test_the_csv_lists_the_periods_usage_by_day_application_vehicle_and_endpoint(team, owner_membership, secret):
    created_on(team, datetime(2025, 3, 1, 8, 0, tzinfo=UTC))
    with time_machine.travel(MARCH_1, tick=False) as clock:
        fleet = build_fleet(team)
        valet = build_fleet(team, name="Valet", vins=("1FA6P8CF0L5100042",))
        drive(fleet, fleet.cars[0])
        drive(fleet, fleet.cars[0])
        drive(fleet)
        drive(valet, valet.cars[0], "/location")
        applications.delete_application(actor=owner_membership, application=valet.app)
        clock.move_to(datetime(2025, 3, 2, 10, 0, tzinfo=UTC))
        drive(fleet, fleet.cars[1], "/location")

        response = api(secret, CSV_URL, period="2025-03-01")

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="ignition-usage-2025-03-01.csv"'
    app_id = str(fleet.app.client_id)
    model_s, model_3, mustang = fleet.cars[0], fleet.cars[1], valet.cars[0]
    assert csv_rows(response) == [
        CSV_COLUMNS,
        ["2025-03-01", app_id, "Fleet Tracker", "", "", VEHICLES, "0", "1", "0"],
        ["2025-03-01", app_id, "Fleet Tracker", str(model_s.public_id), "2021 TESLA Model S ••••1234", ODOMETER,
         "2", "0", "0"],
        ["2025-03-01", "", "Deleted application", str(mustang.public_id), "2021 TESLA Model S ••••0042", LOCATION,
         "1", "0", "0"],
        ["2025-03-02", app_id, "Fleet Tracker", str(model_3.public_id), "2021 TESLA Model 3 ••••5678", LOCATION,
         "1", "0", "0"],
    ]  # fmt: skip


def test_the_csv_of_an_empty_period_is_just_its_header(owner_client):
    response = owner_client.get(CSV_URL)
    header = "date,application_id,application,vehicle_id,vehicle,endpoint,billable,non_billable,amount_cents\r\n"
    assert b"".join(response.streaming_content).decode() == header
    assert response["Content-Disposition"].startswith('attachment; filename="ignition-usage-')


@pytest.mark.parametrize("name", ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3", "@SUM(A1)", "\tTabbed"])
def test_text_cells_that_a_spreadsheet_would_run_as_a_formula_are_escaped(team, secret, name):
    fleet = build_fleet(team, name=name)
    drive(fleet, fleet.cars[0])
    rows = csv_rows(api(secret, CSV_URL))
    assert rows[1][2] == "'" + name
    assert rows[1][4] == "2021 TESLA Model S ••••1234"  # untouched


def test_safe_cell_leaves_ordinary_text_alone():
    assert [safe_cell(v) for v in ("Fleet Tracker", "", "a=b", "'quoted", "=1")] == [
        "Fleet Tracker",
        "",
        "a=b",
        "'quoted",
        "'=1",
    ]


# --- query bounds ------------------------------------------------------------------------------------------------


def fill(period, *, apps: int, vehicles: int, endpoints: int, days_: int) -> int:
    """Rollup rows inserted straight into the table: days × applications × vehicles × endpoints."""
    app_ids = [ApplicationFactory(team=period.team).pk for _ in range(apps)]
    driver = make_owner()
    vehicle_ids = [make_vehicle(driver).pk for _ in range(vehicles)]
    rows = [
        UsageDaily(period=period, day=period.start.date() + timedelta(days=day), application_key=app,
                   vehicle_key=vehicle, endpoint=f"/vehicles/{{id}}/endpoint-{endpoint}", billable=2,
                   non_billable=1, amount_cents=30)
        for day in range(days_) for app in app_ids for vehicle in vehicle_ids for endpoint in range(endpoints)
    ]  # fmt: skip
    UsageDaily.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


def queries_for(fetch) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as captured:
        result = fetch()
    return len(captured.captured_queries), result


@pytest.mark.parametrize("via", ["token", "session"])
def test_json_and_csv_cost_the_same_few_queries_whatever_the_volume(
    team, secret, owner_membership, via, django_assert_max_num_queries
):
    session = login_as(Client(), owner_membership)

    def fetch(url):
        response = api(secret, url) if via == "token" else session.get(url)
        assert response.status_code == 200
        return b"".join(response.streaming_content) if response.streaming else response.json()

    with time_machine.travel(datetime(2025, 3, 25, 12, 0, tzinfo=UTC), tick=False):
        created_on(team, datetime(2025, 3, 1, 8, 0, tzinfo=UTC))
        period = lifecycle.current_period(team.pk)
        fill(period, apps=1, vehicles=1, endpoints=1, days_=2)
        fetch(USAGE)  # warm up (a first token use records last_used_at)
        json_budget, _ = queries_for(lambda: fetch(USAGE))
        csv_budget, small_csv = queries_for(lambda: fetch(CSV_URL))
        assert json_budget <= 8 and csv_budget <= 10
        assert small_csv.count(b"\n") == 3

        assert fill(period, apps=4, vehicles=10, endpoints=3, days_=20) == 2400
        with django_assert_max_num_queries(json_budget):
            body = fetch(USAGE)
        with django_assert_max_num_queries(csv_budget):
            big_csv = fetch(CSV_URL)

    assert body["requests"]["used"] == 0 and len(body["daily"]) == 25
    assert body["daily"][5] == {"date": "2025-03-06", "billable": 240, "non_billable": 120}
    assert big_csv.count(b"\n") == 2 + 2400 + 1
