"""Pools and policies benchmark: one command, one table, each figure beside a
baseline measured in the same run.

    python -m bench.pools_bench            # embedded PostgreSQL in a temp dir
    python -m bench.pools_bench --quick    # smaller and shorter: a smoke run
    DATABASE_URL=postgresql://... python -m bench.pools_bench

Measures (a) transfers by 32 concurrent payers with a levy on each paid to one
hot pool account, against the same load without levies (target: at least 0.5x),
and (b) one demurrage run over 100,000 accounts (one transaction per account
charged, all in the period's database transaction), against posting as many
transfers in atomic batches of 1,000 (the funding of those accounts).
"""

from __future__ import annotations

import argparse
import random
import secrets
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from bench.ledger_bench import Row, bench_database, compare, print_table
from timebank.cli import run_on_service_loop
from timebank.database import create_pool
from timebank.ledger.models import (
    BATCH_SIZE_MAX,
    LIMIT_ABSOLUTE_MAX,
    PartyKind,
    TransactionKind,
    TransactionRequest,
    UnitKind,
)
from timebank.ledger.store import LedgerStore
from timebank.migrations import apply_migrations
from timebank.policies.models import Schedule, ScheduleKind
from timebank.policies.periods import Period
from timebank.policies.store import PolicyStore
from timebank.pools.models import Charter, LevyPayer, UnitTerms, rule_for, with_levy
from timebank.pools.store import PoolStore
from timebank.settings import Settings

CALLERS = 32
PAYER_ACCOUNTS = 2_000
DEMURRAGE_ACCOUNTS = 100_000
OPEN_CHUNK = 5_000


async def open_member_accounts(
    pool: asyncpg.Pool, community_id: uuid.UUID, unit_id: uuid.UUID, count: int
) -> list[uuid.UUID]:
    """`count` members with an account each, a few thousand per statement (a
    benchmark's set-up; the accounts' log entries come from the usual trigger)."""
    accounts: list[uuid.UUID] = []
    for offset in range(0, count, OPEN_CHUNK):
        size = min(OPEN_CHUNK, count - offset)
        async with pool.acquire() as connection, connection.transaction():
            parties = await connection.fetch(
                "INSERT INTO parties (community_id, kind, display_name) SELECT $1, 'member',"
                " 'member ' || n FROM generate_series(1, $2) AS n RETURNING id",
                community_id,
                size,
            )
            rows = await connection.fetch(
                "INSERT INTO accounts (community_id, unit_id, owner_id, min_balance, max_balance)"
                " SELECT $1, $2, p, $4, $5 FROM unnest($3::uuid[]) AS p RETURNING id",
                community_id,
                unit_id,
                [row["id"] for row in parties],
                -LIMIT_ABSOLUTE_MAX,
                LIMIT_ABSOLUTE_MAX,
            )
        accounts += [row["id"] for row in rows]
    return accounts


async def fund(
    store: LedgerStore, community_id: uuid.UUID, source: uuid.UUID, accounts: list[uuid.UUID]
) -> float:
    """Gives each account 1,000.00 in atomic batches of 1,000; transfers per second."""
    requests = [
        TransactionRequest.transfer(
            id=uuid.uuid4(),
            community_id=community_id,
            unit_code="G",
            from_account=source,
            to_account=account,
            amount=100_000,
            kind=TransactionKind.ISSUANCE,
        )
        for account in accounts
    ]
    started = time.perf_counter()
    for offset in range(0, len(requests), BATCH_SIZE_MAX):
        await store.post_atomic(requests[offset : offset + BATCH_SIZE_MAX])
    return len(requests) / (time.perf_counter() - started)


