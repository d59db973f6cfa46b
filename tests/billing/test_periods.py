"""Billing periods: monthly, anchored to the team's creation day, contiguous, clamped at month ends."""

from datetime import UTC, datetime, timedelta

from dateutil.relativedelta import relativedelta
from hypothesis import given
from hypothesis import strategies as st

from billing.periods import anchor_of, period_bounds, period_start

moments = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC))


def test_a_team_created_on_the_31st_bills_on_the_last_day_of_shorter_months():
    anchor = anchor_of(datetime(2026, 1, 31, 15, 30, tzinfo=UTC))
    starts = []
    moment = anchor
    for _ in range(4):
        start, end = period_bounds(anchor, moment)
        starts.append(start.date().isoformat())
        moment = end
    assert starts == ["2026-01-31", "2026-02-28", "2026-03-31", "2026-04-30"]


def test_a_period_starts_at_midnight_utc_of_the_creation_day():
    anchor = anchor_of(datetime(2026, 5, 14, 23, 59, tzinfo=UTC))
    assert period_bounds(anchor, datetime(2026, 6, 2, tzinfo=UTC)) == (
        datetime(2026, 5, 14, tzinfo=UTC),
        datetime(2026, 6, 14, tzinfo=UTC),
    )
    assert period_bounds(anchor, datetime(2026, 6, 14, tzinfo=UTC))[0] == datetime(2026, 6, 14, tzinfo=UTC)


@given(created=moments, moment=moments)
def test_the_period_holding_a_moment_holds_it_and_lasts_about_a_month(created, moment):
    anchor = anchor_of(created)
    start, end = period_bounds(anchor, moment)
    assert start <= moment < end
    assert timedelta(days=28) <= end - start <= timedelta(days=31)
    assert start.day == min(anchor.day, start.day) and (start.day == anchor.day or start.day >= 28)
    assert period_bounds(anchor, end)[0] == end  # contiguous: the next period starts where this one ends
    assert period_bounds(anchor, end - timedelta(microseconds=1)) == (start, end)


@given(moments, st.integers(min_value=-60, max_value=240))
def test_period_start_moves_by_calendar_months_as_relativedelta_does(created, index):
    """period_start writes out relativedelta(months=index) (the billing run calls it per team): the same moment,
    the day capped at the month's last, for every anchor day including 29-31 and for negative indexes."""
    anchor = anchor_of(created)
    assert period_start(anchor, index) == anchor + relativedelta(months=index)
