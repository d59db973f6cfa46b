"""Contract rating (graduated/volume tiers, minimums, split periods, pro-rating): worked examples and properties.

The properties compare `billing.rating` against an independent reference computed here (slices of the tiers,
rounding with `Fraction`), so a wrong slice, price or rounding in the module fails them.
"""

from datetime import timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.rating import (
    GRADUATED,
    VOLUME,
    Contract,
    ContractUsage,
    InvoiceLine,
    Rating,
    Tier,
    UsageLine,
    current_tier,
    prorated_minimum,
    rate,
    rate_period,
)

# The issue's contract: first 10,000 at 12 cents, next 90,000 at 9 cents, beyond at 6 cents.
ISSUE_TIERS = (Tier(10_000, 12), Tier(100_000, 9), Tier(None, 6))
GRADUATED_CONTRACT = Contract(GRADUATED, ISSUE_TIERS)
VOLUME_CONTRACT = Contract(VOLUME, ISSUE_TIERS)
DAY = timedelta(days=1)


def round_half_up(value) -> int:
    """Reference rounding, independent of the module: nearest integer, halves away from zero (values are >= 0)."""
    exact = Fraction(value)
    floor = exact.numerator // exact.denominator
    return floor + 1 if exact - floor >= Fraction(1, 2) else floor


def rows(rating: Rating) -> list[tuple]:
    return [
        (line.kind, line.description, line.quantity, line.unit_price_cents, line.amount_cents) for line in rating.lines
    ]


def usage_lines(rating: Rating) -> list[InvoiceLine]:
    return [line for line in rating.lines if line.kind == "usage"]


def contract_only(contract: Contract, quantity: int, minimum_cents: int = 0, label: str = "") -> Rating:
    return rate_period((), (ContractUsage(contract, quantity, minimum_cents, label),))


# --- worked examples: graduated -------------------------------------------------------------------------------------

GRADUATED_EXAMPLES = [
    (0, []),
    (1, [("Requests 1–10,000", 1, 12, 12)]),
    (10_000, [("Requests 1–10,000", 10_000, 12, 120_000)]),
    (10_001, [("Requests 1–10,000", 10_000, 12, 120_000), ("Requests 10,001–100,000", 1, 9, 9)]),
    (100_000, [("Requests 1–10,000", 10_000, 12, 120_000), ("Requests 10,001–100,000", 90_000, 9, 810_000)]),
    (
        100_001,
        [
            ("Requests 1–10,000", 10_000, 12, 120_000),
            ("Requests 10,001–100,000", 90_000, 9, 810_000),
            ("Requests beyond 100,000", 1, 6, 6),
        ],
    ),
    (
        250_000,
        [
            ("Requests 1–10,000", 10_000, 12, 120_000),
            ("Requests 10,001–100,000", 90_000, 9, 810_000),
            ("Requests beyond 100,000", 150_000, 6, 900_000),
        ],
    ),
]


@pytest.mark.parametrize(("quantity", "expected"), GRADUATED_EXAMPLES)
def test_graduated_examples_from_the_issue(quantity, expected):
    rating = contract_only(GRADUATED_CONTRACT, quantity)
    assert [(line.description, line.quantity, line.unit_price_cents, line.amount_cents) for line in rating.lines] == [
        (description, qty, Decimal(price), amount) for description, qty, price, amount in expected
    ]
    assert all(line.kind == "usage" for line in rating.lines)
    total = sum(amount for *_, amount in expected)
    assert (rating.subtotal_cents, rating.credit_cents, rating.total_cents) == (total, 0, total)


def test_graduated_totals_of_the_issue():
    totals = {q: contract_only(GRADUATED_CONTRACT, q).total_cents for q, _ in GRADUATED_EXAMPLES}
    assert totals == {
        0: 0,
        1: 12,
        10_000: 120_000,
        10_001: 120_009,
        100_000: 930_000,
        100_001: 930_006,
        250_000: 1_830_000,
    }


