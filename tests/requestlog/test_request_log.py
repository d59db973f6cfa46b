"""The request log (the dashboard's Logs tab): what the vehicle API writes to it, and what a team member reads.

Requests go through the real API views (Django's test client); the suite writes each row with its request
(REQUEST_LOG_FLUSH_SECONDS=0, tests/conftest.py). The rows gathered in a worker and written by its thread, over
HTTP with gunicorn: test_request_log_over_http.py.
"""

import csv
import io
import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.roles import Role
from billing import lifecycle
from billing.models import BillingPeriod
from requestlog import selectors, services
from requestlog.models import ApiRequest
from tests.conftest import login_as
from tests.factories import ApplicationFactory, MembershipFactory, TeamFactory
from tests.vehicles.api_helpers import make_owner, make_vehicle, request

pytestmark = pytest.mark.django_db

ODOMETER = "/vehicles/{id}/odometer"


@pytest.fixture
def owner(api):
    return login_as_role(api.team, Role.OWNER)


def login_as_role(team, role):
    return MembershipFactory(team=team, role=role)


def logged(team) -> list[ApiRequest]:
    return list(ApiRequest.objects.filter(team=team).order_by("id"))


def paying(team, cents=15) -> None:
    """The team's current period at `cents` a billable request (Pay-as-you-go's price), as a plan change sets it."""
    period = lifecycle.current_period(team.pk)
    BillingPeriod.objects.filter(pk=period.pk).update(unit_price_cents=cents)


# --- what the API writes ----------------------------------------------------------------------------------------


def test_a_billable_read_is_logged_with_its_request_id_and_price(client, api):
    paying(api.team)
    response = request(client, "GET", api.base + "/odometer", token=api.token)
    assert response.status_code == 200
    (row,) = logged(api.team)
    assert (row.request_id, row.method, row.endpoint, row.path) == (
        response["SC-Request-Id"],
        "GET",
        ODOMETER,
        f"{api.base}/odometer",
    )
    assert (row.application_key, row.vehicle_key, row.status) == (api.application.pk, api.vehicle.pk, 200)
    assert (row.billable, row.price_cents, row.error_type, row.error_code) == (True, 15, "", "")


def test_failures_are_logged_with_their_error_and_never_billable(client, api):
    paying(api.team)
    other = make_vehicle(make_owner())  # not connected to this token's grant
    refused = request(client, "GET", f"/v2.0/vehicles/{other.public_id}/odometer", token=api.token)
    invalid = request(client, "POST", api.base + "/security", token=api.token, body={"action": "OPEN"})
    assert (refused.status_code, invalid.status_code) == (403, 400)
    rows = logged(api.team)
    assert [(r.status, r.error_type, r.error_code, r.billable, r.price_cents) for r in rows] == [
        (403, "PERMISSION", "", False, 0),
        (400, "VALIDATION", "PARAMETER", False, 0),
    ]
    assert [r.request_id for r in rows] == [refused["SC-Request-Id"], invalid["SC-Request-Id"]]


def test_a_request_refused_at_the_free_limit_is_logged_with_its_billing_code(client, api):
    period = lifecycle.current_period(api.team.pk)
    BillingPeriod.objects.filter(pk=period.pk).update(requests_used=period.request_allowance)
    response = request(client, "GET", api.base + "/odometer", token=api.token)
    assert response.status_code == 430
    (row,) = logged(api.team)
    assert (row.status, row.error_type, row.error_code, row.billable) == (
        430,
        "BILLING",
        "VEHICLE_REQUEST_LIMIT",
        False,
    )


def test_free_endpoints_are_logged_as_not_billable(client, api):
    paying(api.team)
    request(client, "GET", "/v2.0/vehicles", token=api.token)
    request(client, "GET", api.base + "/permissions", token=api.token)
    assert [(r.endpoint, r.status, r.billable) for r in logged(api.team)] == [
        ("/vehicles", 200, False),
        ("/vehicles/{id}/permissions", 200, False),
    ]


