"""Signatures are kept once, in the log entries that carry them (sql/0023): the
store reads them back from there, nothing is written to the old table, and the
database refuses a revoked key's signature on every signed write, including a
resolution's, even when the service still holds the key in memory."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import CommunityFixture
from tests.integration.test_audit_bench_entries import (
    a_member_with_a_key,
    acknowledged,
    signed_transfer,
)
from timebank.ledger import queries
from timebank.ledger.errors import LimitExceeded
from timebank.ledger.models import TransactionRequest
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


async def _post_spelled(
    pool: asyncpg.Pool,
    store: LedgerStore,
    request: TransactionRequest,
    spelled: tuple[object, object, object],
) -> list[asyncpg.Record]:
    """ledger_post_signed_each called directly, with these spelled signature parts."""
    signed, signature, key_id = spelled
    return await pool.fetch(
        queries.POST_SIGNED_EACH, *store.batch_arguments([request]), [signed], [signature], [key_id]
    )


async def test_the_database_writes_only_spelled_parts_that_keep_the_entry_well_formed(
    pool: asyncpg.Pool, store: LedgerStore, community: CommunityFixture, tmp_path: Path
) -> None:
    """The service spells the intent and its signature in base64url (sql/0034); the
    database refuses, and writes nothing for, parts of the wrong length or that JSON
    would have to escape, so no text can break a log entry out of its member."""
    origin = await LogStore(pool, LogKeys(tmp_path / "keys"), "sig.test").origin(
        community.id, community.slug
    )
    alice = await a_member_with_a_key(pool, community, "alice")
    bob = await a_member_with_a_key(pool, community, "bob")
    account, device, key_id = alice
    request = TransactionRequest.transfer(
        id=uuid.uuid4(),
        community_id=community.id,
        unit_code="H",
        from_account=account.id,
        to_account=bob[0].id,
        amount=4,
    )
    signed = intents.make_transfer_intent(
        ledger=origin,
        tx_id=request.id,
        payer=account.id,
        payee=bob[0].id,
        unit="H",
        amount=4,
        memo=request.memo,
        not_after=datetime.now(UTC) + timedelta(minutes=5),
        key_id=key_id,
    )
    good = (
        intents.b64url_encode(signed),
        intents.b64url_encode(device.sign(signed)),
        key_id,
    )
    quote_inside = good[1][:40] + '"' + good[1][41:]
    broken = [
        (good[0], quote_inside, key_id),  # a quote would end the JSON string
        (good[0], good[1][:40] + "\\" + good[1][41:], key_id),
        (good[0][:10] + "\n" + good[0][11:], good[1], key_id),
        (good[0], good[1] + "A", key_id),  # 65 bytes' worth
        ("A" * 5463, good[1], key_id),  # more than 4,096 bytes' worth
        ("", good[1], key_id),
        (good[0], good[1], key_id + "A"),
        (None, good[1], key_id),
        (good[0], None, key_id),
    ]
    entries_before = await pool.fetchval(COUNT_ENTRIES, community.id)
    for parts in broken:
        with pytest.raises(asyncpg.CheckViolationError, match="not a storable signature"):
            await _post_spelled(pool, store, request, parts)
    with pytest.raises(asyncpg.CheckViolationError, match="one signature per transaction"):
        await pool.fetch(
            queries.POST_SIGNED_EACH,
            *store.batch_arguments([request]),
            [good[0], good[0]],
            [good[1], good[1]],
            [key_id, key_id],
        )
    assert await pool.fetchval(COUNT_ENTRIES, community.id) == entries_before
    assert not await pool.fetchval("SELECT count(*) FROM transactions WHERE id = $1", request.id)

    [row] = await _post_spelled(pool, store, request, good)
    assert row["outcome"] == "created"
    entry = await pool.fetchval(
        "SELECT entry FROM log_entries WHERE community_id = $1 AND transaction_id = $2",
        community.id,
        request.id,
    )
    assert json.loads(entry)["signatures"] == [
        {"key_id": key_id, "purpose": "intent", "signature": good[1], "signed": good[0]}
    ]
    [stored] = await store.signatures(community.id, request.id)
    assert (stored.signed, stored.key_id) == (signed, key_id)
    device.public_key().verify(stored.signature, stored.signed)
