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

A period a team spent partly under an Enterprise contract is rated in parts (billing.rating.rate_period):
requests counted outside any contract at the price they were counted at, each contract's requests by
its tiers, with its monthly minimum pro-rated to its share of the period.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from billing import carrying, contracts, lifecycle
from billing.models import BillingEvent, BillingPeriod, Contract, Invoice, InvoiceLine, InvoiceSequence, UsageDaily
from billing.rating import Rating, UsageLine, endpoint_family, rate_period


def close_grace() -> timedelta:
    return timedelta(seconds=settings.BILLING_CLOSE_GRACE_SECONDS)


def due_period_ids(now: datetime) -> list[int]:
    cutoff = now - close_grace()
    return list(
        BillingPeriod.objects.filter(status=BillingPeriod.Status.OPEN, end__lte=cutoff)
        .order_by("end", "id")
        .values_list("pk", flat=True)
    )


def close_due_periods(now: datetime | None = None) -> list[Invoice]:
    """Close every period past its end and grace; the invoices issued now (none for periods already closed)."""
    now = now or timezone.now()
    issued = []
    for period_id in due_period_ids(now):
        invoice = close_period(period_id, now=now)
        if invoice is not None:
            issued.append(invoice)
    return issued


def usage_lines(period: BillingPeriod) -> list[UsageLine]:
    """The period's billable usage outside contracts per endpoint family and unit price, from the rollups."""
    rows = (
        UsageDaily.objects.filter(period=period, billable__gt=0, contract_key=0)
        .values("endpoint", "unit_price_cents")
        .annotate(quantity=Sum("billable"))
    )
    return [UsageLine(endpoint_family(row["endpoint"]), row["quantity"], row["unit_price_cents"]) for row in rows]


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
        total_cents = rating.total_cents + carried_cents
        settled = total_cents == 0
        invoice = Invoice(
            team_id=period.team_id,
            period=period,
            number=_next_number(now.year),
            subtotal_cents=rating.subtotal_cents + carried_cents,
            credit_cents=rating.credit_cents,
            total_cents=total_cents,
            issued_at=now,
            collection=collection,
            due_at=None if settled else due_at,
            status=Invoice.Status.PAID if settled else Invoice.Status.OPEN,
            paid_at=now if settled else None,
        )
        carried_on = carrying.is_below_minimum(invoice)
        if carried_on:  # no card can be charged this little: the next invoice collects it
            invoice.status, invoice.due_at = Invoice.Status.CARRIED, None
        invoice.save()
        InvoiceLine.objects.bulk_create(
            InvoiceLine(
                invoice=invoice,
                position=position,
                kind=line.kind,
                description=line.description,
                quantity=line.quantity,
                unit_price_cents=line.unit_price_cents,
                amount_cents=line.amount_cents,
            )
            for position, line in enumerate([*rating.lines, *carried_in], start=1)
        )
        carrying.mark_carried_to(carried_in, invoice)
        if carried_on:
            carrying.record_carried(invoice, before=Invoice.Status.OPEN, reason="below_minimum_at_close")
        period.status, period.closed_at = BillingPeriod.Status.CLOSED, now
        period.save(update_fields=["status", "closed_at"])
        BillingEvent.objects.create(
            team_id=period.team_id,
            period=period,
            kind=BillingEvent.Kind.PERIOD_CLOSED,
            after={
                "invoice": invoice.number,
                "requests_used": period.requests_used,
                "vehicles_active": period.vehicles_active,
                "total_cents": invoice.total_cents,
            },
        )
        if collection == Contract.PaidBy.INVOICE and not settled:
            contracts.send_invoice_issued(invoice)
    # The next period opens now (applying a scheduled plan change), not at the team's next request.
    lifecycle.current_period(period.team_id, max(now, period.end))
    return invoice


def _next_number(year: int) -> str:
    """The next invoice number of the year, under the sequence row's lock (sequential, no gaps on success)."""
    InvoiceSequence.objects.get_or_create(year=year)
    sequence = InvoiceSequence.objects.select_for_update().get(year=year)
    sequence.last += 1
    sequence.save(update_fields=["last"])
    return f"INV-{year}-{sequence.last:06d}"
