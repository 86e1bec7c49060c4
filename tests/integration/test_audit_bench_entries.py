"""The audit benchmark builds its bundles without a server, entry by entry as the
log triggers would: here each of its builders is held to the bytes the triggers
write for real rows (units, accounts, keys, the policy, transactions signed or not,
a resolution with its acknowledgement), and a real community's bundle verifies
with workers as it does alone."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.audit_bench import (
    LoggedSignature,
    account_entry,
    key_entry,
    policy_entry,
    resolution_entry,
    transaction_entry,
    unit_entry,
)
from tests.conftest import CommunityFixture
from timebank.ledger.models import Account, TransactionRequest
from timebank.ledger.store import LedgerStore, StoredSignature
from timebank.log.audit import export_bundle, verify_bundle
from timebank.log.store import LogKeys, LogStore
from timebank.signing import intents
from timebank.signing.keys import KeyStore

SELECT_LOG = """
SELECT entry FROM log_entries WHERE community_id = $1 ORDER BY leaf_index
"""
SELECT_UNIT = """
SELECT id, code, decimals, kind, default_min_balance, default_max_balance
  FROM units WHERE community_id = $1 AND id = $2
"""
SELECT_ACCOUNT = """
SELECT a.id, a.owner_id, a.purpose, a.status, a.min_balance, a.max_balance, u.code
  FROM accounts a JOIN units u ON u.community_id = a.community_id AND u.id = a.unit_id
 WHERE a.community_id = $1 AND a.id = $2
"""
SELECT_KEY = """
SELECT key_id, party_id, algorithm, public_key FROM member_keys
 WHERE community_id = $1 AND key_id = $2
"""
SELECT_TRANSACTION = """
SELECT id, created_at, expires_at, kind, memo, category, reverses_id, leg_accounts,
       leg_amounts, state
  FROM transactions WHERE community_id = $1 AND id = $2
"""
# Signatures are kept in the log only (sql/0023).
SELECT_ENTRIES_OF_TRANSACTION = """
SELECT entry FROM log_entries WHERE community_id = $1 AND transaction_id = $2 ORDER BY leaf_index
"""
SELECT_RESOLUTION = """
SELECT id, resolved_at, state FROM transactions WHERE community_id = $1 AND id = $2
"""
INSERT_PERSON = "INSERT INTO people (email, display_name) VALUES ($1, $2) RETURNING id"
CHUNK_ENTRIES = 2


async def a_member_with_a_key(
    pool: asyncpg.Pool, community: CommunityFixture, name: str
) -> tuple[Account, Ed25519PrivateKey, str]:
    account = await community.member_account(name)
    person_id = await pool.fetchval(INSERT_PERSON, f"{name}-{uuid.uuid4()}@example.org", name)
    device = Ed25519PrivateKey.generate()
    public_key = device.public_key().public_bytes_raw()
    key_id = intents.public_key_id(intents.KeyAlgorithm.ED25519, public_key)
    await KeyStore(pool).register(
        community.id,
        key_id=key_id,
        party_id=account.owner_id,
        person_id=person_id,
        client_id=None,
        algorithm="ed25519",
        public_key=public_key,
        label="phone",
    )
    return account, device, key_id


Member = tuple[Account, Ed25519PrivateKey, str]


async def signed_transfer(
    store: LedgerStore,
    community: CommunityFixture,
    origin: str,
    payer: Member,
    payee: Account,
    amount: int,
    *,
    pending: bool = False,
) -> tuple[uuid.UUID, bytes]:
    """Posts a transfer with its payer's signed intent: its id and the intent."""
    account, device, key_id = payer
    request = TransactionRequest.transfer(
        id=uuid.uuid4(),
        community_id=community.id,
        unit_code="H",
        from_account=account.id,
        to_account=payee.id,
        amount=amount,
        memo="jardinage",
        pending=pending,
    )
    signed = intents.make_transfer_intent(
        ledger=origin,
        tx_id=request.id,
        payer=account.id,
        payee=payee.id,
        unit="H",
        amount=amount,
        memo=request.memo,
        not_after=datetime.now(UTC) + timedelta(minutes=5),
        key_id=key_id,
    )
    signature = StoredSignature("intent", signed, device.sign(signed), key_id)
    await store.post_signed(request, signature)
    return request.id, signed


async def acknowledged(
    store: LedgerStore,
    community: CommunityFixture,
    origin: str,
    payee: Member,
    transaction: tuple[uuid.UUID, bytes],
) -> None:
    """The payee accepts a pending transfer, signing its acknowledgement."""
    transaction_id, intent = transaction
    _, device, key_id = payee
    ack = intents.make_ack(
        ledger=origin,
        tx_id=transaction_id,
        tx_hash=intents.sha256_hex(intent),
        decision=intents.AckDecision.ACCEPT,
        key_id=key_id,
    )
    signature = StoredSignature("ack", ack, device.sign(ack), key_id)
    await store.confirm_signed(community.id, transaction_id, signature)


async def row_of(pool: asyncpg.Pool, query: str, *arguments: object) -> asyncpg.Record:
    row = await pool.fetchrow(query, *arguments)
    assert row is not None
    return row


