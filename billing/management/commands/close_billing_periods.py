from datetime import UTC, datetime, timedelta

import stripe
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from billing.closing import close_due_periods
from billing.models import Invoice
from billing.payments import charge_invoice
from billing.templatetags.billing_tags import cents

FUTURE_MARGIN = timedelta(minutes=1)


class Command(BaseCommand):
    help = (
        "Close every billing period past its end and grace, issue its invoice and charge it to the team's card. "
        "Safe to run again: nothing is closed, invoiced or charged twice."
    )

    def add_arguments(self, parser):
        parser.add_argument("--now", help="Act as if it were this ISO-8601 moment (UTC if no offset), e.g. for tests.")
        parser.add_argument(
            "--allow-future",
            action="store_true",
            help="Allow a --now later than the real time (tests, demos): a period closed before it really ends "
            "takes no more usage, so its team's billable requests are refused until then.",
        )
        parser.add_argument(
            "--no-charge",
            action="store_true",
            help="Only close and invoice; the charge_due_invoices task charges the invoices within minutes.",
        )

    def handle(self, *args, **options):
        now = timezone.now()
        if options["now"]:
            try:
                now = datetime.fromisoformat(options["now"])
            except ValueError as exc:
                raise CommandError(f"--now must be an ISO-8601 date and time, not {options['now']!r}") from exc
            if timezone.is_naive(now):
                now = now.replace(tzinfo=UTC)
        if now > timezone.now() + FUTURE_MARGIN and not options["allow_future"]:
            raise CommandError(f"--now {now.isoformat()} is in the future; pass --allow-future if that is meant.")
        invoices = close_due_periods(now)
        for invoice in invoices:
            note = ""
            if invoice.collection == Invoice.Collection.INVOICE and invoice.status == Invoice.Status.OPEN:
                note = f"  (invoice terms: due {invoice.due_at:%Y-%m-%d})"
            elif invoice.status == Invoice.Status.OPEN and not options["no_charge"]:
                try:
                    charge_invoice(invoice.pk)  # the same exactly-once service as the Celery task
                except stripe.StripeError as error:  # the attempt is kept; the nightly reconciliation resumes it
                    note = f"  (charge not finished: {error.user_message or error})"
                invoice.refresh_from_db()
            self.stdout.write(
                f"{invoice.number}  {invoice.team}  {cents(invoice.total_cents)}  {invoice.get_status_display()}{note}"
            )
        self.stdout.write(self.style.SUCCESS(f"Closed {len(invoices)} period(s)."))
