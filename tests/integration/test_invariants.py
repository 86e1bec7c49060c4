"""The invariant checker finds what is wrong, in a database written behind the
ledger's back (each test works in a database of its own)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import asyncpg

from tests.integration.helpers import transfer
from timebank.database import create_pool
from timebank.ledger.invariants import check_invariants
from timebank.ledger.models import PartyKind, UnitKind
from timebank.ledger.store import LedgerStore
from timebank.migrations import apply_migrations
from timebank.settings import Settings


async def sound_ledger(uri: str) -> tuple[asyncpg.Pool, list[uuid.UUID], uuid.UUID]:
    """A migrated database with a community, two accounts and one transfer."""
    settings = Settings(database_url=uri, database_pool_min_size=1, database_pool_max_size=2)
    pool = await create_pool(uri, settings)
    async with pool.acquire() as connection:
        await apply_migrations(connection)
    store = LedgerStore(pool, settings)
    community = await store.create_community("invariants", "Invariants")
    unit = await store.create_unit(
        community.id,
        code="H",
        name="Hours",
        kind=UnitKind.TIME,
        decimals=0,
        default_min_balance=-600,
        default_max_balance=600,
    )
    accounts = []
    for name in ("a", "b"):
        party = await store.create_party(community.id, PartyKind.MEMBER, name)
        accounts.append(await store.open_account(community.id, owner_id=party.id, unit_id=unit.id))
    await store.post(transfer(community.id, accounts[0], accounts[1], 30))
    return pool, [account.id for account in accounts], community.id


async def broken_invariants(pool: asyncpg.Pool) -> set[str]:
    async with pool.acquire() as connection:
        return {violation.invariant for violation in await check_invariants(connection)}


async def test_a_rogue_posting_is_found_by_several_invariants(
    create_database: Callable[[], Awaitable[str]],
) -> None:
    """A posting inserted by hand, for no transaction, breaks the books four ways."""
    pool, (first, _), community_id = await sound_ledger(await create_database())
    try:
        assert await broken_invariants(pool) == set()
        await pool.execute(
            "INSERT INTO postings (community_id, account_id, account_seq, transaction_id,"
            " amount, balance_after, posted_at) VALUES ($1, $2, 2, $3, 5, -25, now())",
            community_id,
            first,
            uuid.uuid4(),
        )
        assert await broken_invariants(pool) == {
            "balance_equals_sum_of_postings",
            "journal_references_exist",
            "posted_transactions_have_their_postings",
            "posted_transactions_balance_per_unit",
        }
    finally:
        await pool.close()


async def test_an_edited_limit_below_the_balance_is_found(
    create_database: Callable[[], Awaitable[str]],
) -> None:
    """Limits lowered behind the ledger's back (constraints dropped) are reported."""
    pool, (first, _), _ = await sound_ledger(await create_database())
    try:
        await pool.execute(
            "ALTER TABLE accounts DROP CONSTRAINT accounts_balance_within_limits;"
            "ALTER DOMAIN ledger_min_balance DROP CONSTRAINT ledger_min_balance_check"
        )
        await pool.execute("UPDATE accounts SET min_balance = -10 WHERE id = $1", first)
        assert await broken_invariants(pool) == {"balances_within_limits"}
    finally:
        await pool.close()