def test_a_request_without_a_valid_token_belongs_to_no_team_and_is_not_logged(client, api):
    assert request(client, "GET", api.base + "/odometer", token="not-a-token").status_code == 401
    assert not ApiRequest.objects.exists()


def test_a_batch_is_logged_with_each_of_its_requests(client, api):
    paying(api.team)
    body = {"requests": [{"path": "/odometer"}, {"path": "/nowhere"}, {"path": "/vin"}]}
    response = request(client, "POST", api.base + "/batch", token=api.token, body=body)
    items = response.json()["responses"]
    (batch_row,) = [r for r in logged(api.team) if not r.batch_request_id]
    item_rows = [r for r in logged(api.team) if r.batch_request_id]
    assert (batch_row.endpoint, batch_row.status, batch_row.billable) == ("/vehicles/{id}/batch", 200, False)
    assert batch_row.request_id == response["SC-Request-Id"]
    assert [(r.request_id, r.batch_request_id) for r in item_rows] == [
        (item["headers"]["sc-request-id"], response["SC-Request-Id"]) for item in items
    ]
    assert [(r.endpoint, r.status, r.billable, r.price_cents, r.error_code) for r in item_rows] == [
        (ODOMETER, 200, True, 15, ""),
        ("unknown", 404, False, 0, "PATH"),
        ("/vehicles/{id}/vin", 200, True, 15, ""),
    ]
    assert [r.path for r in item_rows] == [f"{api.base}/odometer", f"{api.base}/nowhere", f"{api.base}/vin"]


# --- the Logs tab ---------------------------------------------------------------------------------------------


def make_rows(team, application, vehicle, n, *, start=None, **fields):
    """`n` logged requests, a second apart, oldest first; their request ids."""
    start = start or timezone.now() - timedelta(hours=1)
    ids = []
    for i in range(n):
        ids.append(str(uuid.uuid4()))
        values = {
            "method": "GET",
            "endpoint": ODOMETER,
            "path": f"/v2.0/vehicles/{vehicle.public_id}/odometer",
            "status": 200,
            "price_cents": 15,
        } | fields
        services.record(
            team_id=team.pk,
            occurred_at=start + timedelta(seconds=i),
            request_id=ids[-1],
            application_id=application.pk,
            vehicle_id=vehicle.pk,
            **values,
        )
    return ids


def shown_ids(response) -> list[str]:
    return [row.entry.request_id for row in response.context["rows"]]


def test_the_tab_lists_the_teams_requests_newest_first_and_nobody_elses(client, api, owner):
    mine = make_rows(api.team, api.application, api.vehicle, 3)
    rival = TeamFactory()
    make_rows(rival, ApplicationFactory(team=rival), make_vehicle(make_owner()), 2)
    response = login_as(client, owner).get(reverse("log_list"))
    assert response.status_code == 200
    assert shown_ids(response) == mine[::-1]
    html = response.content.decode()
    assert api.application.name in html and "$0.15" in html


def test_an_empty_log_says_how_requests_get_there(client, owner):
    response = login_as(client, owner).get(reverse("log_list"))
    assert "No API requests yet" in response.content.decode()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"endpoint": "/vehicles/{id}/vin"}, ["vin"]),
        ({"status": "4"}, ["refused"]),
        ({"billable": "no"}, ["refused", "second app"]),
        ({"status": "5"}, ["second app"]),
        ({"billable": "yes"}, ["other car", "vin", "odometer"]),
        ({"vehicle": "OTHER"}, ["other car"]),
        ({"application": "SECOND"}, ["second app"]),
    ],
)
def test_filters_narrow_the_list(client, api, owner, query, expected):
    start = timezone.now() - timedelta(hours=2)
    second_app = ApplicationFactory(team=api.team, name="Second app")
    app, car = api.application, api.vehicle
    rows = [
        ("odometer", app, car, start, {}),
        ("vin", app, car, start + timedelta(minutes=1), {"endpoint": "/vehicles/{id}/vin"}),
        ("refused", app, car, start + timedelta(minutes=2), {"status": 403, "error_type": "PERMISSION"}),
        ("other car", app, api.second, start + timedelta(minutes=3), {}),
        ("second app", second_app, car, start - timedelta(days=3), {"status": 500}),
    ]
    names = {}
    for name, application, vehicle, moment, fields in rows:
        fields.setdefault("price_cents", 15 if fields.get("status", 200) == 200 else None)
        (request_id,) = make_rows(api.team, application, vehicle, 1, start=moment, **fields)
        names[request_id] = name
    placeholders = {"OTHER": str(api.second.public_id), "SECOND": str(second_app.client_id)}
    query = {key: placeholders.get(value, value) for key, value in query.items()}
    response = login_as(client, owner).get(reverse("log_list"), query)
    assert response.status_code == 200
    assert [names[request_id] for request_id in shown_ids(response)] == expected


