"""From a money figure to the requests behind it: the Billing tab's figures and each invoice line link to the Logs
tab, narrowed to exactly the requests they count. "Why was I charged $0.45?" is three clicks, not a support ticket.

The requests go through the real API views and the period is closed by the real billing run (closing.py).
"""

import re
from datetime import timedelta
from html import unescape

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from accounts.roles import Role
from billing import closing, lifecycle
from billing.models import BillingPeriod, Invoice
from requestlog import services
from tests.conftest import login_as
from tests.factories import MembershipFactory
from tests.vehicles.api_helpers import request

pytestmark = pytest.mark.django_db


def link_from(html: str, text_pattern: str) -> str:
    """The href of the first link whose text matches `text_pattern`."""
    for href, text in re.findall(r'<a href="([^"]+)"[^>]*>(.*?)</a>', html, re.S):
        if re.fullmatch(text_pattern, re.sub(r"<[^>]+>", "", text).strip()):
            return unescape(href)
    raise AssertionError(f"no link {text_pattern!r} in the page")


def listed(client, url):
    response = client.get(url)
    assert response.status_code == 200, response.content.decode()[:2000]
    return [row.entry for row in response.context["rows"]]


@pytest.fixture
def charged(client, api):
    """A Pay-as-you-go period with 3 odometer reads, 2 location reads and a free call, then closed and invoiced."""
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        period = lifecycle.current_period(api.team.pk)
        BillingPeriod.objects.filter(pk=period.pk).update(unit_price_cents=15)  # Pay-as-you-go's price
    with time_machine.travel(start + timedelta(hours=1)):
        for path in ["/odometer", "/odometer", "/location", "/odometer", "/location"]:
            assert request(client, "GET", api.base + path, token=api.token).status_code == 200
        assert request(client, "GET", "/v2.0/vehicles", token=api.token).status_code == 200
    closing.close_due_periods(period.end + timedelta(days=1))
    owner = MembershipFactory(team=api.team, role=Role.OWNER)
    login_as(client, owner)
    return Invoice.objects.get(period=period)


def test_an_invoice_line_links_to_exactly_the_requests_it_charges(client, charged, api):
    html = client.get(reverse("billing_invoice", args=[charged.public_id])).content.decode()
    odometer = listed(client, link_from(html, "3"))
    assert [(r.endpoint, r.price_cents) for r in odometer] == [("/vehicles/{id}/odometer", 15)] * 3
    assert sum(r.price_cents for r in odometer) == 45  # the line's $0.45
    location = listed(client, link_from(html, "2"))
    assert [r.endpoint for r in location] == ["/vehicles/{id}/location"] * 2
    everything = listed(client, link_from(html, "Logs tab"))
    assert len(everything) == 5 and all(r.billable for r in everything)  # the free call is not behind the invoice


def test_the_billing_tab_figures_link_to_their_requests(client, charged, api):
    period = charged.period
    html = client.get(reverse("billing"), {"period": period.start.date().isoformat()}).content.decode()
    billable = listed(client, link_from(html, "See the billable requests behind these figures"))
    assert len(billable) == 5
    by_endpoint = listed(client, link_from(html, re.escape("/vehicles/{id}/location")))
    assert [r.endpoint for r in by_endpoint] == ["/vehicles/{id}/location"] * 2
    by_application = listed(client, link_from(html, re.escape(api.application.name)))
    assert len(by_application) == 6  # free requests included: the row counts them too


def test_a_period_link_keeps_to_the_periods_exact_bounds(client, charged, api):
    """The next period's requests are not the closed period's, even on the same day."""
    services.record(  # a request of the next period, the day the closed one ended
        team_id=api.team.pk,
        occurred_at=charged.period.end + timedelta(minutes=5),
        request_id="next-period",
        application_id=api.application.pk,
        vehicle_id=api.vehicle.pk,
        method="GET",
        endpoint="/vehicles/{id}/odometer",
        path=api.base + "/odometer",
        status=200,
        price_cents=15,
    )
    day = charged.period.end.date().isoformat()
    assert len(listed(client, reverse("log_list") + f"?since={day}&until={day}")) == 1  # the day alone: just it
    url = reverse("log_list") + f"?period={charged.period.start.date().isoformat()}"
    assert len(listed(client, url)) == 6
    page = client.get(url).content.decode()
    assert "billing period" in page
    assert client.get(reverse("log_list"), {"period": "1999-01-01"}).status_code == 400
