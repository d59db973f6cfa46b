"""Rating is pure code: examples from the price list and contracts, and Hypothesis properties."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.rating import GRADUATED, VOLUME, Contract, Tier, UsageLine, endpoint_family, rate

# The example contract of the Enterprise issue: first 10,000 at 12 cents, next 90,000 at 9, beyond at 6.
EXAMPLE_TIERS = (Tier(10_000, 12), Tier(100_000, 9), Tier(None, 6))


def test_pay_as_you_go_charges_15_cents_a_request_and_free_requests_stay_free():
    usage = [UsageLine("Odometer", 60, 0), UsageLine("Odometer", 30, 15), UsageLine("Location", 20, 15)]
    rating = rate(usage)
    assert rating.total_cents == 50 * 15
    assert [(line.description, line.quantity, line.amount_cents) for line in rating.lines] == [
        ("Location requests", 20, 300),
        ("Odometer requests", 60, 0),
        ("Odometer requests", 30, 450),
    ]


def test_a_free_period_costs_nothing():
    assert rate([UsageLine("Security", 100, 0)]).total_cents == 0
    assert rate([]).total_cents == 0


def test_graduated_tiers_price_each_slice_at_its_own_price():
    rating = rate([UsageLine("Odometer", 150_000, 0)], contract=Contract(GRADUATED, EXAMPLE_TIERS))
    assert [(line.quantity, line.amount_cents) for line in rating.lines] == [
        (10_000, 120_000),
        (90_000, 810_000),
        (50_000, 300_000),
    ]
    assert rating.total_cents == 1_230_000
    assert [line.description for line in rating.lines] == [
        "Requests 1–10,000",
        "Requests 10,001–100,000",
        "Requests beyond 100,000",
    ]


def test_volume_tiers_price_every_request_at_the_tier_the_total_reaches():
    contract = Contract(VOLUME, EXAMPLE_TIERS)
    assert rate([UsageLine("Odometer", 150_000, 0)], contract=contract).total_cents == 150_000 * 6
    assert rate([UsageLine("Odometer", 10_000, 0)], contract=contract).total_cents == 10_000 * 12
    assert rate([UsageLine("Odometer", 10_001, 0)], contract=contract).total_cents == 10_001 * 9


def test_a_minimum_commit_tops_the_period_up():
    rating = rate([UsageLine("Odometer", 1_000, 0)], contract=Contract(GRADUATED, EXAMPLE_TIERS, minimum_cents=50_000))
    assert rating.total_cents == 50_000
    assert rating.lines[-1].kind == "minimum" and rating.lines[-1].amount_cents == 50_000 - 12_000


def test_fractional_cent_prices_round_half_up_per_line():
    rating = rate([UsageLine("Odometer", 3, 0)], contract=Contract(GRADUATED, (Tier(None, Decimal("0.5")),)))
    assert rating.total_cents == 2  # 1.5 cents rounds up


def test_credits_reduce_the_total_but_never_below_zero():
    assert rate([UsageLine("Odometer", 10, 15)], credit_cents=100).total_cents == 50
    rating = rate([UsageLine("Odometer", 10, 15)], credit_cents=1_000)
    assert (rating.total_cents, rating.credit_cents) == (0, 150)


@pytest.mark.parametrize(
    "tiers",
    [(), (Tier(10, 1),), (Tier(10, 1), Tier(5, 1), Tier(None, 1)), (Tier(None, -1),)],
)
def test_malformed_contracts_are_refused(tiers):
    with pytest.raises(ValueError):
        Contract(GRADUATED, tiers)


def test_endpoint_families():
    assert endpoint_family("/vehicles/{id}/vin") == "Vehicle info"
    assert endpoint_family("/vehicles/{id}/battery/capacity") == "Energy"
    assert endpoint_family("/vehicles/{id}/something-new") == "Other vehicle requests"


# --- properties ------------------------------------------------------------------------------------------------------

prices = st.one_of(st.integers(0, 500), st.decimals(0, 500, places=2))
usage_lines = st.lists(
    st.builds(UsageLine, st.sampled_from(["Odometer", "Location", "Energy"]), st.integers(0, 50_000), prices),
    max_size=8,
)


ANY_MODE = st.sampled_from([GRADUATED, VOLUME])


@st.composite
def contracts(draw, mode=ANY_MODE):
    bounds = sorted(set(draw(st.lists(st.integers(1, 1_000_000), max_size=4))))
    tier_prices = draw(st.lists(prices, min_size=len(bounds) + 1, max_size=len(bounds) + 1))
    tiers = tuple(Tier(bound, price) for bound, price in zip([*bounds, None], tier_prices, strict=True))
    return Contract(draw(mode), tiers, minimum_cents=draw(st.integers(0, 1_000_000)))


@given(usage=usage_lines, contract=st.one_of(st.none(), contracts()), credit=st.integers(0, 10_000_000))
def test_totals_are_whole_cents_that_add_up_and_are_never_negative(usage, contract, credit):
    rating = rate(usage, contract=contract, credit_cents=credit)
    assert all(isinstance(line.amount_cents, int) for line in rating.lines)
    assert isinstance(rating.total_cents, int)
    assert sum(line.amount_cents for line in rating.lines) == rating.total_cents
    assert rating.total_cents >= 0
    assert rating.credit_cents <= credit
    if contract is not None:
        assert rating.subtotal_cents >= contract.minimum_cents


@given(usage=usage_lines, extra=st.integers(0, 50_000), contract=st.one_of(st.none(), contracts(st.just(GRADUATED))))
def test_more_usage_never_costs_less_per_request_or_graduated(usage, extra, contract):
    more = [*usage, UsageLine("Odometer", extra, 15)]
    assert rate(more, contract=contract).total_cents >= rate(usage, contract=contract).total_cents


@given(quantity=st.integers(0, 2_000_000), contract=contracts(st.just(GRADUATED)))
def test_graduated_tiers_cover_every_request_exactly_once(quantity, contract):
    rating = rate([UsageLine("Odometer", quantity, 0)], contract=contract)
    usage = [line for line in rating.lines if line.kind == "usage"]
    assert sum(line.quantity for line in usage) == quantity


@given(quantity=st.integers(0, 2_000_000), contract=contracts(st.just(VOLUME)))
def test_volume_pricing_is_the_reached_tiers_price_times_the_total(quantity, contract):
    tier = next(t for t in contract.tiers if t.up_to is None or quantity <= t.up_to)
    usage = [line for line in rate([UsageLine("x", quantity, 0)], contract=contract).lines if line.kind == "usage"]
    assert sum(line.amount_cents for line in usage) == int(
        (Decimal(quantity) * Decimal(tier.unit_price_cents)).quantize(Decimal(1), rounding="ROUND_HALF_UP")
    )
