"""An invoice as a PDF, drawn server-side with fpdf2: no database, no request, just the rows given.

Amounts are integer cents formatted by `billing_tags.cents`; unit prices (which may be fractions of a
cent, kept as Decimal) go through `unit_price`, so no float ever enters the money shown. The PDF
uses the core Helvetica font, so text is limited to Latin-1: anything else is replaced by "?".
"""

from collections.abc import Iterable
from decimal import Decimal

from fpdf import FPDF

from billing.forms import last_day
from billing.models import BillingDetails, Invoice, InvoiceLine
from billing.templatetags.billing_tags import cents, unit_cents

PAGE_WIDTH = 180  # A4 less 15 mm margins
COLUMNS = [("Description", 90, "L"), ("Quantity", 25, "R"), ("Unit price", 30, "R"), ("Amount", 35, "R")]


def unit_price(value: Decimal) -> str:
    """A unit price in cents (Decimal, up to 4 places) as dollars: 15 → "$0.15", 0.5 → "$0.005", -250 → "-$2.50"."""
    value = Decimal(value)
    dollars = (abs(value) / 100).normalize()
    whole, _, fraction = f"{dollars:,f}".partition(".")
    return f"{'-' if value < 0 else ''}${whole}.{fraction.ljust(2, '0')}"


def line_unit_price(line: InvoiceLine) -> str:
    """A line's unit price: a request's price in cents, fractions kept ("12¢", "0.5¢"); other lines (the
    minimum's top-up, a credit) in dollars."""
    return unit_cents(line.unit_price_cents) if line.kind == "usage" else unit_price(line.unit_price_cents)


def _latin1(text: str) -> str:
    text = str(text).replace("\u2013", "-").replace("\u2014", "-").replace("\u2022", "*")
    return text.encode("latin-1", "replace").decode("latin-1")


def render_invoice_pdf(
    invoice: Invoice,
    lines: Iterable[InvoiceLine],
    details: BillingDetails | None,
    *,
    issuer: str = "Ignition",
    compress: bool = True,
    payment_instructions: str = "",
) -> bytes:
    """The invoice's PDF. `invoice.period` must be loaded (or loadable); `details` None prints no recipient block.

    `payment_instructions`: for an invoice awaiting a bank transfer, printed with its due date.
    """
    pdf = FPDF(format="A4")
    pdf.set_compression(compress)
    pdf.set_title(_latin1(f"Invoice {invoice.number}"))
    pdf.set_author(_latin1(issuer))
    pdf.set_margins(15, 15, 15)
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()

    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(PAGE_WIDTH / 2, 10, _latin1(issuer))
    pdf.cell(PAGE_WIDTH / 2, 10, "Invoice", align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    period = invoice.period
    facts = [
        ("Invoice number", invoice.number),
        ("Status", invoice.get_status_display()),
        ("Issued", f"{invoice.issued_at:%d %B %Y}"),
        ("Period", f"{period.start:%d %B %Y} - {last_day(period):%d %B %Y} (UTC)"),
    ]
    if invoice.paid_at:
        facts.append(("Paid", f"{invoice.paid_at:%d %B %Y}"))
    if payment_instructions and invoice.due_at:
        facts.append(("Due", f"{invoice.due_at:%d %B %Y}"))
    if invoice.status == invoice.Status.CARRIED:  # below Stripe's minimum charge: collected on a later invoice
        later = f"invoice {invoice.carried_to.number}" if invoice.carried_to else "the next invoice"
        facts.append(("Not charged", f"below the minimum card charge; added to {later}"))
    pdf.ln(2)
    for label, value in facts:
        pdf.set_font("Helvetica", "B", 10)
        pdf.cell(35, 6, _latin1(label))
        pdf.set_font("Helvetica", "", 10)
        pdf.cell(PAGE_WIDTH - 35, 6, _latin1(value), new_x="LMARGIN", new_y="NEXT")

    if details is not None:
        pdf.ln(4)
        pdf.set_font("Helvetica", "B", 10)
        pdf.cell(PAGE_WIDTH, 6, "Bill to", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 10)
        recipient = [details.company_name, *details.address.splitlines()]
        if details.tax_id:
            recipient.append(f"Tax ID: {details.tax_id}")
        if details.billing_email:
            recipient.append(details.billing_email)
        for text in recipient:
            pdf.cell(PAGE_WIDTH, 5, _latin1(text), new_x="LMARGIN", new_y="NEXT")

    pdf.ln(6)
    pdf.set_font("Helvetica", "B", 10)
    for title, width, align in COLUMNS:
        pdf.cell(width, 7, title, border="B", align=align)
    pdf.ln()
    pdf.set_font("Helvetica", "", 10)
    for line in lines:
        values = [line.description, f"{line.quantity:,}", line_unit_price(line), cents(line.amount_cents)]
        for (_, width, align), value in zip(COLUMNS, values, strict=True):
            pdf.cell(width, 7, _latin1(value), align=align)
        pdf.ln()

    pdf.ln(2)
    totals = [("Subtotal", invoice.subtotal_cents)]
    if invoice.credit_cents:
        totals.append(("Credit", -abs(invoice.credit_cents)))
    totals.append((f"Total ({invoice.currency.upper()})", invoice.total_cents))
    label_width = PAGE_WIDTH - COLUMNS[-1][1]
    for index, (label, amount) in enumerate(totals):
        last = index == len(totals) - 1
        pdf.set_font("Helvetica", "B" if last else "", 10)
        pdf.cell(label_width, 7, label, align="R", border="T" if last else 0)
        pdf.cell(COLUMNS[-1][1], 7, cents(amount), align="R", border="T" if last else 0, new_x="LMARGIN", new_y="NEXT")

    if payment_instructions:
        pdf.ln(6)
        pdf.set_font("Helvetica", "B", 10)
        due = f" by {invoice.due_at:%d %B %Y}" if invoice.due_at else ""
        pdf.cell(PAGE_WIDTH, 6, _latin1(f"How to pay{due}"), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 10)
        pdf.multi_cell(PAGE_WIDTH, 5, _latin1(payment_instructions), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
