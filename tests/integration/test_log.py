"""The journal's log: every ledger change appends canonical entries, in order, with
gap-free indexes, in the same transaction; replaying the entries gives back every
balance."""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import CommunityFixture
from timebank.ledger.errors import LimitExceeded
from timebank.ledger.models import (
    AccountStatus,
    Posting,
    TransactionKind,
    TransactionRequest,
)
from timebank.ledger.store import LedgerStore
from timebank.log.replay import replay


async def log_of(pool: asyncpg.Pool, community_id: uuid.UUID) -> list[bytes]:
    rows = await pool.fetch(
        "SELECT leaf_index, entry FROM log_entries WHERE community_id = $1 ORDER BY leaf_index",
        community_id,
    )
    assert [row["leaf_index"] for row in rows] == list(range(len(rows))), "gap-free"
    size = await pool.fetchval("SELECT size FROM log_heads WHERE community_id = $1", community_id)
    assert size == len(rows)
    return [bytes(row["entry"]) for row in rows]


def transfer(
    community: CommunityFixture, payer: uuid.UUID, payee: uuid.UUID, amount: int, **extra: object
) -> TransactionRequest:
    return TransactionRequest.transfer(
        id=uuid.uuid4(),
        community_id=community.id,
        unit_code="H",
        from_account=payer,
        to_account=payee,
        amount=amount,
        **extra,  # type: ignore[arg-type]
    )


async def test_each_change_appends_its_entry_in_order(
    pool: asyncpg.Pool, store: LedgerStore, community: CommunityFixture
) -> None:
    """Units, accounts, transactions, resolutions and limit changes are logged in the
    order they happened, and the log replays to the ledger's balances."""
    alice = await community.member_account("alice")
    bob = await community.member_account("bob")
    posted = transfer(community, alice.id, bob.id, 90, memo="haie", category="jardin")
    await store.post(posted)
    pending = transfer(community, alice.id, bob.id, 30, pending=True)
    await store.post(pending)
    await store.confirm(community.id, pending.id)
    voided = transfer(community, bob.id, alice.id, 5, pending=True)
    await store.post(voided)
    await store.void(community.id, voided.id)
    await store.reverse(community.id, posted.id, memo="erreur")
    await store.set_limits(community.id, alice.id, -1200, 6000)
    await store.set_status(community.id, bob.id, AccountStatus.FROZEN)
    entries = [json.loads(raw) for raw in await log_of(pool, community.id)]
    assert [(entry["type"], entry.get("state")) for entry in entries] == [
        ("unit", None),
        ("unit", None),
        ("account", None),
        ("account", None),
        ("transaction", "posted"),
        ("transaction", "pending"),
        ("resolution", "posted"),
        ("transaction", "pending"),
        ("resolution", "voided"),
        ("transaction", "posted"),
        ("account", None),
        ("account", None),
    ]
    assert entries[4]["postings"] == [[str(alice.id), -90], [str(bob.id), 90]]
    assert "haie" not in json.dumps(entries)
    assert len(entries[4]["memo_sha256"]) == 64
    assert (entries[9]["kind"], entries[9]["reverses"]) == ("reversal", str(posted.id))
    assert (entries[10]["min_balance"], entries[11]["status"]) == ("-1200", "frozen")
    replayed = replay(await log_of(pool, community.id))
    assert replayed.balances() == {
        str(alice.id): (await store.account(alice.id)).balance,
        str(bob.id): (await store.account(bob.id)).balance,
    }


async def test_a_refused_write_appends_nothing(
    pool: asyncpg.Pool, store: LedgerStore, community: CommunityFixture
) -> None:
    alice = await community.member_account("alice", min_balance=0)
    bob = await community.member_account("bob")
    before = await log_of(pool, community.id)
    try:
        await store.post(transfer(community, alice.id, bob.id, 10))
    except LimitExceeded:
        pass
    else:
        raise AssertionError("the transfer should be refused")
    assert await log_of(pool, community.id) == before


