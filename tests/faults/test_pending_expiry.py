"""Pending transactions whose expiry falls while the service is down."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeAlias

import aiohttp
import asyncpg
import pytest

from tests.faults.harness import (
    Member,
    Service,
    assert_ledger_checks,
    eventually,
    soak_share_s,
    staged,
)
from tests.faults.records import Figures, Load, Sent, open_connection, verify

pytestmark = pytest.mark.slow

SHORT_CRASHES = 1
PENDING_SINGLES = 12
PENDING_BATCH_SIZE = 8
# Long enough to post them and kill the service first, short enough to wait for.
EXPIRES_IN_S = 4
EXPIRY_WAIT_TIMEOUT_S = EXPIRES_IN_S + 30.0

# A test-side connection to the scenario's database.
Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record]"


async def _get(session: aiohttp.ClientSession, url: str, member: Member) -> Any:
    async with session.get(url, headers=member.headers) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def _pending_by_account(
    session: aiohttp.ClientSession, service: Service, members: Sequence[Member]
) -> Counter[uuid.UUID]:
    """Each member's pending debits, as GET /v1/accounts/{id} shows them."""
    held: Counter[uuid.UUID] = Counter()
    for member in members:
        account = await _get(session, f"{service.url}/v1/accounts/{member.account_id}", member)
        held[member.account_id] = account["pending_debits"]
    return held


async def _states(connection: Connection, ids: list[uuid.UUID]) -> Counter[str]:
    rows = await connection.fetch(
        "SELECT state::text AS state, count(*) AS n FROM transactions WHERE id = ANY($1)"
        " GROUP BY state",
        ids,
    )
    return Counter({row["state"]: row["n"] for row in rows})


async def _db_clock_passed(connection: Connection, ids: list[uuid.UUID]) -> bool:
    passed = await connection.fetchval(
        "SELECT clock_timestamp() > max(expires_at) FROM transactions WHERE id = ANY($1)", ids
    )
    return bool(passed)


async def _expired_exactly_once(connection: Connection, ids: list[uuid.UUID]) -> None:
    """One resolution entry each in the log, saying expired, at the expiry time;
    no posting; no hold left."""
    rows = await connection.fetch(
        "SELECT t.id, t.state::text AS state, t.resolved_at = t.expires_at AS on_time,"
        "       (SELECT count(*) FROM log_entries e"
        "         WHERE e.community_id = t.community_id AND e.transaction_id = t.id"
        "           AND convert_from(e.entry, 'UTF8')::jsonb ->> 'type' = 'resolution'"
        "           AND convert_from(e.entry, 'UTF8')::jsonb ->> 'state' = 'expired')"
        "         AS expiries,"
        "       (SELECT count(*) FROM postings p"
        "         WHERE p.community_id = t.community_id AND p.transaction_id = t.id) AS postings,"
        "       (SELECT count(*) FROM holds h"
        "         WHERE h.community_id = t.community_id AND h.transaction_id = t.id) AS holds"
        "  FROM transactions t WHERE t.id = ANY($1)",
        ids,
    )
    assert len(rows) == len(ids)
    for row in rows:
        assert (row["state"], row["on_time"], row["expiries"], row["postings"], row["holds"]) == (
            "expired",
            True,
            1,
            0,
            0,
        ), dict(row)


async def _crash_across_expiry(
    load: Load,
    service: Service,
    connection: Connection,
    session: aiohttp.ClientSession,
    generator: random.Random,
) -> None:
    """One round: pending transactions posted and held, the service killed before
    they expire and started again after; each is then expired exactly once."""
    pending = [
        load.single(generator, pending=True, expires_in=EXPIRES_IN_S)
        for _ in range(PENDING_SINGLES)
    ]
    pending.append(load.batch(generator, PENDING_BATCH_SIZE, pending=True, expires_in=EXPIRES_IN_S))
    assert all(await asyncio.gather(*(load.deliver(sent) for sent in pending))), load.unexpected
    ids = [id_ for sent in pending for id_ in sent.ids]
    held: Counter[uuid.UUID] = Counter()
    for sent in pending:
        for transfer in sent.transfers:
            held[transfer.payer] += transfer.amount
    members = load.community.members
    assert await _pending_by_account(session, service, members) == held

    await service.kill()
    assert not await _db_clock_passed(connection, ids), "expired before the service was killed"
    await eventually(
        lambda: _db_clock_passed(connection, ids), "the expiry passes", EXPIRY_WAIT_TIMEOUT_S
    )
    # Nobody expires them while the service is down.
    assert await _states(connection, ids) == Counter({"pending": len(ids)})
    await service.start()

    async def expired() -> bool:
        return await _states(connection, ids) == Counter({"expired": len(ids)})

    await eventually(expired, "the restarted service expires them")
    await _expired_exactly_once(connection, ids)
    await _shown_expired(session, service, pending)
    assert await _pending_by_account(session, service, members) == Counter(dict.fromkeys(held, 0))


async def _shown_expired(
    session: aiohttp.ClientSession, service: Service, pending: Sequence[Sent]
) -> None:
    """GET /v1/transactions/{id} says expired; confirming one is refused, not_pending."""
    for sent in pending:
        for id_ in sent.ids:
            shown = await _get(session, f"{service.url}/v1/transactions/{id_}", sent.member)
            assert shown["state"] == "expired", shown
    first = pending[0]
    async with session.post(
        f"{service.url}/v1/transactions/{first.ids[0]}/confirm", headers=first.member.headers
    ) as response:
        body = await response.json(content_type=None)
        assert (response.status, body["code"]) == (409, "not_pending"), body


async def test_pending_expiring_while_the_service_is_down_expire_once_after_restart(
    fault_database: str, tmp_path: Path, report_figures: Callable[[Figures], None]
) -> None:
    """Pending transfers (alone and in an atomic batch) with a short expires_in,
    their holds shown on the payers' accounts; the service is killed before they
    expire and started after: each is then expired exactly once (one log entry,
    at its expiry time, no posting, no hold left), GET shows it expired, the
    payers' pending debits are back to 0, a retry by id answers 200 (found, now
    expired) and a confirmation not_pending; posted transfers of a load running
    meanwhile are all there once; `timebank check` passes."""
    loop = asyncio.get_running_loop()
    generator = random.Random(13)
    crashes = 0
    async with staged(fault_database, tmp_path) as stage:
        service = stage.service
        connection = await open_connection(fault_database)
        try:
            async with (
                Load(
                    stage.community, service.url, generation=lambda: service.generation, seed=4
                ) as load,
                aiohttp.ClientSession() as session,
            ):
                load.start(singles=2, batches=1)
                deadline = loop.time() + soak_share_s()
                while crashes < SHORT_CRASHES or loop.time() < deadline:
                    await _crash_across_expiry(load, service, connection, session, generator)
                    crashes += 1
                await load.stop()
                figures = await verify(
                    load, connection, Figures("pending expiry across a crash", crashes)
                )
                unexpected = load.unexpected
        finally:
            await connection.close()
        assert await service.stop() == 0, service.log_tail()
    await assert_ledger_checks(service.environment, stage.community.slug)
    report_figures(figures)
    assert unexpected == []
    figures.assert_nothing_lost_or_doubled()
