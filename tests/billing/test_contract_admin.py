"""Staff create Enterprise contracts in the admin through billing.contracts: the service's rules show as form
errors, the contract is audited and starts at once when due; contracts are read-only afterwards, ended or
canceled with a reason, and the pages are for staff only."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import LogEntry
from django.utils import timezone

from accounts.models import AuditEvent
from billing import contracts, lifecycle
from billing.contracts import TierTerms
from billing.models import BillingEvent, Contract, Subscription
from tests.billing.test_billing_admin import staff_client  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db

ADD = "/admin/billing/contract/add/"
CHANGELIST = "/admin/billing/contract/"
EXAMPLE_TIERS = [("10000", "12"), ("100000", "9"), ("", "6")]


def split(moment) -> dict:
    return {"0": moment.strftime("%Y-%m-%d"), "1": moment.strftime("%H:%M:%S")}


def add_form(team, *, starts_at=None, ends_at=None, tiers=EXAMPLE_TIERS, **terms) -> dict:
    """What the add page posts: the contract's fields and the tiers inline with its management form."""
    starts_at = starts_at or timezone.now() - timedelta(days=1)
    ends_at = ends_at or starts_at + timedelta(days=365)
    form = {
        "team": team.pk,
        "reference": "ACME-2026-01",
        **{f"starts_at_{part}": value for part, value in split(starts_at).items()},
        **{f"ends_at_{part}": value for part, value in split(ends_at).items()},
        "request_allowance": "",
        "vehicle_allowance": "500",
        "pricing": "graduated",
        "minimum_cents": "100000",
        "paid_by": "invoice",
        "net_days": "30",
        "tiers-TOTAL_FORMS": str(len(tiers)),
        "tiers-INITIAL_FORMS": "0",
        "tiers-MIN_NUM_FORMS": "0",
        "tiers-MAX_NUM_FORMS": "1000",
    }
    for index, (up_to, price) in enumerate(tiers):
        form[f"tiers-{index}-up_to"] = up_to
        form[f"tiers-{index}-unit_price_cents"] = price
    return {**form, **terms}


def service_contract(team, *, starts_at, days=365):
    return contracts.create_contract(
        team_id=team.pk,
        actor=None,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(days=days),
        pricing=Contract.Pricing.GRADUATED,
        tiers=[TierTerms(10_000, Decimal("12")), TierTerms(None, Decimal("6"))],
        reference="OLD-1",
    )


def plan_of(team) -> str:
    return Subscription.objects.get(team=team).plan.code


def test_staff_create_a_graduated_contract_that_starts_at_once(staff_client, team):  # noqa: F811
    lifecycle.current_period(team.pk)
    staff = staff_client.get("/admin/").wsgi_request.user
    assert staff_client.get(ADD).status_code == 200

    response = staff_client.post(ADD, add_form(team))

    assert response.status_code == 302, response.content.decode()[:3000]
    contract = Contract.objects.get(team=team)
    assert response.url == CHANGELIST
    assert [(t.up_to, t.unit_price_cents) for t in contract.tiers.all()] == [
        (10_000, Decimal("12")),
        (100_000, Decimal("9")),
        (None, Decimal("6")),
    ]
    assert (contract.reference, contract.request_allowance, contract.vehicle_allowance) == ("ACME-2026-01", None, 500)
    assert (contract.minimum_cents, contract.paid_by, contract.created_by) == (100_000, "invoice", staff)
    assert contract.status == "active" and contract.previous_plan.code == "free"
    assert plan_of(team) == "enterprise"
    assert lifecycle.current_period(team.pk).contract_id == contract.pk
    created = BillingEvent.objects.get(team=team, kind="contract", after__action="created")
    assert created.actor == staff
    assert created.after["tiers"] == [[10000, "12.0000"], [100000, "9.0000"], [None, "6.0000"]]
    assert BillingEvent.objects.filter(team=team, kind="contract", after__action="started").exists()
    assert AuditEvent.objects.filter(team=team, action="billing.contract_created", actor=staff).exists()
    assert LogEntry.objects.get(object_id=str(contract.pk)).user == staff  # the admin's own history links to it


