"""The invariant checker finds what is wrong, in a database written behind the
ledger's back (each test works in a database of its own)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import asyncpg

from tests.integration.helpers import sound_ledger
from timebank.ledger.invariants import check_invariants


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
