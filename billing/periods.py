"""Monthly billing periods anchored to the day a team was created (DESIGN §2). Pure functions.

Period n runs from the anchor day's midnight UTC, n months on, to the same day a month later.
A day the month lacks (29-31) falls on the month's last day, and the next period goes back to
the anchor day: a team created on 31 January has periods starting 28/29 February, 31 March,
30 April... Computing each start from the anchor (not from the previous start) keeps that.
"""

from calendar import monthrange
from datetime import UTC, datetime, time


def anchor_of(created_at: datetime) -> datetime:
    """Midnight UTC of the day the team was created: the start of its first period."""
    return datetime.combine(created_at.astimezone(UTC).date(), time.min, tzinfo=UTC)


def period_start(anchor: datetime, index: int) -> datetime:
    """The anchor moved `index` months on, its day capped at the month's last (what relativedelta(months=index)
    gives; written out because the billing run calls it for every team it closes, and this is ten times cheaper)."""
    months = anchor.month - 1 + index
    year, month = anchor.year + months // 12, months % 12 + 1
    return anchor.replace(year=year, month=month, day=min(anchor.day, monthrange(year, month)[1]))


def period_index(anchor: datetime, moment: datetime) -> int:
    """Which period (0 = the first) contains `moment`; negative before the anchor."""
    moment = moment.astimezone(UTC)
    index = (moment.year - anchor.year) * 12 + (moment.month - anchor.month)
    # The month difference is at most one off: step to the period whose [start, end) holds moment.
    while period_start(anchor, index) > moment:
        index -= 1
    while period_start(anchor, index + 1) <= moment:
        index += 1
    return index


def period_bounds(anchor: datetime, moment: datetime) -> tuple[datetime, datetime]:
    """`[start, end)` of the period containing `moment`."""
    index = period_index(anchor, moment)
    return period_start(anchor, index), period_start(anchor, index + 1)
