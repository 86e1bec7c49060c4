"""Auditing the log: an exported bundle verifies offline; every kind of tampering
done behind the ledger's back (in SQL, guard triggers off) is caught by both the
offline verifier and `timebank check`, which name it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import CommunityFixture
from tests.integration.helpers import bundle_of
from timebank.database import create_pool
from timebank.ledger.models import TransactionRequest
from timebank.ledger.store import LedgerStore
from timebank.log.audit import check_logs, verify_bundle
from timebank.log.note import format_verifier_key
from timebank.log.store import LogKeys, LogStore
from timebank.migrations import apply_migrations
from timebank.settings import Settings


@pytest.fixture
async def pool(
    create_database: Callable[[], Awaitable[str]], settings: Settings
) -> AsyncIterator[asyncpg.Pool]:
    """A database of its own: these tests break it on purpose."""
    uri = await create_database()
    pool = await create_pool(uri, settings)
    async with pool.acquire() as connection:
        await apply_migrations(connection)
    yield pool
    await pool.close()


@pytest.fixture
def store(pool: asyncpg.Pool, settings: Settings) -> LedgerStore:
    return LedgerStore(pool, settings)


@pytest.fixture
def log(pool: asyncpg.Pool, tmp_path: Path) -> LogStore:
    return LogStore(pool, LogKeys(tmp_path / "log-keys"), "audit.test")


async def some_history(store: LedgerStore, community: CommunityFixture) -> list[uuid.UUID]:
    accounts = [await community.member_account(f"m{i}") for i in range(4)]
    ids = []
    for i in range(12):
        request = TransactionRequest.transfer(
            id=uuid.uuid4(),
            community_id=community.id,
            unit_code="H",
            from_account=accounts[i % 4].id,
            to_account=accounts[(i + 1) % 4].id,
            amount=10 + i,
            memo=f"service {i}",
        )
        await store.post(request)
        ids.append(request.id)
    return ids


async def problems_of(pool: asyncpg.Pool, slug: str) -> list[str]:
    async with pool.acquire() as connection:
        violations = await check_logs(connection)
    return [
        str(row["problem"])
        for violation in violations
        for row in violation.rows
        if row["community"] == slug
    ]


async def behind_the_ledgers_back(pool: asyncpg.Pool, sql: str, *args: object) -> None:
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("SET LOCAL session_replication_role = replica")
        await connection.execute(sql, *args)


async def test_an_exported_bundle_verifies_offline(
    pool: asyncpg.Pool,
    store: LedgerStore,
    community: CommunityFixture,
    log: LogStore,
    tmp_path: Path,
) -> None:
    """Signatures, roots, an earlier checkpoint kept by an auditor, and the replayed
    balances all hold; `check` agrees."""
    await some_history(store, community)
    earlier = await log.checkpoint(community.id, community.slug)
    assert earlier is not None
    await some_history(store, community)
    latest = await log.checkpoint(community.id, community.slug)
    assert latest is not None
    assert latest.tree_size > earlier.tree_size
    bundle = await bundle_of(pool, community.slug, tmp_path / "bundle.jsonl")
    result = verify_bundle(bundle, earlier_checkpoint=earlier.note)
    assert result.problems == []
    assert (result.size, result.checkpoints_verified) == (latest.tree_size, 2)
    assert result.origin == f"audit.test/{community.slug}"
    assert result.accounts == 8
    assert await problems_of(pool, community.slug) == []


async def test_a_changed_amount_is_caught(
    pool: asyncpg.Pool,
    store: LedgerStore,
    community: CommunityFixture,
    log: LogStore,
    tmp_path: Path,
) -> None:
    ids = await some_history(store, community)
    await log.checkpoint(community.id, community.slug)
    await behind_the_ledgers_back(
        pool,
        """UPDATE log_entries SET entry = convert_to(replace(convert_from(entry, 'UTF8'),
                                                         ',10]', ',11]'), 'UTF8')
            WHERE community_id = $1 AND convert_from(entry, 'UTF8') LIKE '%' || $2 || '%'""",
        community.id,
        str(ids[0]),
    )
    result = verify_bundle(await bundle_of(pool, community.slug, tmp_path / "b.jsonl"))
    assert [problem.split(":")[1].strip() for problem in result.problems] == [
        "postings do not balance per unit"
    ]
    assert any("balance" in problem for problem in await problems_of(pool, community.slug))


async def test_a_deleted_transaction_is_caught(
    pool: asyncpg.Pool,
    store: LedgerStore,
    community: CommunityFixture,
    log: LogStore,
    tmp_path: Path,
) -> None:
    ids = await some_history(store, community)
    await log.checkpoint(community.id, community.slug)
    await behind_the_ledgers_back(
        pool, "DELETE FROM transactions WHERE community_id = $1 AND id = $2", community.id, ids[3]
    )
    problems = await problems_of(pool, community.slug)
    assert f"transaction {ids[3]} is in the log but not in the ledger" in problems


async def test_reordered_entries_are_caught(
    pool: asyncpg.Pool,
    store: LedgerStore,
    community: CommunityFixture,
    log: LogStore,
    tmp_path: Path,
) -> None:
    await some_history(store, community)
    checkpoint = await log.checkpoint(community.id, community.slug)
    assert checkpoint is not None
    last = checkpoint.tree_size - 1
    await behind_the_ledgers_back(
        pool,
        """UPDATE log_entries e SET entry = o.entry
             FROM log_entries o
            WHERE e.community_id = $1 AND o.community_id = $1
              AND ((e.leaf_index = $2 AND o.leaf_index = $3)
                OR (e.leaf_index = $3 AND o.leaf_index = $2))""",
        community.id,
        last - 1,
        last,
    )
    result = verify_bundle(await bundle_of(pool, community.slug, tmp_path / "b.jsonl"))
    assert f"checkpoint of size {checkpoint.tree_size}: its root is not the entries' root" in (
        result.problems
    )
    assert (
        f"checkpoint of size {checkpoint.tree_size}: the entries no longer hash to its root"
        in await problems_of(pool, community.slug)
    )


async def test_a_swapped_key_and_a_forged_signature_are_caught(
    pool: asyncpg.Pool,
    store: LedgerStore,
    community: CommunityFixture,
    log: LogStore,
    tmp_path: Path,
) -> None:
    await some_history(store, community)
    checkpoint = await log.checkpoint(community.id, community.slug)
    assert checkpoint is not None
    other = LogStore(pool, LogKeys(tmp_path / "other-keys"), "audit.test")
    async with pool.acquire() as connection:
        impostor = await other.verifier(connection, community.id, community.slug)
    # The impostor's key replaces the community's in the published keys.
    await behind_the_ledgers_back(
        pool,
        "DELETE FROM log_keys WHERE community_id = $1 AND vkey <> $2",
        community.id,
        format_verifier_key(impostor),
    )
    result = verify_bundle(await bundle_of(pool, community.slug, tmp_path / "b.jsonl"))
    assert any("does not verify" in problem for problem in result.problems)
    assert any("does not verify" in problem for problem in await problems_of(pool, community.slug))


async def test_a_forged_checkpoint_signature_is_caught(
    pool: asyncpg.Pool,
    store: LedgerStore,
    community: CommunityFixture,
    log: LogStore,
    tmp_path: Path,
) -> None:
    await some_history(store, community)
    checkpoint = await log.checkpoint(community.id, community.slug)
    assert checkpoint is not None
    body, _, signature_line = checkpoint.note.rpartition("\n\u2014 ")
    name, encoded = signature_line.strip().split(" ")
    forged = encoded[:-4] + ("AAAA" if not encoded.endswith("AAAA") else "BBBB")
    await behind_the_ledgers_back(
        pool,
        "UPDATE log_checkpoints SET note = $3 WHERE community_id = $1 AND tree_size = $2",
        community.id,
        checkpoint.tree_size,
        f"{body}\n\u2014 {name} {forged}\n",
    )
    result = verify_bundle(await bundle_of(pool, community.slug, tmp_path / "b.jsonl"))
    assert any("does not verify" in problem for problem in result.problems)
    assert any("does not verify" in problem for problem in await problems_of(pool, community.slug))