async def main(quick: bool) -> int:
    duration_s = 1.5 if quick else 3.0
    rounds = 2 if quick else 3
    demurrage_accounts = 10_000 if quick else DEMURRAGE_ACCOUNTS
    rows: list[Row] = []
    async with bench_database() as uri:
        settings = Settings(
            database_url=uri,
            database_pool_min_size=CALLERS,
            database_pool_max_size=CALLERS,
        )
        pool = await create_pool(uri, settings)
        try:
            async with pool.acquire() as connection:
                await apply_migrations(connection)
            store = LedgerStore(pool, settings)
            pools = PoolStore(pool, store, levy_cache_ttl_s=3600)
            community = await store.create_community(f"b-{secrets.token_hex(3)}", "Bench")
            unit = await store.create_unit(
                community.id,
                code="G",
                name="Green",
                kind=UnitKind.CURRENCY,
                decimals=2,
                default_min_balance=-LIMIT_ABSOLUTE_MAX,
                default_max_balance=LIMIT_ABSOLUTE_MAX,
            )
            manager = await store.create_party(community.id, PartyKind.MEMBER, "Manager")
            pot = await pools.create_pool(
                community.id,
                "Fonds",
                Charter(
                    purpose="levies",
                    managers=frozenset({manager.id}),
                    approvals_required=1,
                    units=(UnitTerms("G", 1, 1),),
                ),
            )
            await pools.set_levy(
                community.id,
                pool_id=pot.id,
                unit_code="G",
                category=None,
                rate_bps=100,
                fixed_amount=0,
                paid_by=LevyPayer.PAYER,
            )
            payers = await open_member_accounts(pool, community.id, unit.id, PAYER_ACCOUNTS)

            def transfer(generator: random.Random) -> TransactionRequest:
                payer, payee = generator.sample(payers, 2)
                return TransactionRequest.transfer(
                    id=uuid.uuid4(),
                    community_id=community.id,
                    unit_code="G",
                    from_account=payer,
                    to_account=payee,
                    amount=generator.randint(100, 10_000),
                )

            async def plain(generator: random.Random) -> int:
                await store.post(transfer(generator))
                return 1

            async def levied(generator: random.Random) -> int:
                rules = await pools.levy_rules(community.id)
                request = transfer(generator)
                rule = rule_for(rules, "G", request.category)
                await store.post(with_levy(request, rule) if rule else request)
                return 1

            rows += await compare(
                "transfers, each levied to one hot pool",
                "transfers without levies",
                plain,
                levied,
                callers=CALLERS,
                rounds=rounds,
                duration_s=duration_s,
                target=">= 0.50x",
            )
            rows += await measure_demurrage(
                pool, store, community.id, unit.id, demurrage_accounts, pot.units[0].account_id
            )
        finally:
            await pool.close()
    print_table(rows)
    return 0


async def measure_demurrage(
    pool: asyncpg.Pool,
    store: LedgerStore,
    community_id: uuid.UUID,
    unit_id: uuid.UUID,
    count: int,
    target: uuid.UUID,
) -> list[Row]:
    """Funding `count` accounts in atomic batches (the baseline), then one
    demurrage period over them all."""
    party = await store.community_party(community_id)
    source = await store.open_account(
        community_id,
        owner_id=party.id,
        unit_id=unit_id,
        purpose="issuance",
        min_balance=-LIMIT_ABSOLUTE_MAX,
        max_balance=0,
    )
    accounts = await open_member_accounts(pool, community_id, unit_id, count)
    funding_rate = await fund(store, community_id, source.id, accounts)
    policies = PolicyStore(pool, store)
    today = datetime.now(UTC).date()
    await policies.create_schedule(
        Schedule(
            id=uuid.uuid4(),
            community_id=community_id,
            kind=ScheduleKind.DEMURRAGE,
            unit_code="G",
            period=Period.DAY,
            starts_on=today,
            target_account=target,
            rate_bps=50,
            threshold=10_000,
        )
    )
    started = time.perf_counter()
    (run,) = [
        run
        for run in await policies.run_due(
            today=today + timedelta(days=1), community_id=community_id
        )
        if run.charged_count
    ]
    elapsed = time.perf_counter() - started
    assert run.charged_count >= count, "every funded account is above the threshold"
    rate = run.charged_count / elapsed
    print(
        f"demurrage: {run.charged_count:,} accounts charged {run.charged_total:,} in"
        f" {elapsed:.1f} s",
        file=sys.stderr,
    )
    return [
        Row(f"funding {count:,} accounts, atomic batches", 1, funding_rate, "itself", 1.0, 0, 0),
        Row(
            f"one demurrage run over {count:,} accounts",
            1,
            rate,
            "funding",
            rate / funding_rate,
            elapsed * 1000,
            elapsed * 1000,
        ),
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 accounts, short rounds")
    arguments = parser.parse_args()
    sys.exit(run_on_service_loop(main(arguments.quick)))
