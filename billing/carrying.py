"""Amounts below Stripe's minimum charge are carried forward to the team's next invoice, as Stripe Billing does.

Stripe refuses to charge a card less than $0.50 (a 400 `amount_too_small`, not a decline), and Pay-as-you-go
costs 15 cents a request, so a period with one to three billable requests comes to an amount no card can pay.
Such a card-paid invoice is not charged: it is marked `carried` ("Carried forward") when it is issued, and the
next invoice issued to the team adds its amount as a line of its own ("Carried forward from INV-…") and is
recorded as where it went (`Invoice.carried_to`). If that invoice is still below the minimum it is carried in
turn, with what it holds, until the total reaches the minimum and is charged. Carrying is final for the carried
invoice: its money is owed on, and paid with, the later one. Invoices paid by bank transfer have no minimum.

The carried invoices a new invoice takes are locked first, so two periods of one team closing at once can never
both take the same amount (the second finds it taken and skips it).
"""

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from billing.models import BillingEvent, Invoice
from billing.templatetags.billing_tags import cents

CARRIED_LINE = "carried"


@dataclass(frozen=True)
class CarriedLine:
    """An invoice line for an amount carried forward from an earlier invoice (same shape as rating's lines)."""

    source: Invoice
    description: str
    amount_cents: int
    kind: str = CARRIED_LINE
    quantity: int = 1
    family: str = ""  # no requests behind it in this period

    @property
    def unit_price_cents(self) -> Decimal:
        return Decimal(self.amount_cents)


def minimum_charge_cents() -> int:
    return settings.BILLING_MINIMUM_CHARGE_CENTS


def is_below_minimum(invoice: Invoice) -> bool:
    """Whether Stripe would refuse to charge the invoice's total to a card (above zero, below the minimum)."""
    return invoice.collection == Invoice.Collection.CARD and 0 < invoice.total_cents < minimum_charge_cents()


def take_carried(team_id: int) -> list[CarriedLine]:
    """The team's carried-forward amounts not yet on a later invoice, locked, as lines for the invoice being issued.

    Call inside the transaction that issues that invoice, then `mark_carried_to`."""
    waiting = (
        Invoice.objects.select_for_update()
        .filter(team_id=team_id, status=Invoice.Status.CARRIED, carried_to__isnull=True)
        .order_by("issued_at", "id")
    )
    minimum = cents(minimum_charge_cents())
    return [
        CarriedLine(
            source=invoice,
            description=f"Carried forward from invoice {invoice.number} (below the {minimum} minimum card charge)",
            amount_cents=invoice.total_cents,
        )
        for invoice in waiting
    ]


def mark_carried_to(lines: list[CarriedLine], invoice: Invoice) -> None:
    """Record that the carried amounts of `lines` are now owed on `invoice`."""
    if lines:
        Invoice.objects.filter(pk__in=[line.source.pk for line in lines]).update(carried_to=invoice)


def carry_forward(invoice: Invoice, *, reason: str, refused_by_stripe: bool = False) -> bool:
    """Carry an open or past-due card-paid invoice below the minimum forward (the caller holds its row lock).

    `refused_by_stripe`: Stripe answered `amount_too_small`, whatever our setting says. True if it was carried now;
    False if it is not below the minimum or is settled already."""
    if invoice.status not in (Invoice.Status.OPEN, Invoice.Status.PAST_DUE):
        return False
    if refused_by_stripe:
        too_small = invoice.collection == Invoice.Collection.CARD and invoice.total_cents > 0
    else:
        too_small = is_below_minimum(invoice)
    if not too_small:
        return False
    before = invoice.status
    invoice.status, invoice.due_at = Invoice.Status.CARRIED, None
    invoice.save(update_fields=["status", "due_at"])
    record_carried(invoice, before=before, reason=reason)
    return True


def record_carried(invoice: Invoice, *, before: str, reason: str) -> None:
    carried_event(invoice, before=before, reason=reason).save()


def carried_event(invoice: Invoice, *, before: str, reason: str) -> BillingEvent:
    """The audit event of an invoice carried forward (not saved: closing saves many at once)."""
    return BillingEvent(
        team_id=invoice.team_id,
        period_id=invoice.period_id,
        kind=BillingEvent.Kind.CARRIED,
        before={"status": before},
        after={
            "invoice": invoice.number,
            "status": invoice.status,
            "amount_cents": invoice.total_cents,
            "minimum_cents": minimum_charge_cents(),
            "reason": reason,
        },
    )
