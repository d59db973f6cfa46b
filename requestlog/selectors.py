"""Reads of the request log. Every query takes the team, so another team's requests are never found."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.shortcuts import get_object_or_404
from django.utils import timezone

from accounts.models import Application, Team
from billing.rating import ENDPOINT_FAMILIES, OTHER_FAMILY
from requestlog.models import ApiRequest
from vehicles.models import SimulatedVehicle

PAGE_SIZE = 50


@dataclass(frozen=True)
class Filters:
    application_id: int | None = None
    vehicle_id: int | None = None
    endpoint: str = ""
    status_class: int | None = None  # 2, 4 or 5: 2xx, 4xx, 5xx
    billable: bool | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    request_id: str = ""  # a request's SC-Request-Id, or a batch's (its items come with it)
    family: str = ""  # an invoice line's endpoint family (billing.rating.ENDPOINT_FAMILIES)
    price_cents: int | None = None  # what each request was charged


@dataclass(frozen=True)
class Cursor:
    """Where a page ends: the last row's (occurred_at, id). The next page holds the rows strictly after it."""

    occurred_at: datetime
    id: int

    def encode(self) -> str:
        micros = (self.occurred_at - EPOCH) // timedelta(microseconds=1)
        return f"{micros}-{self.id}"

    @classmethod
    def decode(cls, raw: str) -> "Cursor":
        """The cursor `encode` wrote; ValueError for anything else."""
        micros, _, pk = raw.partition("-")
        return cls(EPOCH + timedelta(microseconds=int(micros)), int(pk))


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Page:
    rows: list[ApiRequest]
    next_cursor: Cursor | None  # None: this is the last page


def team_requests(team: Team, filters: Filters):
    """The team's logged requests matching `filters`, newest first."""
    requests = ApiRequest.objects.filter(team=team)
    if filters.application_id is not None:
        requests = requests.filter(application_key=filters.application_id)
    if filters.vehicle_id is not None:
        requests = requests.filter(vehicle_key=filters.vehicle_id)
    if filters.endpoint:
        requests = requests.filter(endpoint=filters.endpoint)
    if filters.status_class is not None:
        low = filters.status_class * 100
        requests = requests.filter(status__gte=low, status__lt=low + 100)
    if filters.billable is not None:
        requests = requests.filter(billable=filters.billable)
    if filters.since is not None:
        requests = requests.filter(occurred_at__gte=filters.since)
    if filters.until is not None:
        requests = requests.filter(occurred_at__lt=filters.until)
    if filters.family == OTHER_FAMILY:  # the billable endpoints no family names
        requests = requests.exclude(endpoint__in=list(ENDPOINT_FAMILIES))
    elif filters.family:
        in_family = [endpoint for endpoint, family in ENDPOINT_FAMILIES.items() if family == filters.family]
        requests = requests.filter(endpoint__in=in_family)
    if filters.price_cents is not None:
        requests = requests.filter(price_cents=filters.price_cents)
    if filters.request_id:
        requests = requests.filter(Q(request_id=filters.request_id) | Q(batch_request_id=filters.request_id))
    return requests.order_by("-occurred_at", "-id")


def page_of_requests(team: Team, filters: Filters, after: Cursor | None = None, size: int | None = None) -> Page:
    """One page of `team_requests`, from just after `after` (None: the newest). Keyset pagination: a page costs the
    same at the millionth row as at the first, and rows logged meanwhile do not shift the pages."""
    size = size or PAGE_SIZE
    requests = team_requests(team, filters)
    if after is not None:
        requests = requests.filter(
            Q(occurred_at__lt=after.occurred_at) | Q(occurred_at=after.occurred_at, id__lt=after.id)
        )
    rows = list(requests[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    return Page(rows=rows, next_cursor=Cursor(rows[-1].occurred_at, rows[-1].pk) if more else None)


def get_team_request(team: Team, request_id: str) -> ApiRequest:
    """The team's logged request with this SC-Request-Id, or 404 (another team's looks like a missing one)."""
    return get_object_or_404(ApiRequest.objects.filter(team=team).order_by("-id"), request_id=request_id)


def batch_items(team: Team, batch_request_id: str) -> list[ApiRequest]:
    return list(ApiRequest.objects.filter(team=team, batch_request_id=batch_request_id).order_by("id"))


@dataclass(frozen=True)
class Labelled:
    """A logged request with the application and vehicle it names (None: none, or deleted since)."""

    entry: ApiRequest
    application: Application | None
    vehicle: SimulatedVehicle | None


def with_labels(team: Team, entries: list[ApiRequest]) -> list[Labelled]:
    """Each entry with the team's application and the vehicle it names, in two queries whatever the number."""
    application_ids = {e.application_key for e in entries if e.application_key}
    vehicle_ids = {e.vehicle_key for e in entries if e.vehicle_key}
    applications = Application.objects.filter(team=team, pk__in=application_ids).in_bulk() if application_ids else {}
    vehicles = SimulatedVehicle.objects.in_bulk(vehicle_ids) if vehicle_ids else {}
    return [Labelled(e, applications.get(e.application_key), vehicles.get(e.vehicle_key)) for e in entries]


def retention_days() -> int:
    return settings.REQUEST_LOG_RETENTION_DAYS


def retention_cutoff(now: datetime | None = None) -> datetime:
    """Rows older than this are purged (services.purge_expired)."""
    return (now or timezone.now()) - timedelta(days=retention_days())
