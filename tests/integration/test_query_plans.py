"""A ledger write reads and updates only the accounts and reservations it touches,
by index, whatever the size of its community: no statement of the call scans every
account or every reservation of the community. The ledger functions run generic
plans, in which the planner takes an array argument for ten elements; a join with
such an array alone was planned as a hash join over a sequential scan of the
community's accounts, paid by every call and growing with the community.

Counted with pg_stat_xact_user_tables, the current transaction's own scans, in a
database of its own whose statistics say the community is large."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import asyncpg
import pytest

from tests.integration.helpers import hours_unit, transfer
from timebank.database import DatabaseConnection, create_pool
from timebank.ledger import queries
from timebank.ledger.models import Account, PartyKind
from timebank.ledger.store import LedgerStore
from timebank.migrations import apply_migrations
from timebank.settings import Settings

# A community of the size the benchmarks use, where a join alone was planned as a
# scan of every account. Both PostgreSQL 15 and 18 find the index cheaper here with
# the `= ANY` conditions (for a few hundred accounts, they scan the few pages).
ACCOUNTS = 1_000
# Pending transfers between the community's other accounts, each holding two legs.
PENDING_TRANSFERS = 3_000
BATCH_SIZE_MAX = 1_000
OPENED_AT_ONCE = 20
SCANNED_TABLES = ["accounts", "holds"]


@dataclass
class LargeCommunity:
    pool: asyncpg.Pool
    store: LedgerStore
    community_id: uuid.UUID
    accounts: list[Account]


@pytest.fixture(scope="module")
async def large_community(
    create_database: Callable[[], Awaitable[str]], settings: Settings
) -> AsyncIterator[LargeCommunity]:
    uri = await create_database()
    pool = await create_pool(uri, settings)
    try:
        async with pool.acquire() as connection:
            await apply_migrations(connection)
        store = LedgerStore(pool, settings)
        community = await store.create_community("large", "A large community")
        unit = await hours_unit(store, community.id)

        async def member_account(index: int) -> Account:
            party = await store.create_party(community.id, PartyKind.MEMBER, f"member {index}")
            return await store.open_account(community.id, owner_id=party.id, unit_id=unit.id)

        accounts: list[Account] = []
        for first in range(0, ACCOUNTS, OPENED_AT_ONCE):
            accounts += await asyncio.gather(
                *(member_account(index) for index in range(first, first + OPENED_AT_ONCE))
            )
        # Reservations all over the community, none on the first ten accounts.
        others = accounts[10:]
        pending = [
            transfer(
                community.id,
                others[index % len(others)],
                others[(index + 1) % len(others)],
                1,
                pending=True,
            )
            for index in range(PENDING_TRANSFERS)
        ]
        for first in range(0, PENDING_TRANSFERS, BATCH_SIZE_MAX):
            await store.post_atomic(pending[first : first + BATCH_SIZE_MAX])
        await pool.execute("ANALYZE")
        yield LargeCommunity(pool, store, community.id, accounts)
    finally:
        await pool.close()


async def sequential_scans(
    pool: asyncpg.Pool, call: Callable[[DatabaseConnection], Awaitable[object]]
) -> dict[str, int]:
    """The sequential scans of SCANNED_TABLES that `call` made, in a transaction."""
    async with pool.acquire() as connection, connection.transaction():
        before = await _scans(connection)
        await call(connection)
        after = await _scans(connection)
    return {table: after[table] - before[table] for table in SCANNED_TABLES}


async def _scans(connection: DatabaseConnection) -> dict[str, int]:
    rows = await connection.fetch(
        "SELECT relname, seq_scan FROM pg_stat_xact_user_tables WHERE relname = ANY ($1)",
        SCANNED_TABLES,
    )
    scans = {row["relname"]: row["seq_scan"] for row in rows}
    return {table: scans.get(table, 0) for table in SCANNED_TABLES}


NO_SCANS = dict.fromkeys(SCANNED_TABLES, 0)


async def test_statistics_see_a_large_community(large_community: LargeCommunity) -> None:
    """The premise of the tests below: the planner knows the tables' sizes."""
    estimates = {
        row["relname"]: row["reltuples"]
        for row in await large_community.pool.fetch(
            "SELECT relname, reltuples FROM pg_class WHERE relname = ANY ($1)", SCANNED_TABLES
        )
    }
    assert estimates == {"accounts": ACCOUNTS, "holds": 2 * PENDING_TRANSFERS}


async def test_a_coalesced_call_scans_no_table(large_community: LargeCommunity) -> None:
    store, accounts = large_community.store, large_community.accounts
    requests = [
        transfer(large_community.community_id, accounts[0], accounts[1], 5),
        transfer(large_community.community_id, accounts[2], accounts[3], 7),
    ]

    async def post(connection: DatabaseConnection) -> None:
        rows = await connection.fetch(queries.POST_EACH, *store.batch_arguments(requests))
        assert sorted(row["outcome"] for row in rows) == ["created", "created"]

    assert await sequential_scans(large_community.pool, post) == NO_SCANS


async def test_an_atomic_batch_scans_no_table(large_community: LargeCommunity) -> None:
    store, accounts = large_community.store, large_community.accounts
    requests = [
        transfer(large_community.community_id, accounts[4], accounts[5], 3),
        transfer(large_community.community_id, accounts[5], accounts[6], 2, pending=True),
    ]

    async def post(connection: DatabaseConnection) -> None:
        rows = await connection.fetch(queries.POST_ATOMIC_GROUPED, *store.batch_arguments(requests))
        assert sorted(row["state"] for row in rows) == ["pending", "posted"]

    assert await sequential_scans(large_community.pool, post) == NO_SCANS


async def test_confirming_scans_no_table(large_community: LargeCommunity) -> None:
    store, accounts = large_community.store, large_community.accounts
    pending = transfer(large_community.community_id, accounts[7], accounts[8], 4, pending=True)
    await store.post(pending)

    async def confirm(connection: DatabaseConnection) -> None:
        row = await connection.fetchrow(queries.CONFIRM, large_community.community_id, pending.id)
        assert row is not None
        assert (row["outcome"], row["state"]) == ("created", "posted")

    assert await sequential_scans(large_community.pool, confirm) == NO_SCANS
