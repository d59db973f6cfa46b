"""Invoices in the Billing tab: the list, an invoice's page and PDF, and the team's billing details."""

import contextlib
import re
import uuid
import zlib
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.template.loader import render_to_string
from django.urls import reverse

from accounts.models import AuditEvent
from accounts.roles import Role
from billing import closing, lifecycle, services
from billing.invoice_pdf import render_invoice_pdf, unit_price
from billing.models import BillingDetails, Invoice, Subscription
from tests.billing.usage import count_billable_requests
from tests.conftest import login_as
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_membership(team, owner):
    return owner.memberships.get(team=team)


def issue(team) -> Invoice:
    """Close the team's current period (as the beat task does) and return its invoice."""
    period = lifecycle.current_period(team.pk)
    invoice = closing.close_period(period.pk, now=period.end + timedelta(hours=2))
    assert invoice is not None
    return invoice


@pytest.fixture
def payg_invoice(team, owner_membership):
    """An open invoice for 40 requests at 15 cents: $6.00."""
    lifecycle.current_period(team.pk)  # the team's subscription and first period
    Subscription.objects.filter(team=team).update(card_on_file=True)
    services.switch_plan(actor=owner_membership, plan_code="payg")
    count_billable_requests(team, 40)
    return issue(team)


def pdf_text(content: bytes) -> bytes:
    """The PDF's bytes with every Flate stream inflated, for text searches."""
    parts = [content]
    for match in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", content, re.S):
        with contextlib.suppress(zlib.error):  # not every stream is compressed
            parts.append(zlib.decompress(match.group(1)))
    return b"\n".join(parts)


def test_the_tab_lists_issued_invoices(owner_client, team, payg_invoice):
    html = owner_client.get(reverse("billing")).content.decode()

    assert payg_invoice.number in html
    assert reverse("billing_invoice", args=[payg_invoice.public_id]) in html
    assert "$6.00" in html and "Open" in html
    assert f"{payg_invoice.period.start:%-d %b %Y}" in html


def test_a_new_team_has_no_invoices_yet(owner_client):
    html = owner_client.get(reverse("billing")).content.decode()
    assert "No invoices yet: the first is issued when this period closes" in html


def test_the_tab_shows_only_the_teams_own_invoices(owner_client, team, other_team, payg_invoice):
    theirs = issue(other_team)
    html = owner_client.get(reverse("billing")).content.decode()
    assert payg_invoice.number in html and theirs.number not in html


def test_a_free_periods_invoice_is_listed_as_paid(owner_client, team):
    count_billable_requests(team, 3)
    invoice = issue(team)
    html = owner_client.get(reverse("billing")).content.decode()
    assert invoice.number in html and "Paid" in html and f"{invoice.paid_at:%-d %b %Y}" in html


def test_the_invoice_page_shows_lines_and_totals(owner_client, payg_invoice):
    response = owner_client.get(reverse("billing_invoice", args=[payg_invoice.public_id]))

    assert response.status_code == 200
    html = response.content.decode()
    assert f"Invoice {payg_invoice.number}" in html
    line = payg_invoice.lines.get()
    assert (line.quantity, line.amount_cents) == (40, 600)
    assert line.description in html and ">15¢<" in html  # a request's price in cents (billing_tags.unit_cents)
    assert re.search(r'id="invoice-subtotal">\$6\.00<', html)
    assert re.search(r'id="invoice-total"><strong>\$6\.00</strong>', html)
    assert "Add billing details" in html
    assert reverse("billing_invoice_pdf", args=[payg_invoice.public_id]) in html


def test_the_invoice_page_shows_the_billing_details(owner_client, team, payg_invoice):
    BillingDetails.objects.create(
        team=team, company_name="Acme Mobility GmbH", address="Hauptstr. 1\n10115 Berlin", tax_id="DE123456789"
    )
    html = owner_client.get(reverse("billing_invoice", args=[payg_invoice.public_id])).content.decode()
    assert "Acme Mobility GmbH" in html and "Hauptstr. 1<br>10115 Berlin" in html and "DE123456789" in html


def test_the_pdf_download(owner_client, team, payg_invoice):
    BillingDetails.objects.create(team=team, company_name="Acme Mobility GmbH", address="Hauptstr. 1")

    response = owner_client.get(reverse("billing_invoice_pdf", args=[payg_invoice.public_id]))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="{payg_invoice.number}.pdf"'
    assert response.content.startswith(b"%PDF")
    text = pdf_text(response.content)
    assert payg_invoice.number.encode() in text
    assert b"Acme Mobility GmbH" in text and b"$6.00" in text


