"""A period's billing state: what it allows now and why, with its numbers, decided once for every surface.

The Billing tab, the Overview's usage card, the Garage tab, the usage API's `state` and the dashboard's
banner all read a BillingState, and the vehicle API's 430s take the same sentences (billing.refusals), so
no page says "12 days left, 1,960 requests remain" while the API refuses the team. Pure: billing.selectors
loads the period, the team's subscription (with its plan) and the active grant.

The kinds, in the order metering applies them to the period holding now:
  suspended      the account is suspended: 430 BILLING:ACCOUNT_SUSPENDED
  closed_early   the period was closed before its end (time travel): 430 BILLING:VEHICLE_REQUEST_LIMIT until the
                 next period starts; no days left, no projection
  request_limit  its request allowance is used up: 430 BILLING:VEHICLE_REQUEST_LIMIT
  open           billable requests are served
and, for another period than the one holding now, `ended` or `upcoming`.
"""

from dataclasses import dataclass
from datetime import datetime

from billing import entitlements, refusals
from billing.forms import last_day
from billing.models import BillingPeriod, Grant, Subscription

OPEN, ENDED, UPCOMING = "open", "ended", "upcoming"
SUSPENDED, CLOSED_EARLY, REQUEST_LIMIT = refusals.SUSPENDED, refusals.CLOSED_EARLY, refusals.REQUEST_LIMIT
PLAN, GRANT, CONTRACT = "plan", "grant", "contract"  # whose allowances and price a period has


@dataclass(frozen=True)
class Meter:
    """A counter against its allowance (None: unlimited), as every meter and sentence shows it."""

    used: int
    allowance: int | None

    @property
    def left(self) -> int | None:
        return None if self.allowance is None else max(self.allowance - self.used, 0)

    @property
    def percent(self) -> int | None:
        return min(100, self.used * 100 // self.allowance) if self.allowance else None


@dataclass(frozen=True)
class BillingState:
    period: BillingPeriod
    as_of: datetime
    kind: str
    terms: str  # PLAN, GRANT or CONTRACT
    requests: Meter
    vehicles: Meter
    headline: str  # why billable requests are refused now ("" while they are served)
    detail: str  # what the period allows now: until when they are refused, or what is left
    refusal: refusals.Refusal | None = None  # why billable requests are refused now; None: they are served
    vehicles_full: refusals.Refusal | None = None  # requests to more vehicles are refused (active ones work)
    grant: Grant | None = None  # the team's active grant, if any
    grant_terms: dict | None = None  # what it gives this team a period (entitlements.terms_for: never below the plan)

    @property
    def message(self) -> str:
        """The state in words, as every surface says it."""
        return f"{self.headline} {self.detail}" if self.headline else self.detail

    @property
    def is_current(self) -> bool:
        return self.period.start <= self.as_of < self.period.end

    @property
    def is_live(self) -> bool:
        """The period holds now and is open: it has days left and a projection (a closed one has neither)."""
        return self.is_current and self.period.status == BillingPeriod.Status.OPEN

    @property
    def days_left(self) -> int | None:
        return (self.period.end.date() - self.as_of.date()).days if self.is_live else None

    @property
    def picker_note(self) -> str:
        """How the Billing tab's period picker marks the period holding now."""
        return "closed early" if self.is_current and not self.is_live else "current"

    def as_json(self) -> dict:
        """The usage API's `state`: the kind, the words, and the errors a billable request would get now."""
        return {
            "kind": self.kind,
            "terms": self.terms,
            "message": self.message,
            "days_left": self.days_left,
            "error": _error_json(self.refusal),
            "new_vehicle_error": _error_json(self.vehicles_full),
        }


def billing_state(
    period: BillingPeriod, *, now: datetime, subscription: Subscription | None = None, grant: Grant | None = None
) -> BillingState:
    """The state of `period` at `now`; `subscription` and `grant` matter for the period holding now only."""
    requests = Meter(period.requests_used, period.request_allowance)
    vehicles = Meter(period.vehicles_active, period.vehicle_allowance)
    if not period.start <= now < period.end:
        kind = ENDED if period.end <= now else UPCOMING
        terms = CONTRACT if period.contract_id else PLAN
        return BillingState(period, now, kind, terms, requests, vehicles, "", _other_period_message(period, kind))
    is_open = period.status == BillingPeriod.Status.OPEN
    refusal = refusals.before_counting(
        suspended_account=subscription is not None and subscription.status == Subscription.Status.SUSPENDED,
        period_open=is_open,
        end=period.end,
    )
    if refusal is None and requests.left == 0:
        refusal = refusals.request_limit(requests.allowance, period.end)
    vehicles_full = refusals.vehicle_limit(vehicles.allowance, period.end) if is_open and vehicles.left == 0 else None
    # A grant's terms are given to the open periods (billing.grants): a period closed early keeps the plan's.
    terms = CONTRACT if period.contract_id else GRANT if grant is not None and is_open else PLAN
    grant_terms = entitlements.terms_for(subscription.plan, grant) if grant and subscription else None
    return BillingState(
        period=period,
        as_of=now,
        kind=refusal.kind if refusal else OPEN,
        terms=terms,
        requests=requests,
        vehicles=vehicles,
        headline=refusal.headline if refusal else "",
        detail=_detail(period, refusal, requests, terms, grant),
        refusal=refusal,
        vehicles_full=vehicles_full,
        grant=grant,
        grant_terms=grant_terms,
    )


def _detail(period, refusal, requests: Meter, terms: str, grant: Grant | None) -> str:
    if refusal is not None:
        if refusal.kind == CLOSED_EARLY and grant is not None and grant.ends_at > period.end:
            return f"{refusal.detail} Your {grant.get_program_display()} grant applies from then."
        return refusal.detail
    under = {
        GRANT: f" under your {grant.get_program_display()} grant" if grant else "",
        CONTRACT: " under your contract",
    }
    free = "free " if terms == GRANT else ""
    if requests.allowance is None:
        return f"Unlimited {free}billable requests this period{under.get(terms, '')}."
    return (
        f"{requests.left:,} of {requests.allowance:,} {free}billable requests left this period{under.get(terms, '')}."
    )


def _other_period_message(period: BillingPeriod, kind: str) -> str:
    if kind == UPCOMING:
        return f"This period starts on {refusals.next_period_starts(period.start)}."
    closed = "is closed" if period.status == BillingPeriod.Status.CLOSED else "closes shortly"
    return f"This period ended on {last_day(period):%-d %B %Y} and {closed}."


def _error_json(refusal: refusals.Refusal | None) -> dict | None:
    if refusal is None:
        return None
    return {"type": "BILLING", "code": refusal.code, "description": refusal.api_description}