def test_a_contract_starting_later_stays_scheduled(staff_client, team):  # noqa: F811
    starts_at = timezone.now() + timedelta(days=10)

    response = staff_client.post(ADD, add_form(team, starts_at=starts_at, pricing="volume"))

    assert response.status_code == 302, response.content.decode()[:3000]
    contract = Contract.objects.get(team=team)
    assert (contract.status, contract.pricing, contract.started_at) == ("scheduled", "volume", None)
    assert plan_of(team) == "free"
    assert BillingEvent.objects.filter(team=team, kind="contract", after__action="created").count() == 1


@pytest.mark.parametrize(
    ("tiers", "message"),
    [
        ([("10000", "12"), ("", "9"), ("", "6")], "Give exactly one last tier with no upper bound"),
        ([("10000", "12"), ("100000", "9")], "Give exactly one last tier with no upper bound"),
        ([("10000", "12"), ("10000", "9"), ("", "6")], "Please correct the duplicate data for up_to"),
        ([("0", "12"), ("", "6")], "tier bounds must be positive and increasing"),
        ([("10000", "12"), ("", "-1")], "prices and minimums cannot be negative"),
        ([], "Give exactly one last tier with no upper bound"),
    ],
    ids=["two-unbounded", "none-unbounded", "repeated-bound", "zero-bound", "negative-price", "no-tiers"],
)
def test_invalid_tiers_are_form_errors_and_nothing_is_created(staff_client, team, tiers, message):  # noqa: F811
    response = staff_client.post(ADD, add_form(team, tiers=tiers))

    assert response.status_code == 200
    page = response.content.decode()
    assert "Please correct the error" in page and message in page
    assert not Contract.objects.exists()
    assert not BillingEvent.objects.filter(kind="contract").exists()


def test_tiers_typed_out_of_order_are_stored_in_order(staff_client, team):  # noqa: F811
    response = staff_client.post(ADD, add_form(team, tiers=[("", "6"), ("100000", "9"), ("10000", "12")]))

    assert response.status_code == 302, response.content.decode()[:3000]
    assert [t.up_to for t in Contract.objects.get(team=team).tiers.all()] == [10_000, 100_000, None]


def test_an_overlapping_contract_is_refused(staff_client, team):  # noqa: F811
    existing = service_contract(team, starts_at=timezone.now() + timedelta(days=5))

    response = staff_client.post(ADD, add_form(team, starts_at=timezone.now() + timedelta(days=30)))

    assert response.status_code == 200
    assert "Contract OLD-1 already covers" in response.content.decode()
    assert list(Contract.objects.all()) == [existing]


def test_paying_by_card_needs_a_card_on_file(staff_client, team):  # noqa: F811
    response = staff_client.post(ADD, add_form(team, paid_by="card"))

    assert response.status_code == 200
    assert "This team has no card on file" in response.content.decode()
    assert not Contract.objects.exists()

    Subscription.objects.filter(team=team).update(card_on_file=True)
    assert staff_client.post(ADD, add_form(team, paid_by="card")).status_code == 302
    assert Contract.objects.get(team=team).paid_by == "card"


def test_a_contract_must_end_after_it_starts(staff_client, team):  # noqa: F811
    starts_at = timezone.now() + timedelta(days=10)

    response = staff_client.post(ADD, add_form(team, starts_at=starts_at, ends_at=starts_at - timedelta(days=1)))

    assert response.status_code == 200
    assert "The contract must end after it starts." in response.content.decode()
    assert not Contract.objects.exists()


def test_a_started_contract_is_read_only(staff_client, team):  # noqa: F811
    contract = service_contract(team, starts_at=timezone.now() - timedelta(hours=1))
    url = f"/admin/billing/contract/{contract.pk}/change/"

    page = staff_client.get(url)

    assert page.status_code == 200
    text = page.content.decode()
    assert "its terms price the team's usage and never change" in text
    assert "1 – 10,000 at 12¢" in text and "Beyond 10,000 at 6¢" in text
    assert "Enterprise" in text and "0 requests used of Unlimited" in text  # the team's plan and period usage
    assert 'name="minimum_cents"' not in text and 'name="tiers-0-up_to"' not in text
    form = add_form(team, minimum_cents="1", reference="CHANGED", tiers=[("", "1")])
    assert staff_client.post(url, form).status_code == 403
    assert staff_client.post(f"/admin/billing/contract/{contract.pk}/delete/", {"post": "yes"}).status_code == 403
    contract.refresh_from_db()
    assert (contract.reference, contract.minimum_cents, contract.status) == ("OLD-1", 0, "active")
    assert [(t.up_to, t.unit_price_cents) for t in contract.tiers.all()] == [(10_000, 12), (None, 6)]