# --- worked examples: volume ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quantity", "price", "total"),
    [
        (0, None, 0),
        (1, 12, 12),
        (10_000, 12, 120_000),
        (10_001, 9, 90_009),  # crossing into the second tier lowers the total: that is volume pricing
        (100_000, 9, 900_000),
        (100_001, 6, 600_006),
        (250_000, 6, 1_500_000),
    ],
)
def test_volume_examples_from_the_issue(quantity, price, total):
    rating = contract_only(VOLUME_CONTRACT, quantity)
    if price is None:
        assert rating.lines == ()
    else:
        assert rows(rating) == [("usage", "Requests (volume price)", quantity, Decimal(price), total)]
    assert rating.total_cents == total


# --- worked examples: split periods, several contracts, minimums ----------------------------------------------------


def test_a_period_split_between_free_pay_as_you_go_and_a_contract():
    rating = rate_period(
        [UsageLine("Odometer", 60, 0), UsageLine("Odometer", 40, 15)],
        (ContractUsage(GRADUATED_CONTRACT, 150),),
    )
    assert rows(rating) == [
        ("usage", "Odometer requests", 60, Decimal(0), 0),
        ("usage", "Odometer requests", 40, Decimal(15), 600),
        ("usage", "Requests 1–10,000", 150, Decimal(12), 1_800),
    ]
    assert (rating.subtotal_cents, rating.credit_cents, rating.total_cents) == (2_400, 0, 2_400)


def test_two_contracts_in_one_period_are_rated_separately_with_their_labels():
    second = Contract(VOLUME, (Tier(1_000, 10), Tier(None, Decimal("7.5"))))
    rating = rate_period(
        [UsageLine("Location", 10, 15)],
        (
            ContractUsage(GRADUATED_CONTRACT, 10_050, label="Acme 2024"),
            ContractUsage(second, 2_003, minimum_cents=20_000, label="Acme 2025"),
        ),
    )
    assert rows(rating) == [
        ("usage", "Location requests", 10, Decimal(15), 150),
        ("usage", "Acme 2024: Requests 1–10,000", 10_000, Decimal(12), 120_000),
        ("usage", "Acme 2024: Requests 10,001–100,000", 50, Decimal(9), 450),
        # the second contract is priced from its own first request, not after the first contract's 10,050
        ("usage", "Acme 2025: Requests (volume price)", 2_003, Decimal("7.5"), 15_023),  # 15,022.5 rounds up
        ("minimum", "Acme 2025: Monthly minimum commitment top-up", 1, Decimal(4_977), 4_977),
    ]
    assert rating.total_cents == 150 + 120_450 + 20_000


def test_a_minimum_commit_is_topped_up_to_the_minimum():
    rating = contract_only(GRADUATED_CONTRACT, 1_000, minimum_cents=50_000)  # $500
    assert rows(rating) == [
        ("usage", "Requests 1–10,000", 1_000, Decimal(12), 12_000),
        ("minimum", "Monthly minimum commitment top-up", 1, Decimal(38_000), 38_000),
    ]
    assert (rating.subtotal_cents, rating.total_cents) == (50_000, 50_000)


def test_a_minimum_already_exceeded_adds_no_top_up():
    rating = contract_only(GRADUATED_CONTRACT, 10_001, minimum_cents=50_000)
    assert [line.kind for line in rating.lines] == ["usage", "usage"]
    assert rating.total_cents == 120_009


def test_a_minimum_exactly_reached_adds_no_top_up():
    rating = contract_only(GRADUATED_CONTRACT, 1_000, minimum_cents=12_000)
    assert [line.kind for line in rating.lines] == ["usage"]
    assert rating.total_cents == 12_000


def test_a_contract_part_uses_its_own_prorated_minimum_not_the_contracts():
    contract = Contract(GRADUATED, ISSUE_TIERS, minimum_cents=50_000)
    rating = rate_period((), (ContractUsage(contract, 1_000, minimum_cents=25_000),))
    assert rating.total_cents == 25_000


