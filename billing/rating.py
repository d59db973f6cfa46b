"""Rating: turn a period's billable usage into invoice lines. Pure functions, no database, no Stripe.

DESIGN §5: rating (tiers, credits, minimums) is our own code with property tests; Stripe only moves
money. Amounts are integer cents; a unit price may have fractions of a cent (contracts), and each
line is rounded to the cent half up, once.

- Per-request pricing (Free, Pay-as-you-go): each usage line keeps the price it was counted at, so
  requests made on Free before an upgrade stay free.
- Contract tiers (Enterprise): *graduated* prices each slice of the total at its tier's price
  ("first 10,000 at 12 cents, next 90,000 at 9 cents, beyond at 6 cents"); *volume* prices every
  request at the price of the tier the total falls in (so a volume total can drop as usage
  crosses a tier boundary, which is what volume pricing means).
- A minimum commit tops the contract's subtotal up to the minimum; credits then reduce the total,
  never below zero.
- A period a team spent partly on a plan and partly under a contract (or under two contracts) is
  split at the switch (`rate_period`): the requests counted before it keep their per-request
  price, the contract's requests are priced by its tiers, and its minimum is pro-rated to the
  share of the period it was in force (`prorated_minimum`).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

ENDPOINT_FAMILIES = {
    "/vehicles/{id}": "Vehicle info",
    "/vehicles/{id}/vin": "Vehicle info",
    "/vehicles/{id}/odometer": "Odometer",
    "/vehicles/{id}/location": "Location",
    "/vehicles/{id}/security": "Security",
    "/vehicles/{id}/fuel": "Energy",
    "/vehicles/{id}/battery": "Energy",
    "/vehicles/{id}/battery/capacity": "Energy",
    "/vehicles/{id}/charge": "Energy",
    "/vehicles/{id}/charge/limit": "Energy",
    "/vehicles/{id}/tires/pressure": "Maintenance",
    "/vehicles/{id}/engine/oil": "Maintenance",
    "/vehicles/{id}/navigation/destination": "Navigation",
}
OTHER_FAMILY = "Other vehicle requests"

GRADUATED, VOLUME = "graduated", "volume"


def endpoint_family(endpoint: str) -> str:
    return ENDPOINT_FAMILIES.get(endpoint, OTHER_FAMILY)


@dataclass(frozen=True)
class UsageLine:
    """Billable requests of one endpoint family counted at one unit price."""

    family: str
    quantity: int
    unit_price_cents: Decimal | int


@dataclass(frozen=True)
class Tier:
    up_to: int | None  # cumulative requests this tier reaches; None = no limit (the last tier)
    unit_price_cents: Decimal | int


@dataclass(frozen=True)
class Contract:
    mode: str  # GRADUATED or VOLUME
    tiers: tuple[Tier, ...]
    minimum_cents: int = 0

    def __post_init__(self):
        if self.mode not in (GRADUATED, VOLUME):
            raise ValueError(f"unknown pricing mode {self.mode!r}")
        if not self.tiers or self.tiers[-1].up_to is not None:
            raise ValueError("the last tier must be unbounded (up_to=None)")
        bounds = [tier.up_to for tier in self.tiers[:-1]]
        if any(b is None or b <= 0 for b in bounds) or bounds != sorted(set(bounds)):
            raise ValueError("tier bounds must be positive and increasing")
        if self.minimum_cents < 0 or any(Decimal(tier.unit_price_cents) < 0 for tier in self.tiers):
            raise ValueError("prices and minimums cannot be negative")


@dataclass(frozen=True)
class ContractUsage:
    """A contract's billable requests in one period, and the minimum it owes for its share of the period."""

    contract: Contract
    quantity: int
    minimum_cents: int = 0  # usually prorated_minimum(contract.minimum_cents, ...), not the contract's own
    label: str = ""  # prefixes its invoice lines (e.g. the contract's name) when a period has several parts


@dataclass(frozen=True)
class InvoiceLine:
    kind: str  # "usage", "minimum", "credit"
    description: str
    quantity: int
    unit_price_cents: Decimal
    amount_cents: int  # negative only for credits
    family: str = ""  # a per-request usage line's endpoint family: the requests behind it can be listed


@dataclass(frozen=True)
class Rating:
    lines: tuple[InvoiceLine, ...] = field(default_factory=tuple)
    subtotal_cents: int = 0  # usage and minimum top-up
    credit_cents: int = 0  # credit applied (never more than the subtotal)
    total_cents: int = 0


