"""PostgreSQL stopped in immediate mode under load, then started again."""

from __future__ import annotations

import asyncio
import random
import secrets
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from tests.faults.harness import (
    ControlledPostgres,
    Service,
    assert_ledger_checks,
    eventually,
    soak_share_s,
    staged,
)
from tests.faults.records import Figures, Load, Sent, open_connection, verify
from timebank.database import with_database_name

pytestmark = pytest.mark.slow

SHORT_OUTAGES = 1
ACKNOWLEDGED_BETWEEN_OUTAGES = 40


@pytest.fixture
async def controlled_database() -> AsyncIterator[tuple[ControlledPostgres, str]]:
    """An embedded PostgreSQL of this test's own (never the machine's) and a fresh
    database in it. Its files live outside pytest's base temporary directory, which
    any pytest session starting meanwhile makes private again (the server runs as
    another user when we are root)."""
    with tempfile.TemporaryDirectory(prefix="timebank-faults-") as directory:
        postgres = ControlledPostgres(Path(directory))
        try:
            server_uri = await postgres.open()
            name = f"tb_faults_{secrets.token_hex(6)}"
            connection = await asyncpg.connect(server_uri)
            try:
                await connection.execute(f'CREATE DATABASE "{name}"')
            finally:
                await connection.close()
            yield postgres, with_database_name(server_uri, name)
        finally:
            await postgres.close()


async def _status_is(
    service: Service, session: aiohttp.ClientSession, path: str, status: int
) -> bool:
    return await service.status_of(session, path) == status


async def test_database_crash_is_a_retryable_503_and_the_service_recovers_by_itself(
    controlled_database: tuple[ControlledPostgres, str],
    tmp_path: Path,
    report_figures: Callable[[Figures], None],
) -> None:
    """With PostgreSQL stopped in immediate mode under load, the service stays
    alive (/health/live 200) but not ready (/health/ready 503), and refuses a
    transfer and an atomic batch with 503 database_unavailable and a Retry-After
    (their retries, later, write them: 201); once PostgreSQL is started again it is
    ready and writes again, by itself, in the same process. Every request
    acknowledged before, during or after the outage is in the ledger exactly once;
    a retry by id never doubles one; the balances are the sum of the transfers
    sent; `timebank check` passes."""
    postgres, database_uri = controlled_database
    loop = asyncio.get_running_loop()
    generator = random.Random(11)
    outages = 0
    refused: list[Sent] = []
    async with staged(database_uri, tmp_path) as stage:
        service = stage.service
        pid = service.pid
        async with (
            Load(stage.community, service.url, generation=lambda: outages, seed=2) as load,
            aiohttp.ClientSession() as probe,
        ):
            load.start(singles=4, batches=2)
            deadline = loop.time() + soak_share_s()
            while outages < SHORT_OUTAGES or loop.time() < deadline:
                await load.more_acknowledged(ACKNOWLEDGED_BETWEEN_OUTAGES)
                await postgres.crash()
                outages += 1
                await eventually(
                    lambda: _status_is(service, probe, "/health/ready", 503),
                    "/health/ready answers 503 while the database is down",
                )
                assert await service.status_of(probe, "/health/live") == 200
                for sent in (load.single(generator), load.batch(generator, 10)):
                    attempt = await load.attempt(sent)
                    assert attempt.unavailable, attempt.describe()
                    refused.append(sent)
                await postgres.start()
                await eventually(
                    lambda: _status_is(service, probe, "/health/ready", 200),
                    "/health/ready answers 200 once the database is back",
                )
                await load.more_acknowledged(ACKNOWLEDGED_BETWEEN_OUTAGES, "after the outage")
                assert (service.running, service.pid) == (True, pid), "the service restarted"
            for sent in refused:
                # Refused while the database was unreachable: written only now.
                assert await load.deliver(sent), load.unexpected
                assert sent.attempts[-1].status == 201, sent.attempts[-1].describe()
            await load.stop()
            connection = await open_connection(database_uri)
            try:
                figures = await verify(load, connection, Figures("database crash", outages))
            finally:
                await connection.close()
            unexpected = load.unexpected
        assert await service.stop() == 0, service.log_tail()
    await assert_ledger_checks(service.environment, stage.community.slug)
    report_figures(figures)
    assert unexpected == []
    figures.assert_nothing_lost_or_doubled()
