"""`manage.py seed_demo`'s Enterprise team: the demo user's second team, on an invoice-paid graduated
contract, with last period's usage closed into an invoice with a line per tier. Safe to run repeatedly."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import demo as accounts_demo
from accounts.models import Application, Membership, Team
from accounts.roles import Role
from billing import demo
from billing.models import BillingPeriod, Contract, Invoice, UsageDaily, UsageEvent
from tests.factories import run_seed_demo
from vehicles.models import Connection

# `seeded_demo` (tests/conftest.py) seeds once for the module; a test that reseeds calls run_seed_demo.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("seeded_demo")]


def enterprise_team() -> Team:
    return Team.objects.get(name=demo.DEMO_ENTERPRISE_TEAM)


def counts() -> dict:
    return {
        model.__name__: model.objects.count()
        for model in (Team, Membership, Application, Connection, Contract, Invoice, BillingPeriod, UsageEvent)
    } | {"requests_used": sorted(BillingPeriod.objects.values_list("requests_used", flat=True))}


def test_the_demo_user_owns_the_enterprise_team_and_still_lands_on_demo_motors_first():
    team = enterprise_team()
    membership = Membership.objects.get(team=team)
    assert (membership.user.email, membership.role) == (accounts_demo.DEMO_EMAIL, Role.OWNER)
    # The dashboard opens on the user's first team by name: the Free demo team whose credentials are printed.
    names = Team.objects.filter(memberships__user=membership.user).order_by("name").values_list("name", flat=True)
    assert list(names) == [accounts_demo.DEMO_TEAM, demo.DEMO_ENTERPRISE_TEAM]
    assert timezone.now() - team.created_at >= timedelta(days=demo.DEMO_ENTERPRISE_AGE_DAYS - 1)
    application = Application.objects.get(team=team)
    assert Connection.objects.filter(application=application, revoked_at__isnull=True).count() == 3


def test_its_contract_is_active_invoice_paid_and_graduated_from_the_first_period():
    team = enterprise_team()
    contract = Contract.objects.get(team=team)
    first = BillingPeriod.objects.filter(team=team).order_by("start").first()
    assert (contract.status, contract.reference, contract.pricing, contract.paid_by) == (
        "active",
        demo.DEMO_CONTRACT_REFERENCE,
        "graduated",
        "invoice",
    )
    assert contract.started_at == contract.starts_at == first.start
    assert contract.ends_at > timezone.now() + timedelta(days=300)
    assert (contract.request_allowance, contract.vehicle_allowance, contract.minimum_cents) == (None, 50, 5_000)
    assert team.subscription.plan.code == "enterprise"


def test_its_last_period_is_closed_with_an_invoice_line_per_tier():
    team = enterprise_team()
    closed = BillingPeriod.objects.get(team=team, status="closed")
    assert closed.requests_used == demo.DEMO_LAST_PERIOD_REQUESTS == 600
    invoice = Invoice.objects.get(period=closed)
    lines = [(line.kind, line.description, line.quantity, line.unit_price_cents) for line in invoice.lines.all()]
    assert lines == [
        ("usage", "Requests 1–100", 100, 12),
        ("usage", "Requests 101–500", 400, 9),
        ("usage", "Requests beyond 500", 100, 6),
    ]
    assert all(line.amount_cents == line.quantity * line.unit_price_cents for line in invoice.lines.all())
    assert invoice.total_cents == invoice.subtotal_cents == 100 * 12 + 400 * 9 + 100 * 6 == 5_400  # above the minimum
    assert (invoice.collection, invoice.status) == ("invoice", "open")
    assert invoice.issued_at > closed.end and invoice.due_at == invoice.issued_at + timedelta(days=30)
    assert invoice.due_at > timezone.now()  # not overdue on a fresh demo


def test_its_current_period_is_open_on_the_contract_with_some_usage():
    team = enterprise_team()
    current = BillingPeriod.objects.get(team=team, status="open")
    assert current.start <= timezone.now() < current.end
    assert current.contract_id == Contract.objects.get(team=team).pk and current.request_allowance is None
    assert current.requests_used == UsageEvent.objects.filter(period=current).count()
    assert UsageDaily.objects.filter(period=current).exists()


def test_seeding_again_changes_nothing():
    before = counts()

    run_seed_demo()

    assert counts() == before
    assert Contract.objects.filter(team=enterprise_team()).count() == 1
    assert Invoice.objects.filter(team=enterprise_team()).count() == 1


def test_the_output_names_the_enterprise_team(seeded_demo):
    assert f"Enterprise demo team: {demo.DEMO_ENTERPRISE_TEAM} (switch team in the dashboard)" in seeded_demo.text

    enterprise = seeded_demo.json["enterprise"]

    invoice = Invoice.objects.get(team=enterprise_team())
    assert enterprise == {
        "team": demo.DEMO_ENTERPRISE_TEAM,
        "contract": demo.DEMO_CONTRACT_REFERENCE,
        "invoice": invoice.number,
    }