def test_the_pdf_module_is_pure_and_renders_credits(payg_invoice):
    payg_invoice.credit_cents, payg_invoice.total_cents = 100, 500
    content = render_invoice_pdf(payg_invoice, list(payg_invoice.lines.all()), None, compress=False)
    assert content.startswith(b"%PDF")
    assert payg_invoice.number.encode() in content
    assert b"-$1.00" in content and b"$5.00" in content and b"Bill to" not in content


@pytest.mark.parametrize(
    ("value", "text"),
    [(Decimal(15), "$0.15"), (Decimal("0.5"), "$0.005"), (Decimal(0), "$0.00"), (Decimal(-250), "-$2.50"),
     (Decimal("123456.0000"), "$1,234.56")],
)  # fmt: skip
def test_unit_prices_keep_fractions_of_a_cent(value, text):
    assert unit_price(value) == text


@pytest.mark.parametrize("role", [Role.ADMIN, Role.EDITOR, Role.VIEWER])
def test_only_owners_see_invoices_and_details(client, make_member, payg_invoice, role):
    login_as(client, make_member(role))
    for url in [
        reverse("billing_invoice", args=[payg_invoice.public_id]),
        reverse("billing_invoice_pdf", args=[payg_invoice.public_id]),
        reverse("billing_details"),
    ]:
        assert client.get(url).status_code == 403, url
    assert client.post(reverse("billing_details"), {"company_name": "X", "address": "Y"}).status_code == 403


def test_another_teams_invoice_is_not_found(client, team, other_team, owner_membership):
    theirs = issue(other_team)
    MembershipFactory(team=other_team, user=owner_membership.user, role=Role.OWNER)  # even as their Owner too
    login_as(client, owner_membership)
    for name in ["billing_invoice", "billing_invoice_pdf"]:
        assert client.get(reverse(name, args=[theirs.public_id])).status_code == 404
        assert client.get(reverse(name, args=[uuid.uuid4()])).status_code == 404


def test_an_invoice_page_answers_get_only(owner_client, payg_invoice):
    assert owner_client.post(reverse("billing_invoice", args=[payg_invoice.public_id])).status_code == 405


def test_owners_add_and_edit_billing_details_audited(owner_client, team, owner):
    url = reverse("billing_details")
    assert "Add your billing details" in owner_client.get(url).content.decode()

    response = owner_client.post(
        url,
        {
            "company_name": " Acme Mobility GmbH ",
            "address": "Hauptstr. 1\r\n\r\n10115 Berlin\r\n",
            "tax_id": "de123456789",
            "billing_email": "ap@acme.example",
        },
    )

    assert response.status_code == 302 and response["Location"] == reverse("billing")
    details = BillingDetails.objects.get(team=team)
    assert (details.company_name, details.address, details.tax_id, details.billing_email) == (
        "Acme Mobility GmbH",
        "Hauptstr. 1\n10115 Berlin",
        "DE123456789",
        "ap@acme.example",
    )
    event = AuditEvent.objects.get(team=team, action="billing.details_changed")
    assert event.actor == owner and event.data["fields"] == ["address", "billing_email", "company_name", "tax_id"]

    assert "Edit your billing details" in owner_client.get(url).content.decode()
    owner_client.post(url, {"company_name": "Acme Mobility GmbH", "address": "Hauptstr. 1\n10115 Berlin",
                            "tax_id": "DE123456789", "billing_email": "billing@acme.example"})  # fmt: skip
    latest = AuditEvent.objects.filter(team=team, action="billing.details_changed").order_by("-id").first()
    assert latest.data["fields"] == ["billing_email"]
    assert BillingDetails.objects.filter(team=team).count() == 1

    owner_client.post(url, {"company_name": "Acme Mobility GmbH", "address": "Hauptstr. 1\n10115 Berlin",
                            "tax_id": "DE123456789", "billing_email": "billing@acme.example"})  # fmt: skip
    assert AuditEvent.objects.filter(team=team, action="billing.details_changed").count() == 2  # nothing changed


def test_billing_details_validation(owner_client, team):
    response = owner_client.post(
        reverse("billing_details"), {"company_name": "   ", "address": "\n \n", "billing_email": "not-an-email"}
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert "Enter the company name your invoices are made out to." in html
    assert "Enter the billing address, as it should appear on invoices." in html
    assert "Enter a valid email address." in html
    assert not BillingDetails.objects.filter(team=team).exists()
    assert not AuditEvent.objects.filter(team=team, action="billing.details_changed").exists()


def test_receipt_and_past_due_emails_link_to_the_invoice(payg_invoice, settings):
    context = {"invoice": payg_invoice, "payment": None, "site_root": "https://ignition.example", "site_name": "X"}
    link = f"https://ignition.example/billing/invoices/{payg_invoice.public_id}/"
    for template in ["invoice-paid", "invoice-past-due"]:
        for suffix in ["html", "txt"]:
            assert link in render_to_string(f"emails/{template}-body.{suffix}", context), (template, suffix)
    assert not mail.outbox
