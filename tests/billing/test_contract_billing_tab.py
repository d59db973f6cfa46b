"""What Owners see of their Enterprise contract: the contract card on the Billing tab (terms, tiers, the
current tier, the estimate), no self-serve switching, the usage numbers of contract periods (tab and
usage API), and invoice-paid invoices (due date and payment instructions, never charged by card)."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from accounts.models import Team
from accounts.roles import Role
from billing import closing, contracts, lifecycle, rating, selectors, services
from billing.contracts import TierTerms
from billing.models import BillingPeriod, Contract, Invoice, Payment, Subscription, UsageDaily
from tests.billing.test_invoices import pdf_text
from tests.billing.usage import count_billable_requests
from tests.conftest import login_as
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

SMALL_TIERS = [TierTerms(10, Decimal("12")), TierTerms(100, Decimal("9")), TierTerms(None, Decimal("6"))]
USAGE_API = "/api/v1/billing/usage"


@pytest.fixture
def owner_membership(team, owner):
    return owner.memberships.get(team=team)


def make_contract(team, *, starts_at=None, now=None, **terms) -> Contract:
    """A contract with small tiers (first 10 at 12¢, next 90 at 9¢, beyond at 6¢), started at once by default."""
    now = now or timezone.now()
    starts_at = starts_at or now - timedelta(minutes=1)
    defaults = {
        "pricing": Contract.Pricing.GRADUATED,
        "tiers": SMALL_TIERS,
        "request_allowance": 5_000,
        "vehicle_allowance": 50,
        "reference": "ORD-42",
    }
    return contracts.create_contract(
        team_id=team.pk,
        actor=None,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(days=365),
        now=now,
        **{**defaults, **terms},
    )


def page(client, url=None) -> str:
    response = client.get(url or reverse("billing"))
    assert response.status_code == 200
    return response.content.decode()


def contract_card(html: str) -> str:
    assert 'id="contract-heading"' in html
    return html.split('id="contract-heading"')[1].split("</section>")[0]


def tier_table(html: str) -> list[tuple[str, str, bool]]:
    """The tiers table of the contract card: (requests, price, current?) per row."""
    rows = re.findall(r"<tr( class=\"current-tier\"[^>]*)?><td>(.*?)</td><td[^>]*>(.*?)</td></tr>", contract_card(html))
    return [(re.sub(r"<[^>]+>|Current tier", "", text).strip(), price, bool(current)) for current, text, price in rows]


def close(period) -> Invoice:
    invoice = closing.close_period(period.pk, now=period.end + timedelta(hours=2))
    assert invoice is not None
    return invoice


def fixed_team(team) -> BillingPeriod:
    """The team created on 1 March 2025 (periods run from the 1st): its March period."""
    Team.objects.filter(pk=team.pk).update(created_at=datetime(2025, 3, 1, 0, 0, tzinfo=UTC))
    return lifecycle.current_period(team.pk, datetime(2025, 3, 1, 0, 0, tzinfo=UTC))


# --- the contract card ---------------------------------------------------------------------------------------------


def test_the_tab_shows_the_contracts_terms_instead_of_the_plan_card(owner_client, team):
    contract = make_contract(team, minimum_cents=10_000)

    html = page(owner_client)

    card = contract_card(html)
    assert "Contract ORD-42" in card and "Active" in card
    assert f"{contract.starts_at:%-d %B %Y} – {contract.ends_at:%-d %B %Y}" in card
    assert "5,000 a period" in card and "50 a period" in card
    assert "Graduated pricing: the period&#x27;s requests are priced tier by tier" in card
    assert "Monthly minimum</dt><dd>$100.00" in card
    assert "Invoice, net 30 — paid by bank transfer" in card
    assert tier_table(html) == [("1 – 10", "12¢", True), ("11 – 100", "9¢", False), ("Beyond 100", "6¢", False)]
    assert "pro-rated to the part of the period so far" in card
    assert 'id="plan-heading"' not in html  # the contract replaces the self-serve plan card


def test_the_current_tier_moves_from_the_first_to_the_second_as_contract_requests_are_counted(owner_client, team):
    make_contract(team)
    vehicle = count_billable_requests(team, 9)

    html = page(owner_client)
    assert [row[2] for row in tier_table(html)] == [True, False, False]
    assert 'id="contract-requests">9<' in html

    count_billable_requests(team, 2, vehicle=vehicle)  # the 11th request is priced in the second tier

    html = page(owner_client)
    assert [row[2] for row in tier_table(html)] == [False, True, False]
    assert 'id="contract-requests">11<' in html
    assert 'class="current-tier" aria-current="true"><td>11 – 100 <span class="badge">Current tier</span>' in html


def test_requests_counted_before_the_contract_are_not_its_requests(owner_client, team):
    vehicle = count_billable_requests(team, 30)  # on Free, before the contract
    make_contract(team)
    count_billable_requests(team, 3, vehicle=vehicle)

    html = page(owner_client)

    assert 'id="contract-requests">3<' in html
    assert [row[2] for row in tier_table(html)] == [True, False, False]


def test_unlimited_allowances_read_unlimited(owner_client, team):
    make_contract(team, request_allowance=None, vehicle_allowance=None)

    card = contract_card(page(owner_client))

    assert "Unlimited a period" in card and card.count("Unlimited") == 2


def test_volume_pricing_is_explained_in_one_sentence(owner_client, team):
    make_contract(team, pricing=Contract.Pricing.VOLUME)
    card = contract_card(page(owner_client))
    assert "Volume pricing: every request of the period is priced at the price of the tier" in card


def test_the_estimate_and_the_accrued_amount_follow_the_tier_math(owner_client, team):
    make_contract(team)
    count_billable_requests(team, 25)

    html = page(owner_client)

    expected = 10 * 12 + 15 * 9  # $2.55
    assert 'id="contract-estimate">$2.55<' in html
    assert f"Accrued so far</dt><dd>${expected / 100:.2f}" in html
    period = lifecycle.current_period(team.pk)
    assert BillingPeriod.objects.get(pk=period.pk).accrued_cents == 0  # the hot path counts contract requests at 0


def test_the_estimate_pro_rates_the_minimum_to_the_period_so_far(owner_client, team):
    period = fixed_team(team)
    make_contract(team, starts_at=period.start, now=period.start, minimum_cents=31_000)
    now = period.start + timedelta(days=10)
    with time_machine.travel(now, tick=False):
        count_billable_requests(team, 12)
        html = page(owner_client)

    share = rating.prorated_minimum(31_000, now - period.start, period.end - period.start)
    assert share == 10_000  # 10 of March's 31 days
    assert 'id="contract-estimate">$100.00<' in html  # 10 × 12¢ + 2 × 9¢ = $1.38, topped up to the share
    assert "Accrued so far</dt><dd>$1.38" in html  # the usage, without the top-up


def test_a_card_paid_contract_names_the_card(owner_client, team):
    Subscription.objects.filter(pk=lifecycle.subscription_for(team.pk).pk).update(
        card_on_file=True, card_brand="visa", card_last4="4242"
    )
    make_contract(team, paid_by=Contract.PaidBy.CARD)

    card = contract_card(page(owner_client))

    assert "Card ••••4242, charged automatically" in card
    assert f'href="{reverse("billing_card")}"' in card


def test_a_scheduled_contract_says_when_it_starts_and_the_plan_still_applies(owner_client, team):
    starts_at = timezone.now() + timedelta(days=40)
    make_contract(team, starts_at=starts_at)

    html = page(owner_client)

    card = contract_card(html)
    assert f"Starts on {starts_at:%-d %B %Y}" in card and "Scheduled" in card
    assert [row[2] for row in tier_table(html)] == [False, False, False]
    assert "contract-estimate" not in card
    assert 'id="plan-heading"' in html  # Free applies until then
    assert "?plan=payg" not in html and "Set by your contract" in html


# --- no self-serve switching -----------------------------------------------------------------------------------------


def test_a_contract_team_is_offered_no_plan_switch_and_a_switch_is_refused(owner_client, team):
    Subscription.objects.filter(pk=lifecycle.subscription_for(team.pk).pk).update(card_on_file=True)
    make_contract(team)

    html = page(owner_client)

    plans = html.split('id="plans-heading"')[1].split("</section>")[0]
    assert "?plan=" not in plans and "Upgrade to" not in plans and "Switch to" not in plans
    assert "Set by your contract" in plans and "Your plan is set by your Enterprise contract" in plans
    assert f'href="{reverse("sales_contact")}"' in plans

    response = owner_client.get(f"{reverse('billing_plan_switch')}?plan=payg")
    assert response.status_code == 302
    assert escape(services.CONTRACT_SETS_PLAN) in page(owner_client, response["Location"])

    response = owner_client.post(reverse("billing_plan_switch"), {"plan": "payg"})
    assert response.status_code == 302
    assert escape(services.CONTRACT_SETS_PLAN) in page(owner_client, response["Location"])
    assert Subscription.objects.get(team=team).plan.code == "enterprise"


# --- tenancy and roles -----------------------------------------------------------------------------------------------


def test_another_teams_owner_sees_nothing_of_the_contract(client, team, other_team):
    make_contract(team, reference="SECRET-7")
    count_billable_requests(team, 25)
    login_as(client, other_team.memberships.get(role=Role.OWNER))

    html = page(client)
    body = client.get(USAGE_API).json()

    assert "SECRET-7" not in html and 'id="contract-heading"' not in html
    assert "Set by your contract" not in html  # their own plans are switchable
    assert body["accrued_cents"] == 0 and body["plan"] == "free"


@pytest.mark.parametrize("role", [Role.ADMIN, Role.EDITOR, Role.VIEWER])
def test_members_who_are_not_owners_cannot_see_the_billing_tab(client, team, make_member, role):
    make_contract(team)
    login_as(client, make_member(role))

    assert client.get(reverse("billing")).status_code == 403
    assert client.get(USAGE_API).status_code == 403


# --- usage numbers ---------------------------------------------------------------------------------------------------


def test_the_usage_api_reports_the_tiered_amount_of_a_contract_period(owner_client, team):
    count_billable_requests(team, 5)  # on Free: $0
    make_contract(team)
    count_billable_requests(team, 105)

    body = owner_client.get(USAGE_API).json()

    assert body["plan"] == "enterprise" and body["requests"] == {"used": 110, "allowance": 5_000}
    assert body["accrued_cents"] == 10 * 12 + 90 * 9 + 5 * 6
    assert body["projected_cents"] >= body["accrued_cents"]


def test_the_projection_prices_the_contract_requests_at_the_current_pace_by_the_tiers(team):
    period = fixed_team(team)
    make_contract(team, starts_at=period.start, now=period.start, minimum_cents=0)
    now = period.start + timedelta(days=10)
    with time_machine.travel(now, tick=False):
        count_billable_requests(team, 20)
        period.refresh_from_db()
        summary = selectors.usage_summary(selectors.period_state(team, selectors.open_period(team, now), now))

    expected = 20 + 20 * 21 // 10  # 21 days left in March at 2 a day: 62 requests
    assert summary["accrued_cents"] == 10 * 12 + 10 * 9
    assert summary["projected_cents"] == 10 * 12 + (expected - 10) * 9


def test_the_projection_stays_within_the_contracts_allowance(team):
    period = fixed_team(team)
    make_contract(team, starts_at=period.start, now=period.start, request_allowance=30)
    now = period.start + timedelta(days=10)
    with time_machine.travel(now, tick=False):
        count_billable_requests(team, 20)
        summary = selectors.usage_summary(selectors.period_state(team, selectors.open_period(team, now), now))

    assert summary["projected_cents"] == 10 * 12 + 20 * 9  # 30 requests at most


def test_a_closed_contract_period_reports_its_usage_without_a_projection(owner_client, team):
    period = fixed_team(team)
    make_contract(team, starts_at=period.start, now=period.start)
    with time_machine.travel(period.start + timedelta(days=3), tick=False):
        count_billable_requests(team, 15)
    close(period)

    with time_machine.travel(period.end + timedelta(days=2), tick=False):
        body = owner_client.get(USAGE_API, {"period": "2025-03-01"}).json()

    assert body["accrued_cents"] == body["projected_cents"] == 10 * 12 + 5 * 9


# The PAYG tab's 21 less the Garage grant (a contract team has none), plus the contract and its tiers (2), its
# requests this period (1), the card's estimate (rate_usage: 4) and the usage numbers (rating: 4, the contract's
# dates for the projection: 1).
CONTRACT_QUERY_BUDGET = 31


@time_machine.travel(datetime(2025, 3, 20, 12, 0, tzinfo=UTC), tick=False)
def test_the_contract_tab_costs_the_same_few_queries_whatever_the_volume(
    owner_client, team, django_assert_max_num_queries
):
    period = fixed_team(team)
    contract = make_contract(team, starts_at=period.start, now=period.start)
    count_billable_requests(team, 12)
    page(owner_client)  # warm the session
    with django_assert_max_num_queries(CONTRACT_QUERY_BUDGET):
        page(owner_client)

    UsageDaily.objects.bulk_create(
        UsageDaily(
            period=period,
            day=period.start.date() + timedelta(days=day),
            application_key=app,
            endpoint=f"/vehicles/{{id}}/endpoint-{app}",
            billable=3,
            contract_key=contract.pk,
        )
        for day in range(19)
        for app in range(1, 60)
    )
    with django_assert_max_num_queries(CONTRACT_QUERY_BUDGET):
        html = page(owner_client)
    assert f'id="contract-requests">{12 + 19 * 59 * 3:,}<' in html


# --- invoices of an invoice-paid contract ----------------------------------------------------------------------------


@pytest.fixture
def transfer_invoice(team, owner_membership) -> Invoice:
    """An invoice of an invoice-paid contract (net 30) for 105 requests: $9.30 and 5 requests at half a cent."""
    period = lifecycle.current_period(team.pk)
    tiers = [TierTerms(10, Decimal("12")), TierTerms(100, Decimal("9")), TierTerms(None, Decimal("0.5"))]
    make_contract(team, tiers=tiers)
    count_billable_requests(team, 105)
    invoice = close(period)
    assert (invoice.collection, invoice.status, invoice.total_cents) == ("invoice", "open", 120 + 810 + 3)
    return invoice


def test_an_invoice_paid_invoice_shows_its_due_date_and_how_to_pay(owner_client, transfer_invoice):
    html = page(owner_client, reverse("billing_invoice", args=[transfer_invoice.public_id]))

    assert f"Due {transfer_invoice.due_at:%-d %B %Y}" in html
    assert settings.INVOICE_PAYMENT_INSTRUCTIONS in html
    assert "We could not charge this invoice" not in html
    lines = re.findall(r"<tr><td>(Requests[^<]*)</td>.*?data-label=\"Unit price\">([^<]*)<", html)
    assert lines == [("Requests 1–10", "12¢"), ("Requests 11–100", "9¢"), ("Requests beyond 100", "0.5¢")]


def test_the_invoice_list_and_pdf_show_the_due_date_and_instructions(owner_client, transfer_invoice):
    html = page(owner_client)
    invoices = html.split('id="invoices-heading"')[1].split("</section>")[0]
    assert f"Due {transfer_invoice.due_at:%-d %b %Y}" in invoices
    assert settings.INVOICE_PAYMENT_INSTRUCTIONS in invoices
    assert "Pay now" not in invoices

    response = owner_client.get(reverse("billing_invoice_pdf", args=[transfer_invoice.public_id]))
    text = pdf_text(response.content)
    assert f"{transfer_invoice.due_at:%d %B %Y}".encode() in text
    assert b"Ignition Inc., account 000123456789" in text
    assert b"0.5\xa2" in text  # Latin-1 cent sign: fractions of a cent shown


def test_a_paid_invoice_shows_no_instructions(owner_client, transfer_invoice):
    Invoice.objects.filter(pk=transfer_invoice.pk).update(status=Invoice.Status.PAID, paid_at=timezone.now())
    html = page(owner_client, reverse("billing_invoice", args=[transfer_invoice.public_id]))
    assert settings.INVOICE_PAYMENT_INSTRUCTIONS not in html and "Due " not in html


@pytest.mark.parametrize("overdue", [False, True])
def test_the_pay_page_shows_the_instructions_and_never_charges_a_card(owner_client, team, transfer_invoice, overdue):
    Subscription.objects.filter(team=team).update(card_on_file=True, card_last4="4242", payment_method_id="pm_x")
    if overdue:
        assert contracts.mark_overdue_invoices(transfer_invoice.due_at + timedelta(minutes=1)) == [transfer_invoice.pk]
    url = reverse("billing_invoice_pay", args=[transfer_invoice.public_id])

    html = page(owner_client, url)

    assert settings.INVOICE_PAYMENT_INSTRUCTIONS in html
    assert f"{transfer_invoice.due_at:%-d %B %Y}" in html
    assert ("is past due" in html) is overdue
    assert 'name="attempt"' not in html and "Add a card to pay" not in html

    response = owner_client.post(url, {"attempt": "1"})
    assert response.status_code == 302 and response["Location"] == url
    assert "paid by bank transfer, not by card" in page(owner_client, url)
    assert not Payment.objects.filter(invoice=transfer_invoice).exists()
    transfer_invoice.refresh_from_db()
    assert transfer_invoice.status == (Invoice.Status.PAST_DUE if overdue else Invoice.Status.OPEN)


def test_another_teams_owner_cannot_reach_the_invoice_or_its_pay_page(client, other_team, transfer_invoice):
    MembershipFactory(team=other_team, role=Role.OWNER)
    login_as(client, other_team.memberships.filter(role=Role.OWNER).first())

    assert client.get(reverse("billing_invoice", args=[transfer_invoice.public_id])).status_code == 404
    assert client.post(reverse("billing_invoice_pay", args=[transfer_invoice.public_id])).status_code == 404
    assert not Payment.objects.exists()


def test_the_overviews_usage_card_shows_the_tiered_amount_accrued_under_a_contract(owner_client, team):
    make_contract(team)
    count_billable_requests(team, 12)  # 10 × 12¢ + 2 × 9¢
    html = page(owner_client, reverse("overview"))
    card = html.split('id="usage-summary-heading"')[1].split("</section>")[0]
    assert "$1.38" in card
