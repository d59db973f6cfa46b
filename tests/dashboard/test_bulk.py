"""dashboard.bulk.insert_rows writes exactly what bulk_create writes, and gives each instance its own key.

On PostgreSQL it is one array insert per table (the billing run's); on SQLite it is bulk_create itself. Either way
the rows read back through the ORM must equal those bulk_create wrote from equal instances.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from billing import lifecycle
from billing.models import BillingEvent, BillingPeriod, Invoice, InvoiceLine, Plan
from dashboard.bulk import insert_rows
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db

START = datetime(2026, 10, 1, tzinfo=UTC)


def _fields(obj, skip=("id",)) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields if f.attname not in skip}


def _events(team, period):
    """Events whose JSON holds what JSON can: nesting, unicode, numbers, null, an empty object."""
    afters = [
        {"invoice": "INV-2026-000001", "total_cents": 450, "nested": {"list": [1, 2.5, None, True]}},
        {"note": 'Überweisung — 15 ¢ « quoted "text" »', "empty": {}},
        {},
    ]
    return [
        BillingEvent(team=team, period=period, kind=BillingEvent.Kind.PERIOD_CLOSED, before={"n": 1}, after=after)
        for after in afters
    ]


def test_rows_read_back_as_bulk_create_writes_them():
    team = TeamFactory()
    period = lifecycle.current_period(team.pk)
    inserted = insert_rows(BillingEvent, _events(team, period))
    created = BillingEvent.objects.bulk_create(_events(team, period))

    assert len({event.pk for event in inserted}) == 3 and all(event.pk for event in inserted)
    for mine, theirs in zip(inserted, created, strict=True):
        stored, reference = BillingEvent.objects.get(pk=mine.pk), BillingEvent.objects.get(pk=theirs.pk)
        assert _fields(stored, skip=("id", "created_at")) == _fields(reference, skip=("id", "created_at"))
        assert stored.after == mine.after  # each key holds its own row, not a neighbour's
        assert abs(stored.created_at - reference.created_at) < timedelta(minutes=1)  # auto_now_add stamped
        assert not mine._state.adding


def test_invoices_and_lines_with_uuids_decimals_nulls_and_choices():
    team = TeamFactory()
    payg = Plan.objects.get(code="payg")
    periods = insert_rows(
        BillingPeriod,
        [
            BillingPeriod(
                team=team, plan=payg, start=START + timedelta(days=31 * n), end=START + timedelta(days=31 * (n + 1))
            )
            for n in range(2)
        ],
    )
    invoices = insert_rows(
        Invoice,
        [
            Invoice(team=team, period=periods[0], number="INV-2026-900001", subtotal_cents=45, total_cents=45,
                    issued_at=START, status=Invoice.Status.CARRIED),
            Invoice(team=team, period=periods[1], number="INV-2026-900002", subtotal_cents=0, total_cents=0,
                    issued_at=START, status=Invoice.Status.PAID, paid_at=START),
        ],
    )  # fmt: skip
    lines = insert_rows(
        InvoiceLine,
        [
            InvoiceLine(invoice=invoices[0], position=1, kind="usage", description="Odometer requests",
                        quantity=3, unit_price_cents=Decimal("15.0000"), amount_cents=45),
            InvoiceLine(invoice=invoices[0], position=2, kind="usage", description="Location requests",
                        quantity=7, unit_price_cents=Decimal("0.1250"), amount_cents=1),
        ],
    )  # fmt: skip

    for invoice in invoices:
        stored = Invoice.objects.get(pk=invoice.pk)
        assert _fields(stored) == _fields(invoice)  # public_id (a UUID default), nulls, choices, datetimes
    assert [line.unit_price_cents for line in InvoiceLine.objects.filter(invoice=invoices[0]).order_by("position")] == [
        Decimal("15.0000"),
        Decimal("0.1250"),
    ]
    assert [_fields(InvoiceLine.objects.get(pk=line.pk)) for line in lines] == [_fields(line) for line in lines]
    assert list(periods[0].invoice.lines.order_by("position").values_list("description", flat=True)) == [
        "Odometer requests",
        "Location requests",
    ]


def test_a_unique_violation_raises_integrity_error_and_writes_nothing():
    """lifecycle.open_next_periods relies on this: a period a request opened meanwhile makes the insert fail."""
    team = TeamFactory()
    period = lifecycle.current_period(team.pk)
    clash = BillingPeriod(team=team, plan=period.plan, start=period.start, end=period.end)
    fresh = BillingPeriod(team=team, plan=period.plan, start=period.end, end=period.end + timedelta(days=30))
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_rows(BillingPeriod, [fresh, clash])
    assert list(BillingPeriod.objects.filter(team=team)) == [period]


def test_nothing_to_insert_sends_nothing(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert insert_rows(BillingEvent, []) == []
