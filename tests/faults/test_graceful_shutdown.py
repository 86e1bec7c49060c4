"""SIGTERM, as an orchestrator stops the service: new connections are refused at
once, a request in flight finishes within the grace, the process exits 0 within
its bound; a request that outlasts the grace is cut, and retrying it by id after
a restart gives exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.faults.harness import (
    HOURS,
    Member,
    Stage,
    assert_ledger_checks,
    eventually,
    staged,
)

pytestmark = pytest.mark.slow

GRACE_S = 3.0
# After the grace: 2 s for writes still running, 3 s for the pool (timebank/app.py,
# timebank/migrations.py), and the interpreter's own exit.
EXIT_BOUND_S = GRACE_S + 5.0 + 1.5
SETTINGS = {"TIMEBANK_SHUTDOWN_GRACE_S": str(GRACE_S)}
WAITING_ON_A_LOCK = """
    SELECT count(*) FROM pg_stat_activity
     WHERE datname = current_database() AND wait_event_type = 'Lock'
"""


async def lock_account(database_uri: str, account_id: uuid.UUID) -> asyncpg.Connection[Any]:
    """A connection holding the account's row lock, in a transaction left open:
    a transfer from that account waits for it."""
    connection: asyncpg.Connection[Any] = await asyncpg.connect(database_uri)
    await connection.execute("BEGIN")
    await connection.execute("SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE", account_id)
    return connection


async def transfer(
    session: aiohttp.ClientSession, stage: Stage, payer: Member, payee: Member, id: uuid.UUID
) -> tuple[int, Any]:
    body = {
        "id": str(id),
        "community": stage.community.slug,
        "unit": HOURS,
        "from": str(payer.account_id),
        "to": str(payee.account_id),
        "amount": 30,
    }
    async with session.post(
        f"{stage.service.url}/v1/transactions", json=body, headers=payer.headers
    ) as response:
        return response.status, await response.json()


async def refuses_connections(port: int) -> bool:
    """Whether a new connection is turned away: refused, or reset during the
    handshake when it reached the closing listener's backlog."""
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except (ConnectionRefusedError, ConnectionResetError):
        return True
    writer.close()
    return False


async def stored(database_uri: str, transaction_id: uuid.UUID) -> int:
    connection = await asyncpg.connect(database_uri)
    try:
        count: int = await connection.fetchval(
            "SELECT count(*) FROM transactions WHERE id = $1", transaction_id
        )
        return count
    finally:
        await connection.close()


async def a_request_waiting_on(stage: Stage, blocker: asyncpg.Connection[Any]) -> None:
    async def waiting() -> bool:
        return bool(await blocker.fetchval(WAITING_ON_A_LOCK))

    await eventually(waiting, "the transfer waits for the account's lock")


@dataclass(frozen=True)
class HeldTransfer:
    """A transfer the test holds on a lock, sent before the service got SIGTERM."""

    request: asyncio.Task[tuple[int, Any]]
    blocker: asyncpg.Connection[Any]
    transaction_id: uuid.UUID
    signalled_at: float


@contextlib.asynccontextmanager
async def sigterm_while_a_transfer_waits(stage: Stage) -> AsyncIterator[HeldTransfer]:
    """Holds the payer's account lock, sends a transfer from it, waits until the
    transfer waits for the lock, then sends SIGTERM; lets the lock go at the end."""
    payer, payee = stage.community.members[:2]
    transaction_id = uuid.uuid4()
    blocker = await lock_account(stage.database_uri, payer.account_id)
    try:
        async with aiohttp.ClientSession() as session:
            request = asyncio.create_task(transfer(session, stage, payer, payee, transaction_id))
            await a_request_waiting_on(stage, blocker)
            stage.service.terminate()
            yield HeldTransfer(request, blocker, transaction_id, asyncio.get_running_loop().time())
    finally:
        await blocker.close()


async def test_sigterm_lets_a_slow_request_finish_refuses_new_connections_and_exits_0(
    fault_database: str, tmp_path: Path
) -> None:
    """SIGTERM while a transfer waits on a lock: new connections are refused while
    it is in flight; released within the grace, it completes with 201 and is stored
    once; the process exits 0 within the grace plus its closing bound; `timebank
    check` passes."""
    loop = asyncio.get_running_loop()
    async with staged(fault_database, tmp_path, SETTINGS) as stage:
        async with sigterm_while_a_transfer_waits(stage) as held:
            await eventually(
                lambda: refuses_connections(stage.service.port),
                "new connections are refused",
                timeout_s=GRACE_S,
            )
            assert not held.request.done(), "the request in flight was cut"
            await held.blocker.execute("ROLLBACK")
            status, body = await asyncio.wait_for(held.request, GRACE_S)
        assert (status, body["id"]) == (201, str(held.transaction_id))
        assert await stage.service.exit_code(EXIT_BOUND_S) == 0
        assert loop.time() - held.signalled_at < EXIT_BOUND_S
        assert await stored(fault_database, held.transaction_id) == 1
        await assert_ledger_checks(stage.service.environment, stage.community.slug)


async def test_a_request_outlasting_the_grace_is_cut_and_a_retry_by_id_is_exactly_once(
    fault_database: str, tmp_path: Path
) -> None:
    """A transfer still waiting when the grace ends is cut (the client loses the
    connection), yet the process exits 0 within its bound; after a restart the
    retry with the same id answers 201 or 200 (whether or not the cut write was
    committed) and the transaction is there once."""
    loop = asyncio.get_running_loop()
    async with staged(fault_database, tmp_path, SETTINGS) as stage:
        async with sigterm_while_a_transfer_waits(stage) as held:
            with pytest.raises(aiohttp.ClientError):
                await asyncio.wait_for(held.request, EXIT_BOUND_S)
            assert await stage.service.exit_code(EXIT_BOUND_S) == 0
            assert loop.time() - held.signalled_at < EXIT_BOUND_S
        await stage.service.start()
        payer, payee = stage.community.members[:2]
        async with aiohttp.ClientSession() as session:
            status, body = await transfer(session, stage, payer, payee, held.transaction_id)
        assert status in (200, 201)
        assert body["id"] == str(held.transaction_id)
        assert await stored(fault_database, held.transaction_id) == 1
        await assert_ledger_checks(stage.service.environment, stage.community.slug)
