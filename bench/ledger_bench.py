"""Ledger benchmark: one command, one table, every figure next to a baseline
measured in the same run (these machines are noisy, so only ratios travel).

    python -m bench.ledger_bench            # embedded PostgreSQL in a temp dir
    DATABASE_URL=postgresql://... python -m bench.ledger_bench
    python -m bench.ledger_bench --quick    # shorter, smaller: a smoke run

Measures (a) raw SQL double-entry transfers (one statement: insert, two balance
updates, two entries; no checks) as the machine's ceiling, (b) the ledger's single
transfers at 1, 8 and 32 concurrent callers, (c) atomic batches of 100 and 1,000
against a raw set-based batch, from one caller and (1,000) from two, and (d) an
account's balance plus its latest page of history with 1,000,000 postings on that
account, against a bare round trip. Everything runs on the service's event loop
(uvloop's where installed, as `timebank serve` does).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from timebank.cli import run_on_service_loop
from timebank.database import create_pool, database_uri, with_database_name
from timebank.ledger.models import (
    LIMIT_ABSOLUTE_MAX,
    Account,
    PartyKind,
    TransactionRequest,
    UnitKind,
)
from timebank.ledger.store import LedgerStore
from timebank.migrations import apply_migrations
from timebank.settings import Settings

ACCOUNT_COUNT = 10_000
CALLER_COUNTS = (1, 8, 32)
# Atomic batches: (size, concurrent callers). One caller waits for each answer
# before it sends the next batch; two keep the database busy meanwhile, as
# several integrators (or one that pipelines) would.
BATCH_RUNS = ((100, 1), (1_000, 1), (1_000, 2))
# Batches built before the clock starts (beyond these, they are built while timed).
PREPARED_TRANSFERS_MAX = 600_000
STATEMENT_PAGE = 50
# WAL written and recycled before timing (see recycle_wal_segments): about what a
# full run writes before its last measurement.
WAL_WARM_SEGMENTS = 128

RAW_SCHEMA = """
CREATE TABLE bench_raw_accounts (id bigint PRIMARY KEY, balance bigint NOT NULL DEFAULT 0);
CREATE TABLE bench_raw_transfers (
    id uuid PRIMARY KEY, debit_account bigint NOT NULL, credit_account bigint NOT NULL,
    amount bigint NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE bench_raw_entries (
    transfer_id uuid NOT NULL, account_id bigint NOT NULL, amount bigint NOT NULL,
    balance_after bigint NOT NULL);
INSERT INTO bench_raw_accounts (id) SELECT generate_series(1, $ACCOUNTS);
"""
# The ceiling: one statement, one round trip, both balances updated (the pair is
# sorted by the caller so row locks are taken in id order), no checks at all.
RAW_TRANSFER = """
WITH transfer AS (
    INSERT INTO bench_raw_transfers (id, debit_account, credit_account, amount)
    VALUES ($1, $2, $3, $4)
), moved AS (
    UPDATE bench_raw_accounts a SET balance = a.balance + v.delta
      FROM (VALUES ($2::bigint, -$4::bigint), ($3::bigint, $4::bigint)) AS v(id, delta)
     WHERE a.id = v.id
    RETURNING a.id, a.balance, v.delta
)
INSERT INTO bench_raw_entries (transfer_id, account_id, amount, balance_after)
SELECT $1, id, delta, balance FROM moved
"""
RAW_BATCH = """
WITH input AS (
    SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::bigint[])
        AS i(id, debit_account, credit_account, amount)
), transfers AS (
    INSERT INTO bench_raw_transfers (id, debit_account, credit_account, amount)
    SELECT id, debit_account, credit_account, amount FROM input
), legs AS (
    SELECT id, debit_account AS account_id, -amount AS amount FROM input
    UNION ALL SELECT id, credit_account, amount FROM input
), moved AS (
    UPDATE bench_raw_accounts a SET balance = a.balance + d.delta
      FROM (SELECT account_id, sum(amount)::bigint AS delta FROM legs GROUP BY account_id
             ORDER BY account_id) d
     WHERE a.id = d.account_id
    RETURNING a.id, a.balance
)
INSERT INTO bench_raw_entries (transfer_id, account_id, amount, balance_after)
SELECT l.id, l.account_id, l.amount, m.balance FROM legs l JOIN moved m ON m.id = l.account_id
"""


@dataclass(frozen=True)
class Row:
    name: str
    callers: int
    transfers_per_s: float
    baseline: str
    ratio: float
    p50_ms: float
    p99_ms: float
    target: str = ""


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run_callers(
    callers: int,
    duration_s: float,
    operation: Callable[[random.Random], Awaitable[int]],
    *,
    on_measuring: Callable[[bool], None] | None = None,
) -> tuple[float, list[float]]:
    """Runs `callers` concurrent loops of `operation` for duration_s after a short
    warm-up; returns (transfers per second, latencies in ms). `on_measuring` is
    told when the timed part starts (True) and when it has ended (False)."""
    latencies_ms: list[float] = []
    transfers = 0
    measuring = False
    stop_at = 0.0

    async def caller(seed: int) -> None:
        nonlocal transfers
        generator = random.Random(seed)
        while True:
            started = time.perf_counter()
            if stop_at and started >= stop_at:
                return
            count = await operation(generator)
            if measuring:
                latencies_ms.append((time.perf_counter() - started) * 1000)
                transfers += count

    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(caller(seed)) for seed in range(callers)]
    await asyncio.sleep(min(0.5, duration_s / 4))  # warm-up: plans cached, pool filled
    measuring = True
    if on_measuring is not None:
        on_measuring(True)
    began = time.perf_counter()
    stop_at = began + duration_s
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - began
    if on_measuring is not None:
        on_measuring(False)
    return transfers / elapsed, latencies_ms


@contextlib.asynccontextmanager
async def bench_database() -> AsyncIterator[str]:
    """A fresh database on DATABASE_URL's server, or on an embedded server."""
    settings = Settings()
    with tempfile.TemporaryDirectory(prefix="timebank-bench-") as directory:
        if settings.database_url is None:
            settings = settings.model_copy(update={"data_dir": Path(directory)})
        async with database_uri(settings) as uri:
            name = f"timebank_bench_{secrets.token_hex(4)}"
            admin = await asyncpg.connect(with_database_name(uri, "postgres"))
            await admin.execute(f'CREATE DATABASE "{name}"')
            try:
                yield with_database_name(uri, name)
            finally:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await admin.close()


