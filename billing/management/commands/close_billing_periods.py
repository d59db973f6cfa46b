from datetime import UTC, datetime, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from billing.closing import close_due_periods

FUTURE_MARGIN = timedelta(minutes=1)


class Command(BaseCommand):
    help = "Close every billing period past its end and grace, and issue its invoice. Safe to run again."

    def add_arguments(self, parser):
        parser.add_argument("--now", help="Act as if it were this ISO-8601 moment (UTC if no offset), e.g. for tests.")
        parser.add_argument(
            "--allow-future",
            action="store_true",
            help="Allow a --now later than the real time (tests, demos): a period closed before it really ends "
            "takes no more usage, so its team's billable requests are refused until then.",
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
            self.stdout.write(
                f"{invoice.number}  {invoice.team}  {invoice.total_cents / 100:.2f} USD  {invoice.status}"
            )
        self.stdout.write(self.style.SUCCESS(f"Closed {len(invoices)} period(s)."))
