"""Calendar periods and which are due: every ended period after the last one run,
oldest first, once, however the runs fall; and the rounding of demurrage."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from timebank.policies.models import excess_charge
from timebank.policies.periods import (
    Period,
    due_periods,
    is_boundary,
    label,
    period_end,
)

FIRST_DAYS = {
    Period.DAY: date(2026, 1, 1),
    Period.WEEK: date(2025, 12, 29),  # a Monday
    Period.MONTH: date(2026, 1, 1),
    Period.QUARTER: date(2026, 1, 1),
    Period.YEAR: date(2026, 1, 1),
}


@given(
    period=st.sampled_from(list(Period)),
    run_days=st.lists(st.integers(0, 3 * 366), max_size=60),
    horizon=st.integers(0, 3 * 366),
)
def test_runs_on_any_days_cover_each_ended_period_exactly_once(
    period: Period, run_days: list[int], horizon: int
) -> None:
    """Whatever days the service happens to be up (downtime of any length, runs
    twice a day), the periods run are consecutive, each once, and at the end all
    the periods that ended are run (a long outage over a few passes)."""
    starts_on = FIRST_DAYS[period]
    ran: list[tuple[date, date]] = []
    last_day = max([horizon, *run_days])
    for offset in [*sorted(run_days), horizon, last_day, last_day, last_day]:
        # A pass catches up at most CATCH_UP_PERIODS_MAX periods; the next goes on.
        today = starts_on + timedelta(days=offset)
        last = ran[-1][0] if ran else None
        ran += due_periods(period, starts_on, today, last_run_start=last)
    assert len(set(ran)) == len(ran)
    for (_, end), (start, _) in itertools.pairwise(ran):
        assert end == start
    final = starts_on + timedelta(days=last_day)
    assert not due_periods(period, starts_on, final, last_run_start=ran[-1][0] if ran else None)
    if ran:
        assert ran[0][0] == starts_on
        assert ran[-1][1] <= final


@pytest.mark.parametrize(
    ("period", "start", "end", "name"),
    [
        (Period.DAY, date(2026, 2, 28), date(2026, 3, 1), "2026-02-28"),
        (Period.WEEK, date(2026, 11, 23), date(2026, 11, 30), "2026-W48"),
        (Period.MONTH, date(2026, 12, 1), date(2027, 1, 1), "2026-12"),
        (Period.QUARTER, date(2026, 10, 1), date(2027, 1, 1), "2026-Q4"),
        (Period.YEAR, date(2026, 1, 1), date(2027, 1, 1), "2026"),
    ],
)
def test_period_ends_and_names(period: Period, start: date, end: date, name: str) -> None:
    """Calendar periods in UTC, named as people name them."""
    assert is_boundary(period, start)
    assert period_end(period, start) == end
    assert label(period, start) == name


def test_a_period_starts_only_on_its_boundaries() -> None:
    """Weeks on Mondays, quarters on January, April, July, October firsts."""
    assert not is_boundary(Period.WEEK, date(2026, 11, 24))
    assert not is_boundary(Period.QUARTER, date(2026, 2, 1))
    assert not is_boundary(Period.MONTH, date(2026, 2, 2))


@given(
    balance=st.integers(-(10**12), 10**12),
    threshold=st.integers(-(10**6), 10**9),
    rate_bps=st.integers(1, 10_000),
    available=st.integers(0, 10**12),
)
def test_demurrage_is_rounded_down_and_never_more_than_the_account_can_give(
    balance: int, threshold: int, rate_bps: int, available: int
) -> None:
    """Nothing below the threshold; at most rate_bps of the excess, less than one
    step under it; never more than available."""
    charge = excess_charge(balance, threshold, rate_bps, available)
    assert 0 <= charge <= available
    excess = max(0, balance - threshold)
    assert charge * 10_000 <= excess * rate_bps
    if charge < available:
        assert excess * rate_bps < (charge + 1) * 10_000
