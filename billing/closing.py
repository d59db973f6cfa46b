"""Closing billing periods: freeze the usage, rate it, issue exactly one invoice, open the next period.

A period closes once `end + BILLING_CLOSE_GRACE` has passed (the grace lets requests in flight at
the boundary finish). Each period closes in its own transaction under its row lock; a closed
period is skipped, so the beat task and `manage.py close_billing_periods` can run twice or at
the same time without a second invoice (the invoice is also unique per period in the database).
A $0 invoice is issued and marked paid at once, without touching Stripe. A card-paid invoice above $0
but below Stripe's minimum charge is carried forward: its amount is added to the team's next invoice
(billing.carrying), which also takes every amount carried before it. An invoice with something
to pay is charged to the team's card (billing.payments), unless an invoice-paid Enterprise contract
was in force at the end of the period: it is then due `net_days` later and emailed (billing.contracts).

Most periods close in sets (`_close_in_set`): those of teams with no contract, no carried amount waiting and
no other period due are locked together, rated from one grouped query, and invoiced, numbered and closed with
bulk statements in one transaction (on PostgreSQL one array insert per table: dashboard/bulk.py); their next
periods are opened together too (`lifecycle.open_next_periods`). Every other period closes on its own as above.
Both give the same invoices, lines and events (tests/billing/test_closing_in_sets.py); the set only saves round
trips and Python work (docs/performance.md).

A period a team spent partly under an Enterprise contract is rated in parts (billing.rating.rate_period):
requests counted outside any contract at the price they were counted at, each contract's requests by
its tiers, with its monthly minimum pro-rated to its share of the period.
"""

from collections import Counter
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from billing import carrying, contracts, lifecycle
from billing.models import BillingEvent, BillingPeriod, Contract, Invoice, InvoiceLine, InvoiceSequence, UsageDaily
from billing.rating import Rating, UsageLine, endpoint_family, rate_period
from dashboard.bulk import insert_rows


def close_grace() -> timedelta:
    return timedelta(seconds=settings.BILLING_CLOSE_GRACE_SECONDS)


def due_period_ids(now: datetime) -> list[int]:
    cutoff = now - close_grace()
    return list(
        BillingPeriod.objects.filter(status=BillingPeriod.Status.OPEN, end__lte=cutoff)
        .order_by("end", "id")
        .values_list("pk", flat=True)
    )


SET_SIZE = 500  # periods closed in one transaction by _close_in_set


def close_due_periods(now: datetime | None = None) -> list[Invoice]:
    """Close every period past its end and grace; the invoices issued now (none for periods already closed)."""
    now = now or timezone.now()
    issued = []
    due = due_period_ids(now)
    for first in range(0, len(due), SET_SIZE):
        chunk = due[first : first + SET_SIZE]
        in_set = _close_in_set(chunk, now)
        for period_id in chunk:
            invoice = in_set.get(period_id) or close_period(period_id, now=now)
            if invoice is not None:
                issued.append(invoice)
    return issued


def usage_lines(period: BillingPeriod) -> list[UsageLine]:
    """The period's billable usage outside contracts per endpoint family and unit price, from the rollups."""
    return _usage_lines_of([period.pk]).get(period.pk, [])


def rate_usage(period: BillingPeriod, *, until: datetime | None = None) -> Rating:
    """The period's invoice lines: at close, or (`until`, an open period) what it comes to so far."""
    return rate_period(usage_lines(period), contracts.contract_usage(period, until=until))


def contract_period_owed_by_card(team_id: int) -> tuple[BillingPeriod, int] | None:
    """An open period whose invoice will charge a card-paid contract's usage to the card, and what it comes to."""
    for period in BillingPeriod.objects.filter(team_id=team_id, status=BillingPeriod.Status.OPEN):
        last = contracts.last_in_force_during(period)
        if last is None or last.paid_by != Contract.PaidBy.CARD:
            continue
        owed = rate_usage(period).total_cents
        if owed > 0:
            return period, owed
    return None


def close_period(period_id: int, *, now: datetime) -> Invoice | None:
    """Close one period and issue its invoice; None if it was closed already (or isn't due)."""
    with transaction.atomic():
        period = BillingPeriod.objects.select_for_update(of=("self",)).select_related("plan").get(pk=period_id)
        if period.status != BillingPeriod.Status.OPEN or period.end + close_grace() > now:
            return None
        rating = rate_usage(period)
        carried_in = carrying.take_carried(period.team_id)  # amounts earlier invoices were too small to charge
        carried_cents = sum(line.amount_cents for line in carried_in)
        collection, due_at = contracts.collection_terms(period, now)
        invoice = _invoice(period, rating, carried_cents, collection, due_at, _next_number(now.year), now)
        invoice.save()
        InvoiceLine.objects.bulk_create(_lines(invoice, [*rating.lines, *carried_in]))
        carrying.mark_carried_to(carried_in, invoice)
        if invoice.status == Invoice.Status.CARRIED:
            carrying.record_carried(invoice, before=Invoice.Status.OPEN, reason=CARRIED_AT_CLOSE)
        period.status, period.closed_at = BillingPeriod.Status.CLOSED, now
        period.save(update_fields=["status", "closed_at"])
        _closed_event(period, invoice).save()
        if collection == Contract.PaidBy.INVOICE and invoice.status == Invoice.Status.OPEN:
            contracts.send_invoice_issued(invoice)
    # The next period opens now (applying a scheduled plan change), not at the team's next request.
    lifecycle.current_period(period.team_id, max(now, period.end))
    return invoice


CARRIED_AT_CLOSE = "below_minimum_at_close"