def test_a_scheduled_contract_says_to_cancel_it_rather_than_edit(staff_client, team):  # noqa: F811
    contract = service_contract(team, starts_at=timezone.now() + timedelta(days=3))

    text = staff_client.get(f"/admin/billing/contract/{contract.pk}/change/").content.decode()

    assert "This contract has not started. Its terms cannot be edited" in text
    assert 'name="starts_at_0"' not in text


def test_staff_end_a_contract_with_a_reason_and_the_team_goes_back_to_its_plan(staff_client, team):  # noqa: F811
    contract = service_contract(team, starts_at=timezone.now() - timedelta(hours=1))
    assert plan_of(team) == "enterprise"
    form = {"action": "end_contracts", ACTION_CHECKBOX_NAME: [contract.pk]}

    page = staff_client.post(CHANGELIST, form)
    assert page.status_code == 200 and "End or cancel contracts" in page.content.decode()  # the reason first
    refused = staff_client.post(CHANGELIST, {**form, "confirm": "yes", "note": " "})
    assert refused.status_code == 200 and "This field is required." in refused.content.decode()
    assert Contract.objects.get(pk=contract.pk).status == "active"

    response = staff_client.post(CHANGELIST, {**form, "confirm": "yes", "note": "Customer downsized"}, follow=True)

    assert "Ended or canceled 1 contract." in response.content.decode()
    assert Contract.objects.get(pk=contract.pk).status == "ended"
    assert plan_of(team) == "free"
    ended = BillingEvent.objects.get(team=team, kind="contract", after__action="ended")
    assert ended.after["reason"] == "Customer downsized" and ended.actor.email == "ops@example.com"

    again = staff_client.post(CHANGELIST, {**form, "confirm": "yes", "note": "Twice"}, follow=True)
    assert "Contract OLD-1 is ended already." in again.content.decode()


def test_a_scheduled_contract_is_canceled_by_the_action(staff_client, team):  # noqa: F811
    contract = service_contract(team, starts_at=timezone.now() + timedelta(days=3))
    form = {"action": "end_contracts", ACTION_CHECKBOX_NAME: [contract.pk], "confirm": "yes", "note": "Not signed"}

    staff_client.post(CHANGELIST, form)

    assert Contract.objects.get(pk=contract.pk).status == "canceled"
    assert plan_of(team) == "free"


def test_the_list_and_the_teams_page_show_contracts(staff_client, team):  # noqa: F811
    service_contract(team, starts_at=timezone.now() + timedelta(days=3))

    listing = staff_client.get(CHANGELIST, {"q": "OLD-1"}).content.decode()
    team_page = staff_client.get(f"/admin/accounts/team/{team.pk}/change/").content.decode()

    assert "OLD-1" in listing and "Acme Mobility" in listing
    assert "OLD-1" in team_page and "Scheduled" in team_page


def test_developers_cannot_open_or_post_to_the_contract_admin(client, owner, team):
    client.force_login(owner)

    for url in [CHANGELIST, ADD]:
        response = client.get(url, follow=True)
        assert response.redirect_chain and response.redirect_chain[-1][0] == "/overview/", url
    response = client.post(ADD, add_form(team))

    assert response.status_code == 302 and "/admin/login/" in response.url
    assert not Contract.objects.exists()


def test_a_contract_that_became_impossible_after_the_form_was_checked_is_refused_without_a_crash(
    staff_client,  # noqa: F811
    team,
    monkeypatch,
):
    answers = iter([None, "Contract RACE already covers these dates; end it first or choose dates after it."])
    monkeypatch.setattr(contracts, "why_contract_cannot_start", lambda *args, **kwargs: next(answers))

    response = staff_client.post(ADD, add_form(team), follow=True)

    assert response.redirect_chain[-1][0] == ADD
    assert "No contract was created: Contract RACE already covers" in response.content.decode()
    assert not Contract.objects.exists()
    assert not BillingEvent.objects.filter(kind="contract").exists()
