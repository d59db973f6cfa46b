"""The dashboard's Logs tab: the team's vehicle API requests, filtered, paged, one by one, and as CSV."""

from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from accounts.decorators import team_member_required
from accounts.roles import Perm, role_can
from dashboard.csv_export import safe_cell, stream_csv
from requestlog import selectors
from requestlog.forms import LogFilterForm
from vehicles.errors import error_body

EXPORT_CHUNK_ROWS = 2000


def _shows_prices(request) -> bool:
    """Prices are billing information: the Billing tab's readers see them; everyone sees billable or not."""
    return role_can(request.membership.role, Perm.MANAGE_BILLING)


@team_member_required()
def log_list(request):
    form = LogFilterForm(request.GET, team=request.team)
    page, filters = None, None
    if form.is_valid():
        filters = form.filters()
        page = selectors.page_of_requests(request.team, filters, after=form.cleaned_data["after"])
    rows = page.rows if page else []
    query = request.GET.copy()
    query.pop("after", None)
    next_query = None
    if page and page.next_cursor:
        query["after"] = page.next_cursor.encode()
        next_query = query.urlencode()
        query.pop("after")
    context = {
        "form": form,
        "rows": selectors.with_labels(request.team, rows),
        "next_query": next_query,
        "filter_query": query.urlencode(),
        "is_later_page": bool(request.GET.get("after")),
        "shows_prices": _shows_prices(request),
        "retention_days": selectors.retention_days(),
        "reaches_past_retention": bool(filters and filters.since and filters.since < selectors.retention_cutoff()),
    }
    return render(request, "requestlog/log_list.html", context, status=200 if form.is_valid() else 400)


@team_member_required()
def log_detail(request, request_id):
    entry = selectors.get_team_request(request.team, request_id)
    items = selectors.batch_items(request.team, entry.request_id) if entry.endpoint.endswith("/batch") else []
    labelled, *items = selectors.with_labels(request.team, [entry, *items])
    context = {
        "row": labelled,
        "items": items,
        "shows_prices": _shows_prices(request),
        "error": error_body(entry.error_type, entry.error_code or None, request_id=entry.request_id)
        if entry.error_type
        else None,
    }
    return render(request, "requestlog/log_detail.html", context)


@team_member_required()
def log_export(request):
    form = LogFilterForm(request.GET, team=request.team)
    if not form.is_valid():
        return log_list(request)
    requests = selectors.team_requests(request.team, form.filters())
    shows_prices = _shows_prices(request)
    rows = _csv_rows(request.team, requests, shows_prices)
    response = StreamingHttpResponse(stream_csv(_columns(shows_prices), rows), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="ignition-requests-{stamp}.csv"'
    return response


def _columns(shows_prices: bool) -> list[str]:
    columns = ["time_utc", "request_id", "batch_request_id", "application_client_id", "application", "vehicle_id"]
    columns += ["method", "endpoint", "path", "status", "error_type", "error_code", "billable"]
    return columns + (["price_usd"] if shows_prices else []) + ["duration_ms"]


def _csv_rows(team, requests, shows_prices: bool):
    """Rows in _columns order; names resolved a chunk at a time (two queries a chunk)."""
    chunk = []
    for entry in requests.iterator(chunk_size=EXPORT_CHUNK_ROWS):
        chunk.append(entry)
        if len(chunk) == EXPORT_CHUNK_ROWS:
            yield from _csv_chunk(team, chunk, shows_prices)
            chunk = []
    yield from _csv_chunk(team, chunk, shows_prices)


def _csv_chunk(team, chunk, shows_prices: bool):
    for labelled in selectors.with_labels(team, chunk):
        entry, application, vehicle = labelled.entry, labelled.application, labelled.vehicle
        row = [
            entry.occurred_at.isoformat(timespec="milliseconds"),
            entry.request_id,
            entry.batch_request_id,
            str(application.client_id) if application else "",
            application.name if application else ("deleted application" if entry.application_key else ""),
            str(vehicle.public_id) if vehicle else "",
            entry.method,
            entry.endpoint,
            entry.path,
            entry.status,
            entry.error_type,
            entry.error_code,
            "yes" if entry.billable else "no",
        ]
        if shows_prices:
            row.append(_dollars(entry.price_cents))
        row.append(entry.duration_ms)
        yield [safe_cell(value) if isinstance(value, str) else value for value in row]


def _dollars(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"