def _invoice(period, rating: Rating, carried_cents: int, collection, due_at, number: str, now: datetime) -> Invoice:
    """The period's invoice (not saved): paid at once at $0, carried forward below the card minimum, else open."""
    total_cents = rating.total_cents + carried_cents
    settled = total_cents == 0
    invoice = Invoice(
        team_id=period.team_id,
        period=period,
        number=number,
        subtotal_cents=rating.subtotal_cents + carried_cents,
        credit_cents=rating.credit_cents,
        total_cents=total_cents,
        issued_at=now,
        collection=collection,
        due_at=None if settled else due_at,
        status=Invoice.Status.PAID if settled else Invoice.Status.OPEN,
        paid_at=now if settled else None,
    )
    if carrying.is_below_minimum(invoice):  # no card can be charged this little: the next invoice collects it
        invoice.status, invoice.due_at = Invoice.Status.CARRIED, None
    return invoice


def _lines(invoice: Invoice, lines: list) -> list[InvoiceLine]:
    return [
        InvoiceLine(
            invoice_id=invoice.pk,  # the id, not the instance: cheaper to build, and a set builds thousands
            position=position,
            kind=line.kind,
            description=line.description,
            family=line.family,
            quantity=line.quantity,
            unit_price_cents=line.unit_price_cents,
            amount_cents=line.amount_cents,
        )
        for position, line in enumerate(lines, start=1)
    ]


def _closed_event(period: BillingPeriod, invoice: Invoice) -> BillingEvent:
    return BillingEvent(
        team_id=period.team_id,
        period_id=period.pk,
        kind=BillingEvent.Kind.PERIOD_CLOSED,
        after={
            "invoice": invoice.number,
            "requests_used": period.requests_used,
            "vehicles_active": period.vehicles_active,
            "total_cents": invoice.total_cents,
        },
    )


def _close_in_set(period_ids: list[int], now: datetime) -> dict[int, Invoice]:
    """Close together those of `period_ids` whose close is plain (see the module docstring); their invoices.

    The rest are left open for close_period, as are periods another process holds (SKIP LOCKED) or closed.
    """
    cutoff = now - close_grace()
    with transaction.atomic():
        periods = list(
            BillingPeriod.objects.select_for_update(of=("self",), skip_locked=True)
            .filter(pk__in=period_ids, status=BillingPeriod.Status.OPEN, end__lte=cutoff)
            .order_by("end", "pk")
        )
        periods = _plain(periods)
        if not periods:
            return {}
        usage = _usage_lines_of([period.pk for period in periods])
        numbers = _next_numbers(now.year, len(periods))
        invoices, lines, events = [], [], []
        for period, number in zip(periods, numbers, strict=True):
            rating = rate_period(usage.get(period.pk, []), [])
            invoice = _invoice(period, rating, 0, Contract.PaidBy.CARD, None, number, now)
            invoices.append(invoice)
            lines.append(rating.lines)
            if invoice.status == Invoice.Status.CARRIED:  # audited in the order close_period writes them
                events.append(carrying.carried_event(invoice, before=Invoice.Status.OPEN, reason=CARRIED_AT_CLOSE))
            events.append(_closed_event(period, invoice))
        insert_rows(Invoice, invoices)
        insert_rows(
            InvoiceLine,
            [line for invoice, rated in zip(invoices, lines, strict=True) for line in _lines(invoice, rated)],
        )
        BillingPeriod.objects.filter(pk__in=[period.pk for period in periods]).update(
            status=BillingPeriod.Status.CLOSED, closed_at=now
        )
        insert_rows(BillingEvent, events)
    lifecycle.open_next_periods(periods, now)
    return {invoice.period_id: invoice for invoice in invoices}


def _plain(periods: list[BillingPeriod]) -> list[BillingPeriod]:
    """The periods whose close needs nothing but rating their own usage: no contract (the team has none), no
    carried amount waiting, no other period of the team due with it, no usage counted under a contract."""
    team_ids = [period.team_id for period in periods]
    repeated = {team for team, count in Counter(team_ids).items() if count > 1}
    with_contracts = set(Contract.objects.filter(team_id__in=team_ids).values_list("team_id", flat=True))
    carrying_over = set(
        Invoice.objects.filter(
            team_id__in=team_ids, status=Invoice.Status.CARRIED, carried_to__isnull=True
        ).values_list("team_id", flat=True)
    )
    excluded = repeated | with_contracts | carrying_over
    return [period for period in periods if period.team_id not in excluded and period.contract_id is None]


def _usage_lines_of(period_ids: list[int]) -> dict[int, list[UsageLine]]:
    """Each period's billable usage per endpoint family and unit price: one grouped query for them all."""
    rows = (
        UsageDaily.objects.filter(period_id__in=period_ids, billable__gt=0, contract_key=0)
        .values("period_id", "endpoint", "unit_price_cents")
        .annotate(quantity=Sum("billable"))
        .order_by("period_id", "endpoint", "unit_price_cents")
    )
    usage = {}
    for row in rows:
        line = UsageLine(endpoint_family(row["endpoint"]), row["quantity"], row["unit_price_cents"])
        usage.setdefault(row["period_id"], []).append(line)
    return usage


def _next_number(year: int) -> str:
    """The next invoice number of the year, under the sequence row's lock (sequential, no gaps on success)."""
    return _next_numbers(year, 1)[0]


def _next_numbers(year: int, count: int) -> list[str]:
    """The next `count` invoice numbers of the year, in order, under the sequence row's lock (one UPDATE)."""
    InvoiceSequence.objects.get_or_create(year=year)
    sequence = InvoiceSequence.objects.select_for_update().get(year=year)
    first = sequence.last + 1
    sequence.last += count
    sequence.save(update_fields=["last"])
    return [f"INV-{year}-{number:06d}" for number in range(first, sequence.last + 1)]