def test_the_date_range_is_whole_utc_days_inclusive(client, api, owner):
    today = timezone.now().replace(hour=12, minute=0, second=0, microsecond=0)
    yesterday = make_rows(api.team, api.application, api.vehicle, 1, start=today - timedelta(days=1))
    two_days_ago = make_rows(api.team, api.application, api.vehicle, 1, start=today - timedelta(days=2))
    day = (today - timedelta(days=1)).date().isoformat()
    response = login_as(client, owner).get(reverse("log_list"), {"since": day, "until": day})
    assert shown_ids(response) == yesterday
    response = client.get(reverse("log_list"), {"until": day})
    assert shown_ids(response) == yesterday + two_days_ago


def test_searching_a_request_id_finds_it_and_a_batch_id_finds_its_requests(client, api, owner):
    paying(api.team)
    body = {"requests": [{"path": "/odometer"}, {"path": "/vin"}]}
    batch = request(client, "POST", api.base + "/batch", token=api.token, body=body)
    single = request(client, "GET", api.base + "/odometer", token=api.token)
    login_as(client, owner)
    assert shown_ids(client.get(reverse("log_list"), {"q": single["SC-Request-Id"]})) == [single["SC-Request-Id"]]
    found = shown_ids(client.get(reverse("log_list"), {"q": batch["SC-Request-Id"]}))
    assert len(found) == 3 and batch["SC-Request-Id"] in found
    assert shown_ids(client.get(reverse("log_list"), {"q": str(uuid.uuid4())})) == []


def test_bad_filters_answer_the_form_with_its_errors(client, api, owner):
    rival_app = ApplicationFactory(team=TeamFactory())
    login_as(client, owner)
    response = client.get(
        reverse("log_list"),
        {"application": str(rival_app.client_id), "vehicle": "not-a-uuid", "since": "2026-13-45", "after": "x"},
    )
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert set(errors) == {"application", "vehicle", "since", "after"}
    response = client.get(reverse("log_list"), {"since": "2026-05-02", "until": "2026-05-01"})
    assert response.status_code == 400 and "before the start date" in response.content.decode()


def test_pages_follow_each_other_without_gaps_or_repeats_even_as_requests_arrive(client, api, owner, monkeypatch):
    monkeypatch.setattr(selectors, "PAGE_SIZE", 2)
    moment = timezone.now() - timedelta(minutes=5)
    ids = make_rows(api.team, api.application, api.vehicle, 3, start=moment - timedelta(minutes=1))
    ids += make_rows(api.team, api.application, api.vehicle, 1, start=moment)  # the same moment: the id decides
    ids += make_rows(api.team, api.application, api.vehicle, 1, start=moment)
    login_as(client, owner)
    seen, params = [], {"billable": "yes"}
    first = client.get(reverse("log_list"), params)
    seen += shown_ids(first)
    make_rows(api.team, api.application, api.vehicle, 1, start=timezone.now())  # arrives while paging
    next_query = first.context["next_query"]
    while next_query:
        page = client.get(reverse("log_list") + "?" + next_query)
        assert "billable=yes" in next_query  # the filters follow the pages
        seen += shown_ids(page)
        next_query = page.context["next_query"]
    assert seen == ids[::-1]


