"""Why a team's billable requests are refused, in the words every surface uses.

The vehicle API's 430 descriptions (billing.metering raises them), and the Billing tab, the Overview,
the Garage tab, the usage API's `state` and the dashboard's banner (billing.state), all take their
sentences from here, so a refusal reads the same wherever it shows. Pure: a period's fields in,
words out (no queries: the metered hot path uses it).
"""

from dataclasses import dataclass
from datetime import datetime

# The states a refusal names (billing.state uses them as its `kind` too).
SUSPENDED, CLOSED_EARLY, REQUEST_LIMIT, VEHICLE_LIMIT = "suspended", "closed_early", "request_limit", "vehicle_limit"

API_POINTER = "Please log into the Ignition dashboard and visit the Billing tab to learn more."


@dataclass(frozen=True)
class Refusal:
    """A reason billable requests are refused now: the BILLING error code they answer, and what to tell people."""

    kind: str
    code: str  # the 430 BILLING:<code> the vehicle API answers
    headline: str
    detail: str

    @property
    def text(self) -> str:
        return f"{self.headline} {self.detail}"

    @property
    def api_description(self) -> str:
        """The 430 error's description: the dashboard's words, and where to read more."""
        return f"{self.text} {API_POINTER}"


def next_period_starts(end: datetime) -> str:
    """When the period after one ending at `end` starts (a period ends at midnight UTC)."""
    return f"{end:%-d %B %Y}, {end:%H:%M} UTC"


def suspended() -> Refusal:
    return Refusal(
        SUSPENDED,
        "ACCOUNT_SUSPENDED",
        "Your account is suspended: a past-due invoice could not be collected.",
        "Billable requests are refused until it is paid; paying lifts the suspension at once.",
    )


def closed_early(end: datetime) -> Refusal:
    """A period closed before its end (`close_billing_periods --now … --allow-future`): nothing more counts in it.

    BILLING:VEHICLE_REQUEST_LIMIT, because that is what Smartcar's clients read as "no more requests in this
    billing period", which is the case; upgrading does not help (a closed period takes no usage on any plan).
    """
    return Refusal(
        CLOSED_EARLY,
        "VEHICLE_REQUEST_LIMIT",
        "This billing period was closed early: its usage is invoiced and it takes no more.",
        f"Billable requests are refused until the next period starts on {next_period_starts(end)}.",
    )


def request_limit(allowance: int, end: datetime) -> Refusal:
    return Refusal(
        REQUEST_LIMIT,
        "VEHICLE_REQUEST_LIMIT",
        f"You have used all {allowance:,} billable requests of this period.",
        f"Billable requests are refused until the next period starts on {next_period_starts(end)}, "
        "or until your allowance is raised.",
    )


def vehicle_limit(allowance: int, end: datetime) -> Refusal:
    return Refusal(
        VEHICLE_LIMIT,
        "VEHICLE_LIMIT",
        f"Your team has {allowance:,} active vehicles, all this period allows.",
        f"Requests to other vehicles are refused until the next period starts on {next_period_starts(end)}, "
        "or until your allowance is raised; active vehicles keep working.",
    )


def before_counting(*, suspended_account: bool, period_open: bool, end: datetime) -> Refusal | None:
    """What refuses every billable request of a period holding now, whatever its counters, in metering's order:
    a suspension first, then a period closed before its end."""
    if suspended_account:
        return suspended()
    if not period_open:
        return closed_early(end)
    return None
