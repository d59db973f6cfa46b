"""How a contract's invoices are paid: invoice terms (net 30, never charged, past due once overdue,
marked paid by staff) or a card charged automatically, through the real stripe SDK and localstripe."""

import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import connection

from accounts.roles import Role
from billing import backoffice, closing, contracts, dunning, lifecycle, metering, payments
from billing.models import BillingDetails, Contract, Invoice, Payment, Subscription
from tests.billing.test_contracts import EXAMPLE_TIERS as TIERS
from tests.billing.test_contracts import close, make_contract
from tests.billing.test_payments import intents_for, store_card
from tests.billing.usage import ODOMETER, count_billable_requests
from tests.factories import TeamFactory, UserFactory
from tests.vehicles.api_helpers import make_owner, make_vehicle

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("stripe_settings")]


@pytest.fixture
def owner_membership(make_member):
    return make_member(Role.OWNER, email="cfo@example.com")


def contract_period_invoice(team, *, requests: int, **terms) -> Invoice:
    """A contract covering the team's current period, `requests` counted under it, and the period closed."""
    period = lifecycle.current_period(team.pk)
    make_contract(team, starts_at=period.start, now=period.start, **terms)
    count_billable_requests(team, requests)
    return close(period)


def test_an_invoice_paid_contract_is_emailed_with_its_due_date_and_never_charged(
    owner_membership, django_capture_on_commit_callbacks, send_queued_emails
):
    team = owner_membership.team
    BillingDetails.objects.create(team=team, company_name="Fleet Co", address="1 Road", billing_email="ap@fleet.co")
    with django_capture_on_commit_callbacks(execute=True):
        invoice = contract_period_invoice(team, requests=25, net_days=45)
    send_queued_emails()

    assert (invoice.total_cents, invoice.collection, invoice.status) == (300, "invoice", "open")
    assert invoice.due_at == invoice.issued_at + timedelta(days=45)
    [email] = [m for m in mail.outbox if invoice.number in m.subject]
    assert email.subject == f"Invoice {invoice.number}: $3.00 due {invoice.due_at:%-d %B %Y}"
    assert set(email.to) == {"cfo@example.com", "ap@fleet.co"}
    assert "bank transfer" in email.body

    assert payments.invoices_to_charge() == []
    assert payments.charge_invoice(invoice.pk) is None
    assert not Payment.objects.filter(invoice=invoice).exists()
    assert intents_for(invoice) == []


def test_the_close_command_says_an_invoice_paid_invoice_is_due_rather_than_charging_it(owner_membership):
    team = owner_membership.team
    period = lifecycle.current_period(team.pk)
    make_contract(team, starts_at=period.start, now=period.start, pricing=Contract.Pricing.VOLUME)
    count_billable_requests(team, 3)
    out = StringIO()
    moment = (period.end + timedelta(hours=2)).isoformat()
    call_command("close_billing_periods", "--now", moment, "--allow-future", stdout=out)
    invoice = Invoice.objects.get(period=period)
    assert f"{invoice.number}  {team}  $0.36  Open  (invoice terms: due {invoice.due_at:%Y-%m-%d})" in out.getvalue()
    assert not Payment.objects.exists()


def test_an_overdue_invoice_becomes_past_due_once_and_staff_mark_it_paid_when_the_transfer_arrives(
    owner_membership, django_capture_on_commit_callbacks, send_queued_emails
):
    team = owner_membership.team
    invoice = contract_period_invoice(team, requests=10)
    send_queued_emails()
    mail.outbox.clear()
    assert contracts.mark_overdue_invoices(now=invoice.due_at - timedelta(minutes=1)) == []
    with django_capture_on_commit_callbacks(execute=True):
        assert contracts.mark_overdue_invoices(now=invoice.due_at + timedelta(hours=1)) == [invoice.pk]
        assert contracts.mark_overdue_invoices(now=invoice.due_at + timedelta(hours=2)) == []
    send_queued_emails()
    invoice.refresh_from_db()
    assert invoice.status == "past_due"
    assert [m.subject for m in mail.outbox] == [f"Invoice {invoice.number} is overdue ($1.20)"]
    assert Subscription.objects.get(team=team).status == "past_due"
    assert dunning.due_retries(now=invoice.due_at + timedelta(days=30)) == ([], [])  # never retried, never suspended

    staff = UserFactory(is_staff=True)
    backoffice.mark_invoice_paid(invoice.pk, staff=staff, reference="Wire 2026-12-04 ref FLEET-88")
    invoice.refresh_from_db()
    assert invoice.status == "paid" and invoice.paid_at is not None
    assert Subscription.objects.get(team=team).status == "active"


def test_a_card_paid_contract_is_charged_its_tiered_total_once(owner_membership, django_capture_on_commit_callbacks):
    team = owner_membership.team
    store_card(owner_membership, "pm_card_visa")
    invoice = contract_period_invoice(team, requests=12, paid_by=Contract.PaidBy.CARD, minimum_cents=10_000)
    assert (invoice.collection, invoice.due_at, invoice.total_cents) == ("card", None, 10_000)
    assert payments.invoices_to_charge() == [invoice.pk]

    with django_capture_on_commit_callbacks(execute=True):
        payment = payments.charge_invoice(invoice.pk)
    assert payments.charge_invoice(invoice.pk) is None  # again: nothing more
    invoice.refresh_from_db()
    assert (payment.status, payment.amount_cents, invoice.status) == ("succeeded", 10_000, "paid")
    assert [intent.amount for intent in intents_for(invoice)] == [10_000]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_requests_counted_while_a_contract_starts_are_each_priced_once_on_one_side_of_the_switch():
    """16 clients keep calling while staff start a contract: every request is in the invoice exactly once,
    before the switch at Free's price or after it in the contract's tiers."""
    team = TeamFactory()
    vehicles = [make_vehicle(make_owner()) for _ in range(4)]
    period = lifecycle.current_period(team.pk)
    barrier, errors = threading.Barrier(17), []

    def client(index):
        barrier.wait()
        try:
            for call in range(5):  # 80 in all: within Free's 100, so a refusal (LimitReached) is a bug too
                metering.reserve(
                    request_id=f"race-{index}-{call}",
                    team_id=team.pk,
                    application_id=None,
                    vehicle_id=vehicles[index % 4].pk,
                    endpoint=ODOMETER,
                )
        except Exception as error:  # noqa: BLE001 (reported below)
            errors.append(error)
        finally:
            connection.close()

    def staff():
        barrier.wait()
        try:
            contracts.create_contract(
                team_id=team.pk,
                actor=None,
                starts_at=period.start,
                ends_at=period.start + timedelta(days=365),
                pricing=Contract.Pricing.GRADUATED,
                tiers=TIERS,
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)] + [threading.Thread(target=staff)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    period.refresh_from_db()
    assert period.requests_used == 80
    invoice = closing.close_period(period.pk, now=period.end + timedelta(hours=2))
    lines = list(invoice.lines.all())
    assert sum(line.quantity for line in lines) == 80
    under_contract = sum(line.quantity for line in lines if line.description.startswith("Requests"))
    assert invoice.total_cents == under_contract * 12