def test_a_request_shows_in_full_and_a_batch_with_its_requests(client, api, owner):
    paying(api.team)
    body = {"requests": [{"path": "/odometer"}, {"path": "/nowhere"}]}
    batch = request(client, "POST", api.base + "/batch", token=api.token, body=body)
    login_as(client, owner)
    page = client.get(reverse("log_detail", args=[batch["SC-Request-Id"]]))
    assert page.status_code == 200
    assert [row.entry.endpoint for row in page.context["items"]] == [ODOMETER, "unknown"]
    item_id = batch.json()["responses"][1]["headers"]["sc-request-id"]
    html = client.get(reverse("log_detail", args=[item_id])).content.decode()
    assert "RESOURCE_NOT_FOUND:PATH" in html and batch["SC-Request-Id"] in html and "never billed" in html
    assert client.get(reverse("log_detail", args=[str(uuid.uuid4())])).status_code == 404


def test_prices_are_for_the_billing_tabs_readers_billable_or_not_for_everyone(client, api):
    make_rows(api.team, api.application, api.vehicle, 1)
    viewer = login_as_role(api.team, Role.VIEWER)
    html = login_as(client, viewer).get(reverse("log_list")).content.decode()
    assert "$0.15" not in html and ">yes<" in html
    rows = list(csv.reader(io.StringIO(b"".join(client.get(reverse("log_export")).streaming_content).decode())))
    assert "price_usd" not in rows[0] and rows[1][rows[0].index("billable")] == "yes"
    owner = login_as_role(api.team, Role.OWNER)
    assert "$0.15" in login_as(client, owner).get(reverse("log_list")).content.decode()


def test_the_csv_export_has_every_matching_request_and_nothing_a_spreadsheet_would_run(client, api, owner):
    make_rows(api.team, api.application, api.vehicle, 2)
    formula = '=HYPERLINK("https://evil.example")'
    unknown = {"endpoint": "unknown", "status": 404, "price_cents": None}
    make_rows(api.team, api.application, api.vehicle, 1, path=formula, start=timezone.now(), **unknown)
    response = login_as(client, owner).get(reverse("log_export"), {"billable": "yes"})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="ignition-requests-')
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    header, body = rows[0], rows[1:]
    assert len(body) == 2
    assert {row[header.index("price_usd")] for row in body} == {"0.15"}
    assert {row[header.index("application_client_id")] for row in body} == {str(api.application.client_id)}
    everything = login_as(client, owner).get(reverse("log_export"))
    rows = list(csv.reader(io.StringIO(b"".join(everything.streaming_content).decode())))
    assert rows[1][rows[0].index("path")].startswith("'=")  # the newest: escaped, shown as text


def test_the_logs_tab_needs_a_team(client, api):
    assert client.get(reverse("log_list")).status_code == 302  # to sign in


# --- retention ------------------------------------------------------------------------------------------------


def test_the_purge_deletes_only_what_is_older_than_the_retention_and_can_run_twice(api, settings, monkeypatch):
    settings.REQUEST_LOG_RETENTION_DAYS = 30
    monkeypatch.setattr(services, "PURGE_BATCH", 2)  # several batches
    now = timezone.now()
    old = make_rows(api.team, api.application, api.vehicle, 5, start=now - timedelta(days=31))
    kept = make_rows(api.team, api.application, api.vehicle, 2, start=now - timedelta(days=29))
    assert services.purge_expired(now) == 5
    assert services.purge_expired(now) == 0
    assert [r.request_id for r in logged(api.team)] == kept
    assert not ApiRequest.objects.filter(request_id__in=old).exists()


def test_the_purge_is_on_beats_schedule(settings):
    entries = [
        e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "requestlog.tasks.purge_expired_requests"
    ]
    assert len(entries) == 1 and entries[0]["schedule"] <= 24 * 3600
