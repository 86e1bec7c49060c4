"""Small builders shared by the integration tests."""

from __future__ import annotations

import asyncio
import io
import uuid
from pathlib import Path

import asyncpg

from timebank.database import create_pool
from timebank.ledger.models import (
    Account,
    PartyKind,
    Posting,
    TransactionKind,
    TransactionRequest,
    Unit,
    UnitKind,
)
from timebank.ledger.store import LedgerStore
from timebank.log.audit import export_bundle
from timebank.migrations import apply_migrations
from timebank.settings import Settings


def transfer(
    community_id: uuid.UUID,
    payer: Account,
    payee: Account,
    amount: int,
    *,
    unit_code: str = "H",
    pending: bool = False,
    expires_in_s: int | None = None,
    memo: str = "",
    transaction_id: uuid.UUID | None = None,
) -> TransactionRequest:
    return TransactionRequest.transfer(
        id=transaction_id or uuid.uuid4(),
        community_id=community_id,
        unit_code=unit_code,
        from_account=payer.id,
        to_account=payee.id,
        amount=amount,
        pending=pending,
        expires_in_s=expires_in_s,
        memo=memo,
    )


def postings(
    community_id: uuid.UUID,
    *legs: tuple[Account, int],
    kind: TransactionKind = TransactionKind.EXCHANGE,
    unit_code: str | None = None,
) -> TransactionRequest:
    return TransactionRequest(
        id=uuid.uuid4(),
        community_id=community_id,
        kind=kind,
        postings=tuple(Posting(account.id, amount) for account, amount in legs),
        unit_code=unit_code,
    )


async def hours_unit(store: LedgerStore, community_id: uuid.UUID) -> Unit:
    """A time unit 'H' whose accounts range from -10 h to +10 h."""
    return await store.create_unit(
        community_id,
        code="H",
        name="Hours",
        kind=UnitKind.TIME,
        decimals=0,
        default_min_balance=-600,
        default_max_balance=600,
    )


async def bundle_of(pool: asyncpg.Pool, slug: str, path: Path) -> Path:
    """The community's log bundle, exported to the file."""
    output = io.StringIO()
    async with pool.acquire() as connection:
        await export_bundle(connection, slug, output)
    await asyncio.to_thread(path.write_text, output.getvalue(), encoding="utf-8")
    return path


async def sound_ledger(uri: str) -> tuple[asyncpg.Pool, list[uuid.UUID], uuid.UUID]:
    """A migrated database with a community, two accounts and one transfer."""
    settings = Settings(database_url=uri, database_pool_min_size=1, database_pool_max_size=2)
    pool = await create_pool(uri, settings)
    async with pool.acquire() as connection:
        await apply_migrations(connection)
    store = LedgerStore(pool, settings)
    community = await store.create_community("invariants", "Invariants")
    unit = await hours_unit(store, community.id)
    accounts = []
    for name in ("a", "b"):
        party = await store.create_party(community.id, PartyKind.MEMBER, name)
        accounts.append(await store.open_account(community.id, owner_id=party.id, unit_id=unit.id))
    await store.post(transfer(community.id, accounts[0], accounts[1], 30))
    return pool, [account.id for account in accounts], community.id
