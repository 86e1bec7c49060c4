"""Signatures are kept once, in the log entries that carry them (sql/0023): the
store reads them back from there, nothing is written to the old table, and the
database refuses a revoked key's signature on every signed write, including a
resolution's, even when the service still holds the key in memory."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import CommunityFixture
from tests.integration.test_audit_bench_entries import (
    a_member_with_a_key,
    acknowledged,
    signed_transfer,
)
from timebank.ledger.errors import LimitExceeded
from timebank.ledger.store import LedgerStore
from timebank.log.store import LogKeys, LogStore
from timebank.signing import intents
from timebank.signing.errors import KeyRevoked

COUNT_OLD_TABLE_ROWS = "SELECT count(*) FROM transaction_signatures WHERE community_id = $1"
COUNT_ENTRIES = "SELECT count(*) FROM log_entries WHERE community_id = $1"
REVOKE_IN_SQL = "UPDATE member_keys SET revoked_at = now() WHERE community_id = $1 AND key_id = $2"


async def test_signatures_are_read_back_from_the_log_and_kept_nowhere_else(
    pool: asyncpg.Pool, store: LedgerStore, community: CommunityFixture, tmp_path: Path
) -> None:
    origin = await LogStore(pool, LogKeys(tmp_path / "keys"), "sig.test").origin(
        community.id, community.slug
    )
    alice = await a_member_with_a_key(pool, community, "alice")
    bob = await a_member_with_a_key(pool, community, "bob")
    posted = await signed_transfer(store, community, origin, alice, bob[0], 30)
    pending = await signed_transfer(store, community, origin, alice, bob[0], 20, pending=True)
    await acknowledged(store, community, origin, bob, pending)

    [intent] = await store.signatures(community.id, posted[0])
    assert (intent.purpose, intent.signed, intent.key_id) == ("intent", posted[1], alice[2])
    alice[1].public_key().verify(intent.signature, intent.signed)
    both = await store.signatures(community.id, pending[0])
    assert [(s.purpose, s.key_id) for s in both] == [("intent", alice[2]), ("ack", bob[2])]
    bob[1].public_key().verify(both[1].signature, both[1].signed)
    assert await pool.fetchval(COUNT_OLD_TABLE_ROWS, community.id) == 0


async def test_a_revoked_key_signs_no_resolution_and_nothing_is_logged(
    pool: asyncpg.Pool, store: LedgerStore, community: CommunityFixture, tmp_path: Path
) -> None:
    origin = await LogStore(pool, LogKeys(tmp_path / "keys"), "sig.test").origin(
        community.id, community.slug
    )
    alice = await a_member_with_a_key(pool, community, "alice")
    bob = await a_member_with_a_key(pool, community, "bob")
    pending = await signed_transfer(store, community, origin, alice, bob[0], 20, pending=True)
    # Revoked behind the service's back (another process, or an admin in SQL).
    await pool.execute(REVOKE_IN_SQL, community.id, bob[2])
    entries_before = await pool.fetchval(COUNT_ENTRIES, community.id)
    with pytest.raises(KeyRevoked):
        await acknowledged(store, community, origin, bob, pending)
    assert await pool.fetchval(COUNT_ENTRIES, community.id) == entries_before
    assert (await store.transaction(community.id, pending[0])).state.value == "pending"
    assert [s.purpose for s in await store.signatures(community.id, pending[0])] == ["intent"]


async def test_a_revoked_key_signs_no_post_and_the_others_of_its_batch_are_written(
    pool: asyncpg.Pool, store: LedgerStore, community: CommunityFixture, tmp_path: Path
) -> None:
    origin = await LogStore(pool, LogKeys(tmp_path / "keys"), "sig.test").origin(
        community.id, community.slug
    )
    alice = await a_member_with_a_key(pool, community, "alice")
    bob = await a_member_with_a_key(pool, community, "bob")
    await pool.execute(REVOKE_IN_SQL, community.id, alice[2])
    with pytest.raises(KeyRevoked):
        await signed_transfer(store, community, origin, alice, bob[0], 5)
    written = await signed_transfer(store, community, origin, bob, alice[0], 7)
    assert [s.key_id for s in await store.signatures(community.id, written[0])] == [bob[2]]


async def test_one_call_writes_the_live_signers_and_refuses_the_others_each_by_name(
    pool: asyncpg.Pool, store: LedgerStore, community: CommunityFixture, tmp_path: Path
) -> None:
    """Posts gathered into one database call (the first goes alone, the others wait
    for it and leave together): a revoked key and a broken limit are refused by
    name, the others are written with their own signatures (sql/0026)."""
    origin = await LogStore(pool, LogKeys(tmp_path / "keys"), "sig.test").origin(
        community.id, community.slug
    )
    alice = await a_member_with_a_key(pool, community, "alice")
    bob = await a_member_with_a_key(pool, community, "bob")
    carol = await a_member_with_a_key(pool, community, "carol")
    await pool.execute(REVOKE_IN_SQL, community.id, bob[2])
    entries_before = await pool.fetchval(COUNT_ENTRIES, community.id)

    first, revoked, written, over_limit, last = await asyncio.gather(
        signed_transfer(store, community, origin, alice, carol[0], 5),
        signed_transfer(store, community, origin, bob, alice[0], 7),
        signed_transfer(store, community, origin, carol, bob[0], 3),
        signed_transfer(store, community, origin, alice, bob[0], 10**12),
        signed_transfer(store, community, origin, carol, alice[0], 2),
        return_exceptions=True,
    )

    assert isinstance(revoked, KeyRevoked)
    assert isinstance(over_limit, LimitExceeded)
    for posted, signer in ((first, alice), (written, carol), (last, carol)):
        assert isinstance(posted, tuple)
        [intent] = await store.signatures(community.id, posted[0])
        assert (intent.signed, intent.key_id) == (posted[1], signer[2])
    assert await pool.fetchval(COUNT_ENTRIES, community.id) == entries_before + 3


async def test_the_log_spells_bytes_in_base64url_as_the_service_reads_them(
    pool: asyncpg.Pool,
) -> None:
    # Every padding case (lengths 0 to 2 modulo 3), every base64 letter, and values
    # long enough for PostgreSQL's encode() to break its output into lines.
    generator = random.Random(33)
    values = [bytes(generator.randrange(256) for _ in range(length)) for length in range(70)]
    values += [bytes(range(256)), bytes(range(255, -1, -1)) * 3]
    spelled = await pool.fetchval(
        "SELECT array_agg(log_b64url(v) ORDER BY i)"
        " FROM unnest($1::bytea[]) WITH ORDINALITY AS u(v, i)",
        values,
    )
    assert spelled == [intents.b64url_encode(value) for value in values]