def test_credit_is_applied_after_the_minimum_and_shown_as_a_line():
    rating = rate_period((), (ContractUsage(GRADUATED_CONTRACT, 1_000, 50_000),), credit_cents=7_000)
    assert rows(rating)[-1] == ("credit", "Credit", 1, Decimal(-7_000), -7_000)
    assert (rating.subtotal_cents, rating.credit_cents, rating.total_cents) == (50_000, 7_000, 43_000)


# --- worked examples: pro-rated minimum -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minimum", "covered", "period", "expected"),
    [
        (50_000, 15 * DAY, 30 * DAY, 25_000),
        (50_000, 10 * DAY, 30 * DAY, 16_667),  # 16,666.67
        (50_000, 20 * DAY, 30 * DAY, 33_333),  # 33,333.33
        (50_001, 15 * DAY, 30 * DAY, 25_001),  # 25,000.5 rounds half up, not to even
        (1, 15 * DAY, 30 * DAY, 1),  # 0.5
        (50_000, 30 * DAY, 30 * DAY, 50_000),
        (50_000, 45 * DAY, 30 * DAY, 50_000),  # covered longer than the period is capped
        (50_000, timedelta(0), 30 * DAY, 0),
        (50_000, -3 * DAY, 30 * DAY, 0),
        (0, 10 * DAY, 30 * DAY, 0),
        (50_000, timedelta(hours=12), 30 * DAY, 833),  # 833.33: sub-day precision counts
    ],
)
def test_prorated_minimum_examples(minimum, covered, period, expected):
    assert prorated_minimum(minimum, covered, period) == expected


@pytest.mark.parametrize(("minimum", "period"), [(50_000, timedelta(0)), (50_000, -DAY), (-1, 30 * DAY)])
def test_prorated_minimum_refuses_an_empty_period_or_negative_minimum(minimum, period):
    with pytest.raises(ValueError):
        prorated_minimum(minimum, DAY, period)


# --- worked examples: current tier ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("used", "tier"), [(0, 0), (1, 0), (9_999, 0), (10_000, 1), (99_999, 1), (100_000, 2), (1_000_000, 2)]
)
def test_current_tier_graduated_is_the_tier_of_the_next_request(used, tier):
    assert current_tier(GRADUATED_CONTRACT, used) == tier


@pytest.mark.parametrize(("used", "tier"), [(0, 0), (1, 0), (10_000, 0), (10_001, 1), (100_000, 1), (100_001, 2)])
def test_current_tier_volume_is_the_tier_the_total_falls_in(used, tier):
    assert current_tier(VOLUME_CONTRACT, used) == tier


# --- properties -----------------------------------------------------------------------------------------------------

PROPERTY_SETTINGS = settings(max_examples=60, deadline=None)

tier_prices = st.one_of(
    st.integers(0, 500),
    st.decimals(0, 500, places=4, allow_nan=False, allow_infinity=False),
    st.sampled_from([Decimal("0.5"), Decimal("2.5"), Decimal("12.125")]),  # make exact halves common
)
quantities = st.integers(0, 2_000_000)
minimums = st.integers(0, 5_000_000)


@st.composite
def tier_structures(draw):
    bounds = sorted(draw(st.sets(st.integers(1, 1_000_000), max_size=5)))
    prices = draw(st.lists(tier_prices, min_size=len(bounds) + 1, max_size=len(bounds) + 1))
    return tuple(Tier(bound, price) for bound, price in zip([*bounds, None], prices, strict=True))


def contracts(mode):
    return st.builds(Contract, st.just(mode) if isinstance(mode, str) else mode, tier_structures())


any_contract = contracts(st.sampled_from([GRADUATED, VOLUME]))


def reference_slices(tiers, quantity):
    """(quantity, price) of each non-empty graduated slice, computed from the tier bounds alone."""
    slices, lower = [], 0
    for tier in tiers:
        upper = quantity if tier.up_to is None else min(quantity, tier.up_to)
        if upper > lower:
            slices.append((upper - lower, Decimal(tier.unit_price_cents)))
        lower = tier.up_to if tier.up_to is not None else lower
    return slices