async def recycle_wal_segments(pool: asyncpg.Pool, segments: int) -> None:
    """Brings a fresh server's WAL to a running server's steady state.

    A server that has run through a checkpoint writes its WAL into old segments
    renamed for reuse; a freshly initialised one (the embedded server of each bench
    run) creates each new 16 MB segment by writing zeros to it first, and the
    backend that needs it waits: about 45 ms, once every nine or ten batches of
    1,000 (a fifth of their time). Switching through `segments` segments and
    checkpointing leaves them to be recycled. Needs a superuser (or the grants of
    pg_switch_wal and CHECKPOINT); without them, the run goes on as it is."""
    started = time.perf_counter()
    try:
        async with pool.acquire() as connection:
            for _ in range(segments):
                # A record first: a switch out of an empty segment does nothing.
                await connection.execute("SELECT pg_logical_emit_message(false, 'bench', '')")
                await connection.execute("SELECT pg_switch_wal()")
            await connection.execute("CHECKPOINT")
    except asyncpg.InsufficientPrivilegeError:
        print("WAL not warmed: the bench's role may not switch WAL or checkpoint", file=sys.stderr)
        return
    print(
        f"WAL warmed: {segments} segments written and recycled in "
        f"{time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )


async def open_accounts(store: LedgerStore, count: int) -> tuple[uuid.UUID, list[Account]]:
    community = await store.create_community(f"bench-{secrets.token_hex(3)}", "Benchmark")
    unit = await store.create_unit(
        community.id,
        code="H",
        name="Hours",
        kind=UnitKind.TIME,
        decimals=0,
        default_min_balance=-LIMIT_ABSOLUTE_MAX,
        default_max_balance=LIMIT_ABSOLUTE_MAX,
    )
    party = await store.create_party(community.id, PartyKind.ORGANIZATION, "bench")
    accounts = []
    for index in range(count):
        accounts.append(
            await store.open_account(
                community.id, owner_id=party.id, unit_id=unit.id, purpose=f"a{index}"
            )
        )
    return community.id, accounts


Operation = Callable[[random.Random], Awaitable[int]]


async def compare(
    name: str,
    baseline_name: str,
    baseline: Operation,
    candidate: Operation,
    *,
    callers: int,
    rounds: int,
    duration_s: float,
    target: str = "",
) -> list[Row]:
    """Measures baseline and candidate in alternating rounds, so that both see the
    same weather on a noisy machine; reports medians and the median per-round ratio."""
    baseline_rates, candidate_rates, ratios = [], [], []
    baseline_latencies: list[float] = []
    candidate_latencies: list[float] = []
    for _ in range(rounds):
        rate, latencies = await run_callers(callers, duration_s, baseline)
        baseline_rates.append(rate)
        baseline_latencies.extend(latencies)
        rate, latencies = await run_callers(callers, duration_s, candidate)
        candidate_rates.append(rate)
        candidate_latencies.extend(latencies)
        ratios.append(candidate_rates[-1] / baseline_rates[-1])
    return [
        Row(
            baseline_name,
            callers,
            statistics.median(baseline_rates),
            "itself",
            1.0,
            percentile(baseline_latencies, 0.5),
            percentile(baseline_latencies, 0.99),
        ),
        Row(
            name,
            callers,
            statistics.median(candidate_rates),
            baseline_name.split(" (")[0].replace("raw SQL ", "raw "),
            statistics.median(ratios),
            percentile(candidate_latencies, 0.5),
            percentile(candidate_latencies, 0.99),
            target,
        ),
    ]


async def main(quick: bool, read_postings: int) -> int:
    duration_s = 1.5 if quick else 3.0
    rounds = 1 if quick else 3
    rows: list[Row] = []
    async with bench_database() as uri:
        settings = Settings(
            database_url=uri,
            database_pool_min_size=max(CALLER_COUNTS),
            database_pool_max_size=max(CALLER_COUNTS),
        )
        # One pool, configured as the service configures it, for the ceiling and the ledger.
        pool = await create_pool(uri, settings)
        async with pool.acquire() as connection:
            await apply_migrations(connection)
            await connection.execute(RAW_SCHEMA.replace("$ACCOUNTS", str(ACCOUNT_COUNT)))
        store = LedgerStore(pool, settings)
        community_id, accounts = await open_accounts(store, ACCOUNT_COUNT)
        async with pool.acquire() as connection:
            await connection.execute("ANALYZE")
        await recycle_wal_segments(pool, 8 if quick else WAL_WARM_SEGMENTS)
        wal_at_start = await pool.fetchval("SELECT pg_current_wal_lsn()")
        print(
            f"server: PostgreSQL {await pool.fetchval('SHOW server_version')}, "
            f"{ACCOUNT_COUNT:,} accounts, {rounds} alternating round(s) of "
            f"{duration_s:.1f} s per measurement",
            file=sys.stderr,
        )

        def random_transfer(generator: random.Random) -> TransactionRequest:
            payer, payee = generator.sample(accounts, 2)
            return TransactionRequest.transfer(
                id=uuid.uuid4(),
                community_id=community_id,
                unit_code="H",
                from_account=payer.id,
                to_account=payee.id,
                amount=generator.randint(1, 90),
            )

        async def raw_transfer(generator: random.Random) -> int:
            debit, credit = sorted(generator.sample(range(1, ACCOUNT_COUNT + 1), 2))
            await pool.execute(RAW_TRANSFER, uuid.uuid4(), debit, credit, generator.randint(1, 90))
            return 1

        async def ledger_transfer(generator: random.Random) -> int:
            await store.post(random_transfer(generator))
            return 1

        for callers in CALLER_COUNTS:
            rows.extend(
                await compare(
                    "ledger single transfer",
                    "raw SQL transfer (ceiling)",
                    raw_transfer,
                    ledger_transfer,
                    callers=callers,
                    rounds=rounds,
                    duration_s=duration_s,
                    target=">= 0.5x raw" if callers == 32 else "",
                )
            )

        generator = random.Random(2026)
        for size, callers in BATCH_RUNS:
            # Requests are built before the clock starts (building them is the client's
            # work; the raw batch gets its arrays ready-made too): as many as a short
            # calibration says the measurement will use, with a margin.
            calibration = [[random_transfer(generator) for _ in range(size)] for _ in range(3)]
            started = time.perf_counter()
            for batch in calibration:
                await store.post_atomic(batch)
            calibrated_rate = 3 * size / (time.perf_counter() - started)
            batch_count = min(
                PREPARED_TRANSFERS_MAX // size,
                int(calibrated_rate * callers * duration_s * rounds * 1.5 / size) + 4,
            )
            prepared = [
                [random_transfer(generator) for _ in range(size)] for _ in range(batch_count)
            ]
            # The raw batch has no lock order: concurrent ones could deadlock. Each
            # caller of it gets a lane of its own, the accounts whose number is its
            # lane modulo the callers (a ceiling: no waits between callers), while
            # the ledger's callers draw from all accounts and wait for each other.
            lanes = [range(lane + 1, ACCOUNT_COUNT + 1, callers) for lane in range(callers)]
            raw_prepared = [
                [
                    [sorted(generator.sample(lane, 2)) for _ in range(size)]
                    for _ in range(batch_count * 3 // callers)
                ]
                for lane in lanes
            ]
            lane_of: dict[random.Random, int] = {}

            async def raw_batch(
                generator: random.Random,
                size: int = size,
                raw_prepared: list[list[list[list[int]]]] = raw_prepared,
                lanes: list[range] = lanes,
                lane_of: dict[random.Random, int] = lane_of,
            ) -> int:
                # Each run makes its callers' generators afresh: consecutive numbers.
                lane = lane_of.setdefault(generator, len(lane_of)) % len(lanes)
                pairs = (
                    raw_prepared[lane].pop()
                    if raw_prepared[lane]
                    else [sorted(generator.sample(lanes[lane], 2)) for _ in range(size)]
                )
                await pool.execute(
                    RAW_BATCH,
                    [uuid.uuid4() for _ in range(size)],
                    [pair[0] for pair in pairs],
                    [pair[1] for pair in pairs],
                    [generator.randint(1, 90) for _ in range(size)],
                )
                return size

            async def ledger_batch(
                generator: random.Random,
                size: int = size,
                prepared: list[list[TransactionRequest]] = prepared,
            ) -> int:
                batch = (
                    prepared.pop()
                    if prepared
                    else [random_transfer(generator) for _ in range(size)]
                )
                await store.post_atomic(batch)
                return size

            rows.extend(
                await compare(
                    f"ledger atomic batch of {size}",
                    f"raw SQL batch of {size} (ceiling)",
                    raw_batch,
                    ledger_batch,
                    callers=callers,
                    rounds=rounds,
                    duration_s=duration_s,
                    target=">= 20,000/s" if size == 1_000 else "",
                )
            )

        wal_written = await pool.fetchval(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1)", wal_at_start
        )
        print(f"WAL written while timed: {wal_written / 2**20:,.0f} MB", file=sys.stderr)
        rows.extend(await measure_reads(store, pool, community_id, accounts, read_postings, quick))
        await pool.close()
    print_table(rows)
    return 0


async def measure_reads(
    store: LedgerStore,
    pool: asyncpg.Pool,
    community_id: uuid.UUID,
    accounts: list[Account],
    read_postings: int,
    quick: bool,
) -> list[Row]:
    """Fills one account with read_postings postings (through the ledger's own atomic
    batches), then times its balance plus latest statement page."""
    hot = accounts[0]
    others = accounts[1:1001]
    started = time.perf_counter()
    filled = (await store.account(hot.id)).posting_count
    direction = 1
    while filled < read_postings:
        size = min(1_000, read_postings - filled)
        batch = []
        for index in range(size):
            other = others[index % len(others)]
            payer, payee = (hot, other) if direction > 0 else (other, hot)
            batch.append(
                TransactionRequest.transfer(
                    id=uuid.uuid4(),
                    community_id=community_id,
                    unit_code="H",
                    from_account=payer.id,
                    to_account=payee.id,
                    amount=1,
                )
            )
        await store.post_atomic(batch)
        direction = -direction
        filled += size
    fill_s = time.perf_counter() - started
    print(
        f"filled {read_postings} postings on one account in {fill_s:.1f} s "
        f"({read_postings / fill_s:,.0f} transfers/s)",
        file=sys.stderr,
    )
    # What the server does by itself in the minutes after a bulk load, done now:
    # autovacuum's vacuum and analyze of the filled tables, and a checkpoint. Timed
    # while they run on their own, the reads measured them (p99 3 ms against 1.3 ms
    # once they were done, on a 2-core machine).
    settled = time.perf_counter()
    async with pool.acquire() as connection:
        await connection.execute("VACUUM (ANALYZE) postings, transactions, accounts, log_entries")
        await connection.execute("CHECKPOINT")
    print(
        f"vacuumed, analyzed and checkpointed in {time.perf_counter() - settled:.1f} s",
        file=sys.stderr,
    )

    iterations = 500 if quick else 3_000

    async def timed(operation: Callable[[], Awaitable[object]]) -> list[float]:
        for _ in range(50):
            await operation()
        samples = []
        for _ in range(iterations):
            began = time.perf_counter()
            await operation()
            samples.append((time.perf_counter() - began) * 1000)
        return samples

    async def balance_and_latest_page() -> object:
        page = await store.statement(community_id, hot.id, limit=STATEMENT_PAGE)
        assert page.account.posting_count >= read_postings
        assert len(page.lines) == STATEMENT_PAGE
        return page

    round_trip = await timed(lambda: pool.fetchval("SELECT 1"))
    reads = await timed(balance_and_latest_page)
    base_p99 = percentile(round_trip, 0.99)
    return [
        Row(
            "bare round trip SELECT 1 (baseline)",
            1,
            0.0,
            "itself",
            1.0,
            percentile(round_trip, 0.5),
            base_p99,
        ),
        Row(
            f"balance + latest {STATEMENT_PAGE} of {read_postings:,} postings",
            1,
            0.0,
            "round trip p99",
            percentile(reads, 0.99) / base_p99,
            percentile(reads, 0.5),
            percentile(reads, 0.99),
            "p99 < 2 ms",
        ),
    ]


def print_table(rows: list[Row]) -> None:
    header = (
        f"{'measurement':<44} {'callers':>7} {'transfers/s':>12} {'vs':<26} {'ratio':>6} "
        f"{'p50 ms':>8} {'p99 ms':>8}  target"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        rate = f"{row.transfers_per_s:,.0f}" if row.transfers_per_s else "-"
        print(
            f"{row.name:<44} {row.callers:>7} {rate:>12} {row.baseline:<26} "
            f"{row.ratio:>5.2f}x {row.p50_ms:>8.2f} {row.p99_ms:>8.2f}  {row.target}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short run, 50,000 read postings")
    parser.add_argument(
        "--read-postings",
        type=int,
        default=None,
        help="postings on the read-benchmark account (default 1,000,000)",
    )
    arguments = parser.parse_args()
    read_postings = arguments.read_postings or (50_000 if arguments.quick else 1_000_000)
    raise SystemExit(run_on_service_loop(main(arguments.quick, read_postings)))
