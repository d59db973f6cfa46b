"""Staff edit plans in the admin; periods and the billing audit log are read-only there."""

import re

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

from billing import lifecycle
from billing.models import BillingEvent, BillingPeriod, Plan
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    user = UserFactory(email="ops@example.com", is_staff=True, is_superuser=True)
    TOTP.activate(user, generate_totp_secret())
    client.force_login(user)
    return client


def test_staff_change_a_plans_allowance_and_new_periods_use_it(staff_client, team):
    free = Plan.objects.get(code="free")
    page = staff_client.get(f"/admin/billing/plan/{free.pk}/change/")
    assert page.status_code == 200
    form = {field: getattr(free, field) for field in ["name", "description", "price_per_request_cents",
                                                      "vehicle_allowance", "sort_order"]}  # fmt: skip
    form.update(request_allowance=250, support_channels='["email"]', self_serve="on", requires_card="")

    response = staff_client.post(f"/admin/billing/plan/{free.pk}/change/", form)

    assert response.status_code == 302, response.content[:2000]
    assert lifecycle.current_period(team.pk).request_allowance == 250


def test_periods_and_billing_events_are_read_only(staff_client, team):
    period = lifecycle.current_period(team.pk)
    assert staff_client.get("/admin/billing/billingperiod/").status_code == 200
    page = staff_client.get(f"/admin/billing/billingperiod/{period.pk}/change/")
    assert page.status_code == 200 and b'name="requests_used"' not in page.content
    assert staff_client.post(f"/admin/billing/billingperiod/{period.pk}/delete/", {"post": "yes"}).status_code == 403
    event = BillingEvent.objects.get(team=team)
    assert staff_client.post(f"/admin/billing/billingevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert BillingPeriod.objects.filter(pk=period.pk).exists() and BillingEvent.objects.filter(pk=event.pk).exists()


def test_developers_cannot_open_the_billing_admin(client, owner):
    client.force_login(owner)
    for url in ["/admin/billing/plan/", "/admin/billing/billingperiod/", "/admin/billing/billingevent/"]:
        response = client.get(url, follow=True)
        assert response.redirect_chain and response.redirect_chain[-1][0] == "/overview/", url
        assert "Ignition back office" not in response.content.decode(), url


def test_invoices_show_with_their_lines_and_cannot_be_edited(staff_client, team):
    from datetime import timedelta

    from billing.closing import close_period
    from billing.models import Invoice

    period = lifecycle.current_period(team.pk)
    invoice = close_period(period.pk, now=period.end + timedelta(hours=2))
    page = staff_client.get(f"/admin/billing/invoice/{invoice.pk}/change/")
    assert page.status_code == 200 and invoice.number in page.content.decode()
    assert staff_client.post(f"/admin/billing/invoice/{invoice.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Invoice.objects.filter(pk=invoice.pk).exists()


def test_money_shows_in_dollars_not_in_cents(staff_client, team):
    """Staff read "$0.45", not a "TOTAL CENTS" column of 45."""
    from datetime import timedelta

    from billing.closing import close_period
    from billing.models import Invoice

    period = lifecycle.current_period(team.pk)
    BillingPeriod.objects.filter(pk=period.pk).update(accrued_cents=12345)
    invoice = close_period(period.pk, now=period.end + timedelta(hours=2))
    Invoice.objects.filter(pk=invoice.pk).update(total_cents=4500)
    for url in ["/admin/billing/invoice/", "/admin/billing/billingperiod/", f"/admin/accounts/team/{team.pk}/change/"]:
        text = re.sub(r"<[^>]+>", " ", staff_client.get(url).content.decode())  # what staff read, not class names
        assert "cents" not in text.lower(), url
    assert "$45.00" in staff_client.get("/admin/billing/invoice/").content.decode()
    assert "$123.45" in staff_client.get("/admin/billing/billingperiod/").content.decode()
    assert "15¢" in staff_client.get("/admin/billing/plan/").content.decode()  # Pay-as-you-go's price
