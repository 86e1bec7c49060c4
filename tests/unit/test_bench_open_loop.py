"""The HTTP bench's open loop (bench/http_bench.py): Poisson arrivals whatever the
answers do, timed from each request's intended start, with the bench's own heap
kept out of the collector's passes while it times."""

from __future__ import annotations

import asyncio
import gc
import random

import pytest

from bench.http_bench import frozen_heap, open_loop_timed


def _tracked(thing: object) -> bool:
    return any(candidate is thing for candidate in gc.get_objects())


def test_the_heap_is_frozen_inside_and_given_back_after_even_on_error() -> None:
    made_before = [object()]
    seen_inside: list[bool] = []

    def timed_part_that_fails() -> None:
        with frozen_heap():
            made_inside = [object()]
            seen_inside.extend(
                [gc.get_freeze_count() > 0, not _tracked(made_before), _tracked(made_inside)]
            )
            raise RuntimeError("the timed part failed")

    assert gc.get_freeze_count() == 0
    with pytest.raises(RuntimeError):
        timed_part_that_fails()
    assert seen_inside == [True, True, True]
    assert gc.get_freeze_count() == 0
    assert _tracked(made_before)


# gc.get_freeze_count() walks the frozen generation (15 ms here, more in a suite's
# worker): the heap is looked at for one request in so many.
FREEZE_CHECKED_EVERY = 40


async def test_requests_start_at_their_arrivals_while_the_heap_is_frozen() -> None:
    frozen_while_timing: list[bool] = []
    started = 0

    async def operation(generator: random.Random) -> int:
        nonlocal started
        if started % FREEZE_CHECKED_EVERY == 0:
            frozen_while_timing.append(gc.get_freeze_count() > 0)
        started += 1
        await asyncio.sleep(0.02)  # answers slower than arrivals: requests overlap
        return 1

    rate_per_s, duration_s = 500.0, 0.4
    timed = await open_loop_timed(operation, rate_per_s, duration_s, seed=7)

    arrivals = random.Random(7)
    expected_starts = []
    at = 0.0
    while at < duration_s:
        expected_starts.append(at)
        at += arrivals.expovariate(rate_per_s)
    assert sorted(start for start, _ in timed) == pytest.approx(expected_starts)
    assert all(latency_ms >= 20 for _, latency_ms in timed)
    assert len(frozen_while_timing) == -(-len(timed) // FREEZE_CHECKED_EVERY)
    assert all(frozen_while_timing)
    assert gc.get_freeze_count() == 0
