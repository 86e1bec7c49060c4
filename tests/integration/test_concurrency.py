"""Many concurrent workers hammering a few hot accounts with tight limits: every
invariant holds, every acknowledged write is there exactly once, nothing else is,
and no deadlock or serialization failure ever reaches a caller."""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field

import asyncpg

from tests.conftest import CommunityFixture
from tests.integration.helpers import postings, transfer
from timebank.ledger.errors import (
    AlreadyReversed,
    LimitExceeded,
    NotPending,
    NotPosted,
)
from timebank.ledger.invariants import check_invariants
from timebank.ledger.models import Account, Outcome, TransactionRequest
from timebank.ledger.store import LedgerStore

WORKERS = 20
OPERATIONS_PER_WORKER = int(os.environ.get("TIMEBANK_CONCURRENCY_OPERATIONS", "60"))
HOT_ACCOUNTS = 4
# Refusals the rules are expected to make under contention; anything else fails.
EXPECTED_REFUSALS = (LimitExceeded, NotPending, NotPosted, AlreadyReversed)


@dataclass
class Acknowledged:
    """What callers were told succeeded, by transaction id."""

    requests: dict[uuid.UUID, TransactionRequest] = field(default_factory=dict)
    confirmed: set[uuid.UUID] = field(default_factory=set)
    voided: set[uuid.UUID] = field(default_factory=set)
    reversals: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)  # reversal -> original
    refusals: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)


async def worker(
    seed: int,
    store: LedgerStore,
    community: CommunityFixture,
    accounts: list[Account],
    acknowledged: Acknowledged,
) -> None:
    generator = random.Random(seed)
    mine: list[TransactionRequest] = []

    def random_transfer(pending: bool) -> TransactionRequest:
        payer, payee = generator.sample(accounts, 2)
        return transfer(community.id, payer, payee, generator.randint(1, 60), pending=pending)

    for _ in range(OPERATIONS_PER_WORKER):
        choice = generator.random()
        try:
            if choice < 0.35:
                request = random_transfer(pending=generator.random() < 0.4)
                # The same request twice at once, as a client retrying on a timeout would.
                # Each copy is judged on its own: a refusal of one does not stop the other.
                results = await asyncio.gather(
                    store.post(request), store.post(request), return_exceptions=True
                )
                successes = [r for r in results if not isinstance(r, BaseException)]
                refusals = [r for r in results if isinstance(r, BaseException)]
                for refusal in refusals:
                    if not isinstance(refusal, EXPECTED_REFUSALS):
                        raise refusal
                    acknowledged.refusals[refusal.code] += 1
                if not successes:
                    continue
                outcomes = sorted(result.outcome for result in successes)
                assert outcomes in ([Outcome.CREATED], [Outcome.CREATED, Outcome.EXISTS])
                acknowledged.requests[request.id] = request
                mine.append(request)
            elif choice < 0.5:
                batch = [random_transfer(pending=False) for _ in range(3)]
                batch.append(
                    postings(
                        community.id,
                        *zip(generator.sample(accounts, 3), (-30, 20, 10), strict=True),
                        unit_code="H",
                    )
                )
                await store.post_atomic(batch)
                for request in batch:
                    acknowledged.requests[request.id] = request
                    mine.append(request)
            elif choice < 0.68 and mine:
                target = generator.choice(mine)
                await store.confirm(community.id, target.id)
                acknowledged.confirmed.add(target.id)
            elif choice < 0.8 and mine:
                target = generator.choice(mine)
                await store.void(community.id, target.id)
                acknowledged.voided.add(target.id)
            elif mine:
                target = generator.choice(mine)
                result = await store.reverse(community.id, target.id)
                acknowledged.reversals[result.id] = target.id
            acknowledged.outcomes["ok"] += 1
        except EXPECTED_REFUSALS as refusal:
            acknowledged.refusals[refusal.code] += 1


async def test_concurrent_workers_keep_every_invariant(
    store: LedgerStore, community: CommunityFixture, pool: asyncpg.Pool
) -> None:
    """Concurrent transfers, pending, confirms, voids, reversals and batches on hot
    accounts: balances equal exactly what was acknowledged, invariants hold."""
    accounts = [
        await community.member_account(f"hot {index}", min_balance=-400, max_balance=400)
        for index in range(HOT_ACCOUNTS)
    ]
    acknowledged = Acknowledged()
    await asyncio.gather(
        *(worker(seed, store, community, accounts, acknowledged) for seed in range(WORKERS))
    )
    # Enough of the work succeeded for the check to mean something.
    assert acknowledged.outcomes["ok"] > WORKERS * OPERATIONS_PER_WORKER // 5
    assert acknowledged.refusals["limit_exceeded"] > 0, "the limits were never tested"
    assert not acknowledged.confirmed & acknowledged.voided

    expected_balances: Counter[uuid.UUID] = Counter()
    for request in acknowledged.requests.values():
        if not request.pending or request.id in acknowledged.confirmed:
            for posting in request.postings:
                expected_balances[posting.account_id] += posting.amount
    for original in acknowledged.reversals.values():
        for posting in acknowledged.requests[original].postings:
            expected_balances[posting.account_id] -= posting.amount
    for account in accounts:
        assert (await store.account(account.id)).balance == expected_balances[account.id]

    rows = await pool.fetch(
        "SELECT t.id, t.state, t.reverses_id, count(p.account_id) AS postings"
        "  FROM transactions t LEFT JOIN postings p"
        "    ON p.community_id = t.community_id AND p.transaction_id = t.id"
        " WHERE t.community_id = $1 GROUP BY t.id, t.state, t.reverses_id",
        community.id,
    )
    stored = {row["id"]: row for row in rows}
    assert set(stored) == set(acknowledged.requests) | set(acknowledged.reversals)
    for transaction_id, request in acknowledged.requests.items():
        row = stored[transaction_id]
        posted = not request.pending or transaction_id in acknowledged.confirmed
        assert row["postings"] == (len(request.postings) if posted else 0)
        if transaction_id in acknowledged.voided:
            assert row["state"] == "voided"
    for reversal_id, original in acknowledged.reversals.items():
        assert stored[reversal_id]["reverses_id"] == original
    async with pool.acquire() as connection:
        assert await check_invariants(connection) == []