def cents(quantity: int, unit_price: Decimal | int) -> int:
    """quantity × unit price, rounded to the cent half up."""
    return int((Decimal(quantity) * Decimal(unit_price)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def rate(usage: Sequence[UsageLine], *, contract: Contract | None = None, credit_cents: int = 0) -> Rating:
    """The invoice lines and totals for a period's usage, all per request or all under one contract."""
    if contract is None:
        return rate_period(usage, credit_cents=credit_cents)
    if any(line.quantity < 0 for line in usage):
        raise ValueError("usage and credits cannot be negative")
    whole = ContractUsage(contract, sum(line.quantity for line in usage), contract.minimum_cents)
    return rate_period((), (whole,), credit_cents=credit_cents)


def rate_period(
    per_request: Sequence[UsageLine], contracts: Sequence[ContractUsage] = (), *, credit_cents: int = 0
) -> Rating:
    """A period split at plan/contract switches: per-request usage, then each contract's tiers and minimum."""
    if credit_cents < 0 or any(line.quantity < 0 for line in per_request):
        raise ValueError("usage and credits cannot be negative")
    if any(part.quantity < 0 or part.minimum_cents < 0 for part in contracts):
        raise ValueError("usage and minimums cannot be negative")
    lines = _per_request(per_request)
    for part in contracts:
        tiered = _tiered(part.quantity, part.contract)
        used = sum(line.amount_cents for line in tiered)
        if used < part.minimum_cents:
            top_up = part.minimum_cents - used
            tiered.append(InvoiceLine("minimum", "Monthly minimum commitment top-up", 1, Decimal(top_up), top_up))
        if part.label:
            tiered = [_prefixed(line, part.label) for line in tiered]
        lines.extend(tiered)
    subtotal = sum(line.amount_cents for line in lines)
    applied = min(credit_cents, subtotal)
    if applied:
        lines.append(InvoiceLine("credit", "Credit", 1, Decimal(-applied), -applied))
    return Rating(lines=tuple(lines), subtotal_cents=subtotal, credit_cents=applied, total_cents=subtotal - applied)


def prorated_minimum(minimum_cents: int, covered: timedelta, period: timedelta) -> int:
    """The share of a monthly minimum owed for `covered` of a `period` (to the cent, half up; never above it)."""
    if period <= timedelta(0) or minimum_cents < 0:
        raise ValueError("the period must be positive and the minimum not negative")
    covered = min(max(covered, timedelta(0)), period)
    share = (
        Decimal(minimum_cents)
        * Decimal(covered // timedelta(microseconds=1))
        / Decimal(period // timedelta(microseconds=1))
    )
    return int(share.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def current_tier(contract: Contract, used: int) -> int:
    """The index of the tier the next request is priced in (graduated) or the total falls in (volume)."""
    position = used + 1 if contract.mode == GRADUATED else max(used, 1)
    return next(i for i, tier in enumerate(contract.tiers) if tier.up_to is None or position <= tier.up_to)


def _prefixed(line: InvoiceLine, label: str) -> InvoiceLine:
    return InvoiceLine(
        line.kind, f"{label}: {line.description}", line.quantity, line.unit_price_cents, line.amount_cents, line.family
    )


def _per_request(usage: Sequence[UsageLine]) -> list[InvoiceLine]:
    merged: dict[tuple[str, Decimal], int] = {}
    for line in usage:
        if line.quantity:
            key = (line.family, Decimal(line.unit_price_cents))
            merged[key] = merged.get(key, 0) + line.quantity
    return [
        InvoiceLine("usage", f"{family} requests", quantity, price, cents(quantity, price), family)
        for (family, price), quantity in sorted(merged.items(), key=lambda item: (item[0][0], item[0][1]))
    ]


def _tiered(total: int, contract: Contract) -> list[InvoiceLine]:
    if contract.mode == VOLUME:
        tier = next(t for t in contract.tiers if t.up_to is None or total <= t.up_to)
        price = Decimal(tier.unit_price_cents)
        return [InvoiceLine("usage", "Requests (volume price)", total, price, cents(total, price))] if total else []
    lines, floor = [], 0
    for tier in contract.tiers:
        ceiling = total if tier.up_to is None else min(total, tier.up_to)
        quantity = max(ceiling - floor, 0)
        if quantity:
            price = Decimal(tier.unit_price_cents)
            upper = "" if tier.up_to is None else f"–{tier.up_to:,}"
            label = f"Requests {floor + 1:,}{upper}" if upper else f"Requests beyond {floor:,}"
            lines.append(InvoiceLine("usage", label, quantity, price, cents(quantity, price)))
        if tier.up_to is not None:
            floor = max(floor, tier.up_to)
        if tier.up_to is None or total <= tier.up_to:
            break
    return lines
