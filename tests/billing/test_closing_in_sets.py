"""Closing in sets (billing.closing._close_in_set, lifecycle.open_next_periods) issues exactly what closing period
by period does: the same invoices, lines, statuses, carried amounts, audit events and next periods.

The same world of teams is built twice, one after the other, and closed once with the sets turned off and once
as production runs it; the two are compared team by team. Only the invoice numbers may differ in order (periods
closed in a set are numbered before the others of their batch); they stay unique and without gaps.
"""

from datetime import timedelta

import pytest

from billing import closing, lifecycle
from billing.models import BillingEvent, BillingPeriod, Grant, Invoice, Plan, Subscription
from tests.billing.usage import count_billable_requests
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db

LABELS = [
    "free with usage",
    "payg 10",
    "payg 2 (carried)",
    "payg with a carried invoice waiting",
    "payg downgrading to free",
    "garage grant",
    "no usage",
    "next period already open",
]


def build_world(suffix: str) -> dict[str, object]:
    free, payg = Plan.objects.get(code="free"), Plan.objects.get(code="payg")
    teams = {label: TeamFactory(name=f"{label} {suffix}") for label in LABELS}
    for label, team in teams.items():
        subscription = lifecycle.subscription_for(team.pk)
        if label.startswith("payg"):
            Subscription.objects.filter(pk=subscription.pk).update(plan=payg, card_on_file=True)
        if label == "garage grant":
            now = lifecycle.current_period(team.pk).start
            Grant.objects.create(
                team=team, starts_at=now, ends_at=now + timedelta(days=90), request_allowance=1000, vehicle_allowance=20
            )
        period = lifecycle.current_period(team.pk)
        if label == "garage grant":  # the grant's terms, as billing.grants applies them to the open period
            BillingPeriod.objects.filter(pk=period.pk).update(request_allowance=1000, vehicle_allowance=20)
        requests = {"free with usage": 7, "payg 10": 10, "payg 2 (carried)": 2, "garage grant": 4}.get(label, 3)
        if label != "no usage":
            count_billable_requests(team, requests)
        if label == "payg with a carried invoice waiting":
            earlier = BillingPeriod.objects.create(
                team=team, start=period.start - timedelta(days=31), end=period.start, plan=payg, status="closed"
            )
            carried = {"subtotal_cents": 30, "total_cents": 30, "status": Invoice.Status.CARRIED}
            Invoice.objects.create(
                team=team, period=earlier, number=f"INV-1999-{suffix}", issued_at=period.start, **carried
            )
        if label == "payg downgrading to free":
            Subscription.objects.filter(pk=subscription.pk).update(pending_plan=free, pending_at=period.end)
        if label == "next period already open":
            lifecycle.current_period(team.pk, period.end + timedelta(minutes=5))
    return teams


def snapshot(teams: dict) -> dict:
    """What closing wrote for each team, with ids, numbers and team names left out."""
    numbers = {}
    result = {}
    for label, team in teams.items():
        invoice = Invoice.objects.exclude(number__startswith="INV-1999").get(team=team)
        numbers[label] = invoice.number
        periods = BillingPeriod.objects.filter(team=team).order_by("start")
        money = ("status", "subtotal_cents", "credit_cents", "total_cents", "collection", "due_at")
        line_fields = ("position", "kind", "description", "quantity", "unit_price_cents", "amount_cents")
        own_number = f"INV-1999-{team.name[-1]}"  # the carried invoice's number differs by world
        result[label] = {
            "invoice": (*(getattr(invoice, name) for name in money), invoice.paid_at is not None),
            "lines": [
                tuple(str(getattr(line, name)).replace(own_number, "INV-1999") for name in line_fields)
                for line in invoice.lines.order_by("position")
            ],
            "carried in": sorted(
                earlier.total_cents for earlier in Invoice.objects.filter(team=team, carried_to=invoice)
            ),
            "periods": [
                (p.start, p.end, p.plan.code, p.request_allowance, p.vehicle_allowance, p.unit_price_cents)
                + (p.requests_used, p.status)
                for p in periods
            ],
            "plan now": Subscription.objects.get(team=team).plan.code,
            "events": [
                (event.kind, event.before, {k: v for k, v in event.after.items() if k != "invoice"})
                for event in BillingEvent.objects.filter(team=team).order_by("pk")
            ],
        }
    return result, numbers


def test_closing_in_sets_writes_what_closing_one_by_one_does(monkeypatch):
    one_by_one = build_world("a")
    end = BillingPeriod.objects.filter(team__in=one_by_one.values(), status="open").order_by("end").first().end
    with monkeypatch.context() as patched:
        patched.setattr(closing, "_close_in_set", lambda period_ids, now: {})
        closed_alone = closing.close_due_periods(end + timedelta(hours=3))
    expected, _ = snapshot(one_by_one)

    in_sets = build_world("b")
    set_sizes = []
    real = closing._close_in_set

    def spy(period_ids, now):
        closed = real(period_ids, now)
        set_sizes.append(len(closed))
        return closed

    monkeypatch.setattr(closing, "_close_in_set", spy)
    closed_together = closing.close_due_periods(end + timedelta(hours=3))
    actual, numbers = snapshot(in_sets)

    assert len(closed_alone) == len(closed_together) == len(LABELS)
    for label in LABELS:
        assert actual[label] == expected[label], label
    assert set_sizes == [len(LABELS) - 1]  # all but the team with a carried invoice waiting
    assert sorted(numbers.values()) == [f"INV-{end.year}-{n:06d}" for n in range(len(LABELS) + 1, 2 * len(LABELS) + 1)]
    # The cases the world was built to reach.
    assert expected["payg 2 (carried)"]["invoice"][0] == "carried"
    assert expected["payg with a carried invoice waiting"]["carried in"] == [30]
    assert expected["payg downgrading to free"]["plan now"] == "free"
    assert expected["garage grant"]["periods"][1][3] == 1000  # the next period has the grant's allowance
    assert expected["free with usage"]["invoice"][:4] == ("paid", 0, 0, 0)


def test_a_period_another_process_is_closing_is_left_to_it():
    team = TeamFactory(name="Locked Co")
    period = lifecycle.current_period(team.pk)
    count_billable_requests(team, 1)
    BillingPeriod.objects.filter(pk=period.pk).update(status="closed")  # closed meanwhile by another run

    assert closing._close_in_set([period.pk], period.end + timedelta(hours=3)) == {}
    assert not Invoice.objects.filter(team=team).exists()
