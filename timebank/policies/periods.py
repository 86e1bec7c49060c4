"""Calendar periods in UTC, and which of a schedule's periods are due: pure, so
that the rule "each ended period runs exactly once, whatever the downtime" is
tested without a clock or a database."""

from __future__ import annotations

import enum
from datetime import date, timedelta

# A run catches up at most this many periods in one go (a daily schedule left
# alone for a year catches up over several passes, oldest first).
CATCH_UP_PERIODS_MAX = 400


class Period(enum.StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


MONTHS_PER_PERIOD = {Period.MONTH: 1, Period.QUARTER: 3, Period.YEAR: 12}


def is_boundary(period: Period, day: date) -> bool:
    """Whether a period starts on this day: any day, Mondays, first days of
    months, of quarters, of years."""
    if period is Period.DAY:
        return True
    if period is Period.WEEK:
        return day.weekday() == 0
    months = MONTHS_PER_PERIOD[period]
    return day.day == 1 and (day.month - 1) % months == 0


def period_end(period: Period, start: date) -> date:
    """The first day after the period that starts on `start`."""
    assert is_boundary(period, start), f"{start} does not start a {period.value}"
    if period is Period.DAY:
        return start + timedelta(days=1)
    if period is Period.WEEK:
        return start + timedelta(days=7)
    month_index = start.year * 12 + start.month - 1 + MONTHS_PER_PERIOD[period]
    return date(month_index // 12, month_index % 12 + 1, 1)


def due_periods(
    period: Period,
    starts_on: date,
    today: date,
    *,
    last_run_start: date | None,
    limit: int = CATCH_UP_PERIODS_MAX,
) -> list[tuple[date, date]]:
    """The (start, end) of every period that has ended by `today` and comes after
    the last one run, oldest first: after downtime, every missed period, once."""
    start = starts_on if last_run_start is None else period_end(period, last_run_start)
    due: list[tuple[date, date]] = []
    while len(due) < limit:
        end = period_end(period, start)
        if end > today:
            break
        due.append((start, end))
        start = end
    return due


def label(period: Period, start: date) -> str:
    """How people name the period: 2026-11-26, 2026-W48, 2026-11, 2026-Q4, 2026."""
    if period is Period.DAY:
        return start.isoformat()
    if period is Period.WEEK:
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    if period is Period.MONTH:
        return f"{start.year}-{start.month:02d}"
    if period is Period.QUARTER:
        return f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    return str(start.year)