async def rebuilt(pool: asyncpg.Pool, community_id: uuid.UUID, entry: dict[str, Any]) -> bytes:
    """The entry as the benchmark builds it from the rows the entry tells of."""
    kind = entry["type"]
    if kind == "unit":
        row = await row_of(pool, SELECT_UNIT, community_id, uuid.UUID(entry["unit"]))
        return unit_entry(
            unit_id=row["id"],
            code=row["code"],
            decimals=row["decimals"],
            kind=row["kind"],
            default_min_balance=row["default_min_balance"],
            default_max_balance=row["default_max_balance"],
        )
    if kind == "account":
        row = await row_of(pool, SELECT_ACCOUNT, community_id, uuid.UUID(entry["account"]))
        return account_entry(
            account_id=row["id"],
            owner_id=row["owner_id"],
            unit_code=row["code"],
            purpose=row["purpose"],
            status=row["status"],
            min_balance=row["min_balance"],
            max_balance=row["max_balance"],
        )
    if kind == "key":
        row = await row_of(pool, SELECT_KEY, community_id, entry["key_id"])
        return key_entry(
            key_id=row["key_id"],
            party_id=row["party_id"],
            algorithm=row["algorithm"],
            public_key=bytes(row["public_key"]),
        )
    if kind == "policy":
        return policy_entry(entry["signatures"])
    if kind == "resolution":
        return await rebuilt_resolution(pool, community_id, uuid.UUID(entry["id"]))
    assert kind == "transaction", f"the test makes no {kind} entry"
    # The state it was written in: a pending one may be posted since.
    return await rebuilt_transaction(pool, community_id, uuid.UUID(entry["id"]), entry["state"])


async def logged_signature(
    pool: asyncpg.Pool, community_id: uuid.UUID, transaction_id: uuid.UUID, purpose: str
) -> LoggedSignature | None:
    for row in await pool.fetch(SELECT_ENTRIES_OF_TRANSACTION, community_id, transaction_id):
        for signature in json.loads(bytes(row["entry"])).get("signatures") or ():
            if signature["purpose"] == purpose:
                return LoggedSignature(
                    purpose,
                    intents.b64url_decode(signature["signed"]),
                    intents.b64url_decode(signature["signature"]),
                    signature["key_id"],
                )
    return None


async def rebuilt_resolution(
    pool: asyncpg.Pool, community_id: uuid.UUID, transaction_id: uuid.UUID
) -> bytes:
    row = await row_of(pool, SELECT_RESOLUTION, community_id, transaction_id)
    return resolution_entry(
        transaction_id=row["id"],
        resolved_at=row["resolved_at"],
        state=row["state"],
        signature=await logged_signature(pool, community_id, transaction_id, "ack"),
    )


async def rebuilt_transaction(
    pool: asyncpg.Pool, community_id: uuid.UUID, transaction_id: uuid.UUID, state: str
) -> bytes:
    row = await row_of(pool, SELECT_TRANSACTION, community_id, transaction_id)
    return transaction_entry(
        transaction_id=row["id"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        kind=row["kind"],
        memo=row["memo"],
        category=row["category"],
        reverses=row["reverses_id"],
        postings=list(zip(row["leg_accounts"], row["leg_amounts"], strict=True)),
        state=state,
        signature=await logged_signature(pool, community_id, transaction_id, "intent"),
    )


async def test_the_benchmark_builds_entries_byte_for_byte_as_the_triggers_do(
    pool: asyncpg.Pool, store: LedgerStore, community: CommunityFixture, tmp_path: Path
) -> None:
    """Every entry of a real community's log, rebuilt from its rows by the
    benchmark's builders, is the same bytes; its bundle verifies alike with workers
    (in chunks of two entries) and alone."""
    log = LogStore(pool, LogKeys(tmp_path / "log-keys"), "bench.test")
    origin = await log.origin(community.id, community.slug)
    await KeyStore(pool).set_policy(community.id, "required")
    alice = await a_member_with_a_key(pool, community, "alice")
    bob = await a_member_with_a_key(pool, community, "bob")
    await signed_transfer(store, community, origin, alice, bob[0], 90)
    await signed_transfer(store, community, origin, bob, alice[0], 30)
    pending = await signed_transfer(store, community, origin, alice, bob[0], 45, pending=True)
    await acknowledged(store, community, origin, bob, pending)
    unsigned = TransactionRequest.transfer(
        id=uuid.uuid4(),
        community_id=community.id,
        unit_code="H",
        from_account=alice[0].id,
        to_account=bob[0].id,
        amount=15,
        memo='café \u2028 "quoted"\n',
        category="entraide",
    )
    await store.post(unsigned)
    logged = [bytes(row["entry"]) for row in await pool.fetch(SELECT_LOG, community.id)]
    entries = [json.loads(raw) for raw in logged]
    assert {entry["type"] for entry in entries} == {
        "unit",
        "account",
        "key",
        "policy",
        "transaction",
        "resolution",
    }
    assert [await rebuilt(pool, community.id, entry) for entry in entries] == logged

    await log.checkpoint(community.id, community.slug)
    output = io.StringIO()
    async with pool.acquire() as connection:
        await export_bundle(connection, community.slug, output)
    bundle = tmp_path / "bundle.jsonl"
    await asyncio.to_thread(bundle.write_text, output.getvalue(), encoding="utf-8")
    alone = await asyncio.to_thread(verify_bundle, bundle, jobs=1)
    together = await asyncio.to_thread(verify_bundle, bundle, jobs=2, chunk_entries=CHUNK_ENTRIES)
    assert (alone.problems, alone.checkpoints_verified) == ([], 1)
    assert (together.problems, together.size) == (alone.problems, alone.size)
