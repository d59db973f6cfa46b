"""The usage API, for a team's Owners: `GET /api/v1/billing/usage` (JSON) and `GET /api/v1/billing/usage.csv`.

The JSON body is billing.selectors.usage_summary of the period's billing.state: the numbers and words the
Billing tab shows. The CSV is the period's UsageDaily rollup rows with readable names. Both read counters
and rollups only, so each answers in a fixed number of queries whatever the volume. Callers authenticate
with the dashboard session or a personal access token (accounts.authentication); another team's data is
never reachable: the team comes from the session or the token, never from the request's parameters.
"""

import re
from collections.abc import Iterator
from datetime import date

from django.http import StreamingHttpResponse
from django.utils.cache import patch_vary_headers
from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import PersonalAccessTokenAuthentication, api_caller
from accounts.models import Application, Team
from accounts.roles import Perm, Role, role_can
from billing import selectors
from billing.forms import period_key
from billing.models import BillingPeriod, UsageDaily
from dashboard.csv_export import safe_cell, stream_csv
from vehicles.models import SimulatedVehicle

CSV_COLUMNS = [
    "date",
    "application_id",
    "application",
    "vehicle_id",
    "vehicle",
    "endpoint",
    "billable",
    "non_billable",
    "amount_cents",
]
DELETED_APPLICATION = "Deleted application"
DELETED_VEHICLE = "Deleted vehicle"
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection): such text gets a leading quote.
EXPORT_CHUNK_ROWS = 2000
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class JSONOnly(BaseContentNegotiation):
    """Answer JSON (errors included) whatever the Accept header says; the CSV view builds its own response."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ManagesBilling(BasePermission):
    """A member of the caller's team whose current role holds MANAGE_BILLING (Owners)."""

    message = "Only the team's Owners can see its billing."

    def has_permission(self, request, view):
        caller = api_caller(request)
        if caller is None:
            self.message = "You are not a member of any team."
            return False
        if not role_can(caller.role, Perm.MANAGE_BILLING):
            self.message = f"Only the team's Owners can see its billing (your role: {Role(caller.role).label})."
            return False
        return True


class BillingAPIView(APIView):
    authentication_classes = [PersonalAccessTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated, ManagesBilling]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JSONOnly

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        # A team's billing data, chosen by the session or the token: no shared cache may keep or reuse it.
        response["Cache-Control"] = "private, no-store"
        patch_vary_headers(response, ["Authorization", "Cookie"])
        return response

    def requested_period(self, request) -> BillingPeriod:
        """`?period=YYYY-MM-DD` (a start date of one of the caller's team's periods), or the current period."""
        team = api_caller(request).team
        value = request.query_params.get("period")
        if value is None:
            return selectors.open_period(team)
        start = _parse_date(value)
        period = selectors.period_starting(team, start)
        if period is None:
            raise exceptions.NotFound(f"This team has no billing period starting on {start.isoformat()}.")
        return period


def _parse_date(value: str) -> date:
    try:
        if not _ISO_DATE.fullmatch(value):
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise exceptions.ParseError(
            "`period` must be the start date of a billing period, as YYYY-MM-DD (e.g. 2025-02-01)."
        ) from None


class UsageView(BillingAPIView):
    """The period's usage as JSON: plan, requests and vehicles against allowances, cents, daily counts."""

    def get(self, request):
        team = api_caller(request).team
        return Response(selectors.usage_summary(selectors.period_state(team, self.requested_period(request))))


class UsageCSVView(BillingAPIView):
    """The period's usage by day, application, vehicle and endpoint, as a streamed CSV download."""

    def get(self, request):
        period = self.requested_period(request)
        rows = usage_csv_rows(period, api_caller(request).team)
        response = StreamingHttpResponse(stream_csv(CSV_COLUMNS, rows), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="ignition-usage-{period_key(period)}.csv"'
        return response


# --- the CSV -----------------------------------------------------------------------------------------------------


def usage_csv_rows(period: BillingPeriod, team: Team) -> Iterator[list]:
    """The export's rows in CSV_COLUMNS order: names resolved up front in two queries, rollup rows streamed."""
    applications = _application_names(period, team)
    vehicles = _vehicle_labels(period)
    for row in selectors.usage_rows_for_export(period).iterator(chunk_size=EXPORT_CHUNK_ROWS):
        application_id, application = _lookup(applications, row["application_key"], DELETED_APPLICATION)
        vehicle_id, vehicle = _lookup(vehicles, row["vehicle_key"], DELETED_VEHICLE)
        yield [
            row["day"].isoformat(),
            application_id,
            safe_cell(application),
            vehicle_id,
            safe_cell(vehicle),
            safe_cell(row["endpoint"]),
            row["billable"],
            row["non_billable"],
            row["amount_cents"],
        ]


def _lookup(names: dict[int, tuple[str, str]], key: int, deleted: str) -> tuple[str, str]:
    if not key:  # 0: the request reached no application or no vehicle (e.g. GET /vehicles)
        return "", ""
    return names.get(key, ("", deleted))


def _application_names(period: BillingPeriod, team: Team) -> dict[int, tuple[str, str]]:
    """{application pk: (client id, name)} for the applications in the period's rollups (the team's only)."""
    keys = UsageDaily.objects.filter(period=period, application_key__gt=0).values("application_key")
    rows = Application.objects.filter(team=team, pk__in=keys).values_list("pk", "client_id", "name")
    return {pk: (str(client_id), name) for pk, client_id, name in rows}


def _vehicle_labels(period: BillingPeriod) -> dict[int, tuple[str, str]]:
    """{vehicle pk: (the API's vehicle id, "2021 TESLA Model S ••••1234")} for the vehicles in the rollups."""
    keys = UsageDaily.objects.filter(period=period, vehicle_key__gt=0).values("vehicle_key")
    rows = SimulatedVehicle.objects.filter(pk__in=keys).values_list("pk", "public_id", "year", "make", "model", "vin")
    return {
        pk: (str(public_id), f"{year} {make} {model} ••••{vin[-4:]}") for pk, public_id, year, make, model, vin in rows
    }
