"""The Logs tab's filters: a GET form whose cleaned data becomes selectors.Filters."""

from datetime import UTC, datetime, time, timedelta

from django import forms

from accounts.models import Application
from billing import selectors as billing_selectors
from billing.rating import ENDPOINT_FAMILIES, OTHER_FAMILY
from billing.templatetags.billing_tags import cents
from requestlog.selectors import Cursor, Filters
from vehicles.api.metering_hook import BATCH, FREE
from vehicles.api.resources import ACTIONS, READS
from vehicles.models import SimulatedVehicle


def endpoint_choices() -> list[tuple[str, str]]:
    """Every endpoint the vehicle API meters under, as "METHOD /path" labels."""
    endpoints = {(method, endpoint) for method, endpoint in FREE}
    endpoints |= {("GET", read.endpoint) for read in READS.values()}
    endpoints |= {("POST", action.endpoint) for action in ACTIONS.values()}
    endpoints.add(("POST", BATCH))
    return [("", "Any endpoint")] + [(endpoint, f"{method} {endpoint}") for method, endpoint in sorted(endpoints)]


class LogFilterForm(forms.Form):
    application = forms.ChoiceField(required=False)
    vehicle = forms.UUIDField(required=False, label="Vehicle ID")
    endpoint = forms.ChoiceField(required=False)
    status = forms.ChoiceField(
        required=False,
        choices=[("", "Any status"), ("2", "2xx success"), ("4", "4xx client error"), ("5", "5xx server error")],
    )
    billable = forms.ChoiceField(
        required=False, choices=[("", "Billable or not"), ("yes", "Billable"), ("no", "Not billable")]
    )
    since = forms.DateField(required=False, label="From (UTC)", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="To (UTC)", widget=forms.DateInput(attrs={"type": "date"}))
    q = forms.CharField(required=False, max_length=64, label="SC-Request-Id", strip=True)
    # A billing period, by its first day (as the Billing tab and the usage API name it): its exact bounds.
    period = forms.DateField(required=False, widget=forms.HiddenInput)
    # An invoice line's requests: its endpoint family and unit price.
    family = forms.ChoiceField(required=False, widget=forms.HiddenInput)
    price = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)
    after = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, data, *, team):
        super().__init__(data)
        self.team = team
        self._applications = {str(a.client_id): a for a in Application.objects.filter(team=team).order_by("name")}
        self.fields["application"].choices = [("", "Any application")] + [
            (client_id, application.name) for client_id, application in self._applications.items()
        ]
        self.fields["endpoint"].choices = endpoint_choices()
        families = sorted({*ENDPOINT_FAMILIES.values(), OTHER_FAMILY})
        self.fields["family"].choices = [("", "Any")] + [(family, family) for family in families]

    def clean_after(self) -> Cursor | None:
        raw = self.cleaned_data["after"]
        if not raw:
            return None
        try:
            return Cursor.decode(raw)
        except (ValueError, OverflowError):
            raise forms.ValidationError("This page link is not valid: start again from the newest requests.") from None

    def clean_period(self):
        start = self.cleaned_data["period"]
        if start is None:
            return None
        period = billing_selectors.period_starting(self.team, start)
        if period is None:
            raise forms.ValidationError("Your team has no billing period starting on that day.")
        return period

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and until < since:
            self.add_error("until", "The end date is before the start date.")
        return cleaned

    def filters(self) -> Filters:
        """The valid filters (call after is_valid())."""
        data = self.cleaned_data
        application = self._applications.get(data.get("application") or "")
        vehicle_id = None
        if data.get("vehicle"):
            # A vehicle nobody knows matches no row (-1), rather than being ignored and showing every row.
            vehicle_id = SimulatedVehicle.objects.filter(public_id=data["vehicle"]).values_list("pk", flat=True).first()
            vehicle_id = vehicle_id if vehicle_id is not None else -1
        day = timedelta(days=1)
        since = _midnight(data["since"]) if data.get("since") else None
        until = _midnight(data["until"]) + day if data.get("until") else None
        if data.get("period"):  # within the period, and within the dates if both are given
            since = max(filter(None, [since, data["period"].start]))
            until = min(filter(None, [until, data["period"].end]))
        return Filters(
            application_id=application.pk if application else None,
            vehicle_id=vehicle_id,
            endpoint=data.get("endpoint") or "",
            status_class=int(data["status"]) if data.get("status") else None,
            billable={"yes": True, "no": False}.get(data.get("billable") or ""),
            since=since,
            until=until,
            request_id=data.get("q") or "",
            family=data.get("family") or "",
            price_cents=data.get("price"),
        )

    @property
    def invoice_line(self) -> str:
        """What an invoice line's link narrowed the list to ("Odometer requests at $0.15"), or ""."""
        if not self.is_valid() or not (self.cleaned_data.get("family") or self.cleaned_data.get("price") is not None):
            return ""
        family, price = self.cleaned_data.get("family"), self.cleaned_data.get("price")
        what = f"{family} requests" if family else "Requests"
        return what if price is None else f"{what} at {cents(price)}"

    @property
    def billing_period(self):
        """The billing period the list is narrowed to, if any (for the page to say so)."""
        return self.cleaned_data.get("period") if self.is_valid() else None

    def is_filtered(self) -> bool:
        return self.is_bound and any(self.data.get(name) for name in self.fields if name != "after")


def _midnight(day) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)