async def test_concurrent_writers_get_gap_free_indexes(
    pool: asyncpg.Pool, store: LedgerStore, community: CommunityFixture
) -> None:
    """Many transfers and batches at once: one entry each, no gap, no duplicate."""
    accounts = [await community.member_account(f"m{i}") for i in range(6)]
    singles = [
        transfer(community, accounts[i % 6].id, accounts[(i + 1) % 6].id, 1) for i in range(60)
    ]
    batches = [
        [transfer(community, accounts[j % 6].id, accounts[(j + 2) % 6].id, 1) for j in range(20)]
        for _ in range(3)
    ]
    await asyncio.gather(
        *(store.post(request) for request in singles),
        *(store.post_atomic(batch) for batch in batches),
    )
    entries = [json.loads(raw) for raw in await log_of(pool, community.id)]
    logged = [entry["id"] for entry in entries if entry["type"] == "transaction"]
    expected = {str(request.id) for request in singles} | {
        str(request.id) for batch in batches for request in batch
    }
    assert sorted(logged) == sorted(expected)


async def test_batch_entries_are_canonical_once_each_and_gap_free(
    pool: asyncpg.Pool, store: LedgerStore, community: CommunityFixture
) -> None:
    """An atomic batch of two- and four-legged transactions, one of them written
    before: each new transaction is logged once, its postings in the order asked,
    as RFC 8785 bytes, right after what was logged before (no index skipped by the
    retried one)."""
    alice = await community.member_account("alice")
    bob = await community.member_account("bob")
    carol = await community.member_account("carol")
    dave = await community.member_account("dave")
    earlier = transfer(community, alice.id, bob.id, 5)
    await store.post(earlier)
    before = await log_of(pool, community.id)
    four_legs = TransactionRequest(
        id=uuid.uuid4(),
        community_id=community.id,
        kind=TransactionKind.EXCHANGE,
        postings=(
            Posting(dave.id, 4),
            Posting(alice.id, -3),
            Posting(carol.id, 1),
            Posting(bob.id, -2),
        ),
        unit_code="H",
    )
    two_legs = transfer(community, carol.id, dave.id, 8, memo="pain", category="repas")
    await store.post_atomic([two_legs, earlier, four_legs])
    after = await log_of(pool, community.id)
    assert after[: len(before)] == before
    new_entries = [json.loads(raw) for raw in after[len(before) :]]
    assert [rfc8785.dumps(entry) for entry in new_entries] == after[len(before) :]
    by_id = {entry["id"]: entry for entry in new_entries}
    assert sorted(by_id) == sorted([str(two_legs.id), str(four_legs.id)])
    assert by_id[str(four_legs.id)]["postings"] == [
        [str(dave.id), 4],
        [str(alice.id), -3],
        [str(carol.id), 1],
        [str(bob.id), -2],
    ]
    assert by_id[str(two_legs.id)]["postings"] == [[str(carol.id), -8], [str(dave.id), 8]]
    assert by_id[str(two_legs.id)]["category"] == "repas"


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    memo=st.text(max_size=40).filter(lambda text: "\x00" not in text),
    category=st.text(min_size=1, max_size=20).filter(lambda text: "\x00" not in text),
)
async def test_entries_are_rfc8785_canonical_whatever_the_text(
    pool: asyncpg.Pool, store: LedgerStore, community: CommunityFixture, memo: str, category: str
) -> None:
    """Entries built in SQL are byte for byte what an RFC 8785 implementation makes,
    whatever unicode, quotes or control characters the category holds."""
    alice = await community.member_account("alice")
    bob = await community.member_account("bob")
    await store.post(transfer(community, alice.id, bob.id, 1, memo=memo, category=category))
    raw = (await log_of(pool, community.id))[-1]
    entry = json.loads(raw)
    assert entry["category"] == category
    assert rfc8785.dumps(entry) == raw