def reference_tier(tiers, quantity):
    """The tier whose range (previous bound, bound] contains the total; the first one for 0."""
    for index, tier in enumerate(tiers):
        if tier.up_to is None or quantity <= tier.up_to:
            return index
    raise AssertionError("the last tier is unbounded")


def reference_usage(contract, quantity):
    if contract.mode == GRADUATED:
        return sum(round_half_up(Fraction(q) * Fraction(p)) for q, p in reference_slices(contract.tiers, quantity))
    price = contract.tiers[reference_tier(contract.tiers, quantity)].unit_price_cents
    return round_half_up(Fraction(quantity) * Fraction(Decimal(price)))


@PROPERTY_SETTINGS
@given(contract=contracts(GRADUATED), quantity=quantities)
def test_graduated_lines_are_the_slices_of_the_total_each_rounded_once(contract, quantity):
    lines = usage_lines(contract_only(contract, quantity))
    assert sum(line.quantity for line in lines) == quantity
    assert [(line.quantity, line.unit_price_cents) for line in lines] == reference_slices(contract.tiers, quantity)
    for line in lines:
        assert isinstance(line.amount_cents, int)
        assert line.amount_cents == round_half_up(Fraction(line.quantity) * Fraction(line.unit_price_cents))


@PROPERTY_SETTINGS
@given(contract=contracts(GRADUATED), a=quantities, b=quantities, minimum=st.integers(0, 1_000_000))
def test_graduated_total_never_decreases_with_more_requests(contract, a, b, minimum):
    low, high = sorted((a, b))
    assert contract_only(contract, low, minimum).total_cents <= contract_only(contract, high, minimum).total_cents
    assert contract_only(contract, low).total_cents <= contract_only(contract, low + 1).total_cents


@PROPERTY_SETTINGS
@given(contract=any_contract, quantity=quantities, minimum=minimums)
def test_the_minimum_tops_the_usage_up_and_never_more(contract, quantity, minimum):
    rating = contract_only(contract, quantity, minimum)
    usage = reference_usage(contract, quantity)
    assert rating.total_cents >= minimum
    assert rating.total_cents == rating.subtotal_cents == max(minimum, usage)
    top_ups = [line for line in rating.lines if line.kind == "minimum"]
    if usage < minimum:
        assert [(line.quantity, line.amount_cents) for line in top_ups] == [(1, minimum - usage)]
    else:
        assert top_ups == []


@PROPERTY_SETTINGS
@given(contract=contracts(VOLUME), quantity=quantities)
def test_volume_total_is_the_total_times_the_price_of_the_tier_it_falls_in(contract, quantity):
    rating = contract_only(contract, quantity)
    price = Decimal(contract.tiers[reference_tier(contract.tiers, quantity)].unit_price_cents)
    assert rating.total_cents == round_half_up(Fraction(quantity) * Fraction(price))
    if quantity:
        [line] = rating.lines
        assert (line.quantity, line.unit_price_cents) == (quantity, price)
    else:
        assert rating.lines == ()


@PROPERTY_SETTINGS
@given(contract=any_contract, used=quantities)
def test_current_tier_prices_the_next_graduated_request_or_the_volume_total(contract, used):
    tier = current_tier(contract, used)
    if contract.mode == GRADUATED:
        # the request after `used` falls in the last slice of used + 1 requests
        last = usage_lines(contract_only(contract, used + 1))[-1]
        assert tier == reference_tier(contract.tiers, used + 1)
        assert last.unit_price_cents == Decimal(contract.tiers[tier].unit_price_cents)
    else:
        assert tier == reference_tier(contract.tiers, used)


