"""kill -9 of the service in the middle of single transfers and atomic batches."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults.harness import assert_ledger_checks, soak_share_s, staged
from tests.faults.records import (
    BATCH_PATH,
    SINGLE_PATH,
    Figures,
    Load,
    Snapshot,
    open_connection,
    settle_and_snapshot,
    verify,
)

pytestmark = pytest.mark.slow

SHORT_CRASHES = 2
ACKNOWLEDGED_BETWEEN_CRASHES = 40
# How long after a request body went out the service dies: within its write.
KILL_DELAY_MAX_S = 0.004


async def test_kill_9_mid_write_loses_nothing_acknowledged_and_doubles_nothing(
    fault_database: str, tmp_path: Path, report_figures: Callable[[Figures], None]
) -> None:
    """SIGKILL of the service just after a single transfer's or an atomic batch's
    body went out, under load, then a restart: every transaction acknowledged
    before the crash is in the ledger, exactly once; no atomic batch is there in
    part; the first answer after the restart to a request cut by the crash is 200
    when the ledger held it at the crash and 201 when not; every acknowledged
    request sent again answers 200 with its original body; balances are the sum of
    the transfers sent; `timebank check` passes after it all."""
    loop = asyncio.get_running_loop()
    generator = random.Random(7)
    snapshots: list[Snapshot] = []
    async with staged(fault_database, tmp_path) as stage:
        service = stage.service
        connection = await open_connection(fault_database)
        try:
            async with Load(
                stage.community, service.url, generation=lambda: service.generation, seed=1
            ) as load:
                load.start(singles=4, batches=2)
                deadline = loop.time() + soak_share_s()
                while len(snapshots) < SHORT_CRASHES or loop.time() < deadline:
                    await load.more_acknowledged(ACKNOWLEDGED_BETWEEN_CRASHES)
                    path = BATCH_PATH if len(snapshots) % 2 == 0 else SINGLE_PATH
                    await load.kill_while_sending(
                        service, path, generator.uniform(0, KILL_DELAY_MAX_S)
                    )
                    snapshots.append(
                        await settle_and_snapshot(
                            connection, stage.community.id, service.generation
                        )
                    )
                    await service.start()
                await load.more_acknowledged(ACKNOWLEDGED_BETWEEN_CRASHES, "after the restart")
                await load.stop()
                figures = await verify(
                    load, connection, Figures("service kill -9", len(snapshots)), snapshots
                )
                unexpected = load.unexpected
        finally:
            await connection.close()
        assert await service.stop() == 0, service.log_tail()
    await assert_ledger_checks(service.environment, stage.community.slug)
    report_figures(figures)
    assert unexpected == []
    figures.assert_nothing_lost_or_doubled()
