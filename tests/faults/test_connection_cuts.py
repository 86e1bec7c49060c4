"""Connections cut between client and service after the request went out."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults.harness import AnswerCuttingProxy, assert_ledger_checks, soak_share_s, staged
from tests.faults.records import Fault, Figures, Load, Sent, open_connection, verify

pytestmark = pytest.mark.slow

SHORT_REQUESTS = 150


def cutting_plan(number: int, attempt: int, batch: bool) -> Fault:
    """Of every three requests, one loses its answer in the proxy and one is sent
    by a client that hangs up at once; every ninth loses its first retry's answer
    too."""
    if attempt == 0:
        return (Fault.CUT_ANSWER, Fault.HANG_UP, Fault.NONE)[number % 3]
    if attempt == 1 and number % 9 == 0:
        return Fault.CUT_ANSWER
    return Fault.NONE


def _tally_cuts(sent: Sent, cut_statuses: dict[str, int], tally: Counter[str]) -> None:
    """Tallies the request's cut answers (by the status cut) and hang-ups, by what
    its acknowledgement said after them."""
    found = sent.acknowledgement()
    then = f"then {found[1].status}" if found is not None else "never acknowledged"
    for attempt in sent.attempts:
        if attempt.fault is Fault.CUT_ANSWER:
            tally[f"answer {cut_statuses.get(attempt.token, 'unseen')} cut, {then}"] += 1
        elif attempt.fault is Fault.HANG_UP:
            tally[f"hung up, {then}"] += 1


def _cut_after_write_then_found(sent: Sent, cut_statuses: dict[str, int]) -> bool:
    """Whether an answer the proxy cut was a write (201/200) and the request's
    acknowledgement, after it, anything but 200 (found): a second write."""
    found = sent.acknowledgement()
    cut_writes = [
        a
        for a in sent.attempts
        if a.fault is Fault.CUT_ANSWER and cut_statuses.get(a.token) in (200, 201)
    ]
    return bool(cut_writes) and found is not None and found[1].status != 200


async def test_cut_connections_with_retries_by_id_write_exactly_once(
    fault_database: str, tmp_path: Path, report_figures: Callable[[Figures], None]
) -> None:
    """Single transfers and atomic batches under load, a third of them through a
    proxy that drops the service's answer (the write done, the client never told),
    a third sent by a client that closes its socket right after sending: each
    retry by id is acknowledged, 200 (found) whenever an answer had been cut after
    the write, and the ledger holds every transaction exactly once, with the
    balances the transfers sent make; `timebank check` passes."""
    loop = asyncio.get_running_loop()
    async with staged(fault_database, tmp_path) as stage:
        service = stage.service
        proxy = AnswerCuttingProxy(service.port)
        await proxy.start()
        try:
            async with Load(
                stage.community,
                proxy.url,
                generation=lambda: service.generation,
                seed=3,
                fault_plan=cutting_plan,
                hang_up_port=service.port,
            ) as load:
                load.start(singles=4, batches=2)
                deadline = loop.time() + soak_share_s()
                await load.more_acknowledged(SHORT_REQUESTS)
                while loop.time() < deadline:
                    await load.more_acknowledged(SHORT_REQUESTS)
                await load.stop()
                connection = await open_connection(fault_database)
                try:
                    figures = await verify(load, connection, Figures("connections cut", 0))
                finally:
                    await connection.close()
                unexpected = load.unexpected
        finally:
            await proxy.close()
        tally: Counter[str] = Counter()
        for sent in load.sent:
            _tally_cuts(sent, proxy.cut, tally)
            if _cut_after_write_then_found(sent, proxy.cut):
                figures.duplicated += 1
                figures.problem(f"request {sent.number}: written, answer cut, not found then")
        figures.faults = tally.total()
        figures.notes.append(", ".join(f"{key}: {n}" for key, n in sorted(tally.items())))
        assert await service.stop() == 0, service.log_tail()
    await assert_ledger_checks(service.environment, stage.community.slug)
    report_figures(figures)
    assert unexpected == []
    assert figures.faults > 0
    assert figures.written_unacknowledged > 0, "no answer was cut after a write"
    figures.assert_nothing_lost_or_doubled()
