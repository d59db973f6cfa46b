"""The Billing tab's daily usage chart as geometry: pure functions, no ORM, no templates.

The template draws an inline SVG from a `DailyChart`: one slot per day of the period (so the
chart shows how far into the period we are), a bar per day elapsed stacking billable under
non-billable requests, a y axis rounded up to a "nice" maximum, and a few day labels.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 8, 12, 28  # margins around the plot, in SVG units
BAR_GAP = 0.2  # share of a day's slot left empty between bars


@dataclass(frozen=True)
class Bar:
    day: date
    billable: int
    non_billable: int
    x: float
    width: float
    billable_y: float
    billable_height: float
    non_billable_y: float
    non_billable_height: float

    @property
    def total(self) -> int:
        return self.billable + self.non_billable

    @property
    def title(self) -> str:
        return f"{self.day:%-d %b}: {self.billable:,} billable, {self.non_billable:,} non-billable"


@dataclass(frozen=True)
class Tick:
    y: float
    value: int


@dataclass(frozen=True)
class DayLabel:
    x: float
    text: str


@dataclass(frozen=True)
class DailyChart:
    width: int
    height: int
    plot_left: int
    plot_right: int
    plot_top: int
    plot_bottom: int
    bars: list[Bar]
    ticks: list[Tick]
    labels: list[DayLabel]
    scale_max: int  # the value at the top of the y axis
    busiest: Bar | None  # the day with the most requests (None when there are none)
    total_billable: int
    total_non_billable: int

    @property
    def summary(self) -> str:
        """What the chart says, in one sentence, for screen readers and the SVG's <desc>."""
        if not self.bars:
            return "No days in this period yet."
        first, last = self.bars[0].day, self.bars[-1].day
        text = (
            f"Daily API requests from {first:%-d %B} to {last:%-d %B %Y}: "
            f"{self.total_billable:,} billable and {self.total_non_billable:,} non-billable in all."
        )
        if self.busiest is not None:
            text += f" Busiest day: {self.busiest.day:%-d %B}, with {self.busiest.total:,} requests."
        return text


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50... that is at least `value` (at least 1)."""
    if value <= 1:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude  # pragma: no cover - the loop always returns


def daily_chart(days: Sequence[tuple[date, int, int]], *, slots: int | None = None) -> DailyChart:
    """Geometry for `days` = (day, billable, non_billable) in order, in a chart of `slots` days (default: len)."""
    slots = max(slots or len(days), len(days), 1)
    plot_left, plot_right, plot_top, plot_bottom = LEFT, WIDTH - RIGHT, TOP, HEIGHT - BOTTOM
    plot_height = plot_bottom - plot_top
    slot_width = (plot_right - plot_left) / slots
    scale_max = nice_ceiling(max((b + n for _, b, n in days), default=0))

    def height_of(value: int) -> float:
        return round(value * plot_height / scale_max, 2)

    bars = []
    for index, (day, billable, non_billable) in enumerate(days):
        billable_height, non_billable_height = height_of(billable), height_of(non_billable)
        billable_y = round(plot_bottom - billable_height, 2)
        bars.append(
            Bar(
                day=day,
                billable=billable,
                non_billable=non_billable,
                x=round(plot_left + index * slot_width + slot_width * BAR_GAP / 2, 2),
                width=round(slot_width * (1 - BAR_GAP), 2),
                billable_y=billable_y,
                billable_height=billable_height,
                non_billable_y=round(billable_y - non_billable_height, 2),
                non_billable_height=non_billable_height,
            )
        )
    values = [0, scale_max // 2, scale_max] if scale_max % 2 == 0 else [0, scale_max]  # no odd half-ticks
    ticks = [Tick(y=round(plot_bottom - height_of(v), 2), value=v) for v in values]
    busiest = max(bars, key=lambda bar: bar.total, default=None)
    return DailyChart(
        width=WIDTH,
        height=HEIGHT,
        plot_left=plot_left,
        plot_right=plot_right,
        plot_top=plot_top,
        plot_bottom=plot_bottom,
        bars=bars,
        ticks=ticks,
        labels=_day_labels(bars),
        scale_max=scale_max,
        busiest=busiest if busiest is not None and busiest.total else None,
        total_billable=sum(bar.billable for bar in bars),
        total_non_billable=sum(bar.non_billable for bar in bars),
    )


def _day_labels(bars: list[Bar]) -> list[DayLabel]:
    """The first day, then one a week, and the last bar (unless it would crowd the previous label)."""
    indexes, last = list(range(0, len(bars), 7)), len(bars) - 1
    if bars and last not in indexes:
        if last - indexes[-1] >= 3:
            indexes.append(last)
        elif indexes[-1] != 0:
            indexes[-1] = last  # the last day replaces the weekly label it would crowd
    return [DayLabel(x=round(bars[i].x + bars[i].width / 2, 2), text=f"{bars[i].day:%-d %b}") for i in indexes]