per_request_lines = st.lists(
    st.builds(
        UsageLine,
        st.sampled_from(["Odometer", "Location", "Energy"]),
        st.integers(0, 50_000),
        st.sampled_from([0, 15, Decimal("0.5"), Decimal("12.3456")]),
    ),
    max_size=6,
)
contract_parts = st.lists(
    st.builds(ContractUsage, any_contract, quantities, st.integers(0, 1_000_000), st.sampled_from(["", "A", "B"])),
    max_size=3,
)


@PROPERTY_SETTINGS
@given(per_request=per_request_lines, parts=contract_parts)
def test_rating_a_period_in_parts_is_rating_each_part_alone(per_request, parts):
    whole = rate_period(per_request, parts)
    alone = [rate_period(per_request), *(rate_period((), (part,)) for part in parts)]
    assert whole.lines == tuple(line for rating in alone for line in rating.lines)
    assert whole.total_cents == sum(rating.total_cents for rating in alone)
    for part, rating in zip(parts, alone[1:], strict=True):
        assert rating.total_cents == max(part.minimum_cents, reference_usage(part.contract, part.quantity))
        if part.label:
            assert all(line.description.startswith(f"{part.label}: ") for line in rating.lines)


@PROPERTY_SETTINGS
@given(per_request=per_request_lines, parts=contract_parts, credit=st.integers(0, 50_000_000))
def test_credit_never_exceeds_the_subtotal_or_makes_the_total_negative(per_request, parts, credit):
    rating = rate_period(per_request, parts, credit_cents=credit)
    uncredited = rate_period(per_request, parts)
    assert rating.subtotal_cents == uncredited.total_cents
    assert rating.credit_cents == min(credit, rating.subtotal_cents)
    assert 0 <= rating.credit_cents <= rating.subtotal_cents
    assert rating.total_cents == rating.subtotal_cents - rating.credit_cents >= 0
    assert sum(line.amount_cents for line in rating.lines) == rating.total_cents
    credits = [line for line in rating.lines if line.kind == "credit"]
    assert [line.amount_cents for line in credits] == ([-rating.credit_cents] if rating.credit_cents else [])


durations = st.timedeltas(min_value=timedelta(days=-5), max_value=timedelta(days=40))
periods = st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=31))


@PROPERTY_SETTINGS
@given(minimum=minimums, a=durations, b=durations, period=periods)
def test_prorated_minimum_is_a_rounded_share_bounded_by_the_minimum_and_monotonic(minimum, a, b, period):
    low, high = sorted((a, b))
    share_low, share_high = prorated_minimum(minimum, low, period), prorated_minimum(minimum, high, period)
    assert 0 <= share_low <= share_high <= minimum
    covered = min(max(low, timedelta(0)), period)
    micro = timedelta(microseconds=1)
    assert share_low == round_half_up(Fraction(minimum) * Fraction(covered // micro, period // micro))
    assert prorated_minimum(minimum, period, period) == minimum
    assert prorated_minimum(minimum, period + abs(b), period) == minimum
    assert prorated_minimum(minimum, -abs(a), period) == 0


@PROPERTY_SETTINGS
@given(per_request=per_request_lines, parts=contract_parts, credit=st.integers(0, 5_000_000))
def test_rating_is_pure(per_request, parts, credit):
    snapshot = (list(per_request), list(parts))
    first = rate_period(per_request, parts, credit_cents=credit)
    rate_period(list(reversed(per_request)), list(reversed(parts)), credit_cents=credit // 2 + 1)  # unrelated call
    again = rate_period(tuple(per_request), tuple(parts), credit_cents=credit)
    assert first == again
    assert (list(per_request), list(parts)) == snapshot


@PROPERTY_SETTINGS
@given(contract=any_contract, minimum=minimums, split=st.lists(st.integers(0, 500_000), max_size=4))
def test_rate_with_a_contract_is_one_contract_part_for_the_summed_usage(contract, minimum, split):
    contract = Contract(contract.mode, contract.tiers, minimum_cents=minimum)
    usage = [UsageLine("Odometer", quantity, 15) for quantity in split]
    assert rate(usage, contract=contract) == contract_only(contract, sum(split), minimum)
