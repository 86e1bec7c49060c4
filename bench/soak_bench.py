"""Sustained load: the real service at half its measured peak HTTP rate for ten
minutes, its p99 latency and memory sampled every 10 s.

    python -m bench.soak_bench                  # 10 minutes, embedded PostgreSQL
    python -m bench.soak_bench --minutes 30     # longer
    python -m bench.soak_bench --quick          # about a minute, a smaller community
    DATABASE_URL=postgresql://... python -m bench.soak_bench   # a scratch database there

Starts `timebank serve` and sets a community up through the API as
bench.http_bench does, measures the peak rate of POST /v1/transactions with 32
keep-alive clients, then offers Poisson arrivals at 50% of it (latency counted from
each request's intended start, so a stall counts against every request it
delays). Every 10 s it prints the window's p50 and p99 and the service process's
resident memory (RSS, from /proc). The verdict: the last minute's p99 within 1.5x
of the first minute's, RSS growth (first sample to last) under 10%, no refused
request, every 201 stored once and the ledger's invariants holding. Exit code 1
when any of these fails. Each window also shows the cores kept busy by the bench,
the service, PostgreSQL and other work on the machine: on a shared machine a
latency failure with a busy "other" column is the neighbours', not ours.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from dataclasses import dataclass, field

import aiohttp

from bench.http_bench import (
    BUSY_MACHINE_CORES,
    CALLERS,
    CONNECTIONS_MAX,
    FULL,
    LATENCY_LOAD_FRACTION,
    QUICK,
    Community,
    CpuMeter,
    CpuSample,
    Mode,
    Tally,
    bench_service,
    http_transfer,
    open_loop,
    open_loop_timed,
    set_up_community,
)
from bench.http_client import KeepAliveClient
from bench.ledger_bench import percentile, recycle_wal_segments, run_callers
from timebank.database import create_pool
from timebank.ledger.invariants import check_invariants
from timebank.logging import configure_logging
from timebank.settings import Settings

SAMPLE_INTERVAL_S = 10.0
WARM_UP_S = 10.0
P99_GROWTH_MAX = 1.5
RSS_GROWTH_MAX = 0.10
# The first and last "minute" compared: a minute, or a third of a shorter run.
COMPARED_SPAN_S = 60.0
MINUTES_MAX = 50
# Tokens are made once at set-up: they must outlive the run.
SERVICE_SETTINGS = {"TIMEBANK_ACCESS_TOKEN_TTL_S": "3600", "TIMEBANK_LOG_LEVEL": "warning"}


@dataclass(frozen=True)
class MemorySample:
    at_s: float
    rss_bytes: int
    created: int
    errors: int
    cpu: CpuSample | None


@dataclass
class Soak:
    peak_per_s: float = 0.0
    offered_per_s: float = 0.0
    duration_s: float = 0.0
    latencies: list[tuple[float, float]] = field(default_factory=list)
    memory: list[MemorySample] = field(default_factory=list)
    start: MemorySample | None = None
    tally: Tally = field(default_factory=Tally)
    transactions_stored: int = 0
    invariants_broken: list[str] = field(default_factory=list)


def resident_bytes(pid: int) -> int:
    """The process's resident set size, from /proc (Linux)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


async def sample_memory(pid: int, meter: CpuMeter, soak: Soak, began: float, samples: int) -> None:
    """One sample at the end of each window of the run."""
    for number in range(1, samples + 1):
        await asyncio.sleep(max(0.0, began + number * SAMPLE_INTERVAL_S - time.perf_counter()))
        soak.memory.append(
            MemorySample(
                time.perf_counter() - began,
                resident_bytes(pid),
                soak.tally.created,
                sum(soak.tally.errors.values()),
                await meter.sample(),
            )
        )


def cores_used(
    before: CpuSample | None, after: CpuSample | None
) -> tuple[float, float, float, float] | None:
    """Cores kept busy between two samples: by the bench, the service, PostgreSQL
    and other work on the machine (noise)."""
    if before is None or after is None:
        return None
    bench = after.bench_s - before.bench_s
    service = after.service_s - before.service_s
    database = 0.0
    if before.database_s is not None and after.database_s is not None:
        database = sum(
            used - before.database_s.get(pid, 0.0) for pid, used in after.database_s.items()
        )
    others = max(0.0, after.machine_busy_s - before.machine_busy_s - bench - service - database)
    elapsed = after.at_s - before.at_s
    return bench / elapsed, service / elapsed, database / elapsed, others / elapsed


def window_cores(soak: Soak) -> list[tuple[float, float, float, float] | None]:
    """cores_used over each window of the run."""
    starts = [soak.start, *soak.memory[:-1]]
    return [
        cores_used(start.cpu if start else None, sample.cpu)
        for start, sample in zip(starts, soak.memory, strict=True)
    ]


async def run_soak(
    client: KeepAliveClient,
    community: Community,
    pid: int,
    meter: CpuMeter,
    mode: Mode,
    minutes: float,
) -> Soak:
    soak = Soak(duration_s=minutes * 60)
    operation = http_transfer(client, community, soak.tally)
    rates = []
    for number in range(mode.rounds):
        rate, _ = await run_callers(CALLERS, mode.round_s, operation)
        rates.append(rate)
        print(f"peak round {number + 1}/{mode.rounds}: {rate:,.0f}/s", file=sys.stderr)
    soak.peak_per_s = max(rates)
    soak.offered_per_s = soak.peak_per_s * LATENCY_LOAD_FRACTION
    print(
        f"soaking at {soak.offered_per_s:,.0f}/s for {minutes:g} min (warm-up {WARM_UP_S:.0f} s)",
        file=sys.stderr,
    )
    await open_loop(operation, soak.offered_per_s, WARM_UP_S, seed=1)
    began = time.perf_counter()
    windows = round(soak.duration_s / SAMPLE_INTERVAL_S)
    first = MemorySample(0.0, resident_bytes(pid), 0, 0, await meter.sample())
    sampler = asyncio.create_task(sample_memory(pid, meter, soak, began, windows))
    soak.latencies = await open_loop_timed(operation, soak.offered_per_s, soak.duration_s, seed=2)
    await sampler
    soak.start = first
    return soak


async def verify(database_uri: str, community: Community, soak: Soak) -> None:
    """Every 201 of the whole run is one stored transaction; invariants hold."""
    pool = await create_pool(database_uri, Settings(database_url=database_uri))
    try:
        async with pool.acquire() as connection:
            soak.transactions_stored = await connection.fetchval(
                "SELECT count(*) FROM transactions WHERE community_id = $1", community.id
            )
            violations = await check_invariants(connection)
    finally:
        await pool.close()
    soak.invariants_broken = [violation.describe() for violation in violations]


def latencies_between(soak: Soak, start_s: float, end_s: float) -> list[float]:
    return [latency for at_s, latency in soak.latencies if start_s <= at_s < end_s]


def print_windows(soak: Soak) -> None:
    header = (
        f"{'window':>11} {'requests':>9} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>8} "
        f"{'RSS MiB':>8} {'errors':>6}  cores: {'bench':>5} {'svc':>5} {'pg':>5} {'other':>5}"
    )
    print(header)
    print("-" * len(header))
    for number, (sample, cores) in enumerate(zip(soak.memory, window_cores(soak), strict=True)):
        start_s = number * SAMPLE_INTERVAL_S
        window = latencies_between(soak, start_s, start_s + SAMPLE_INTERVAL_S)
        cells = (
            f"{percentile(window, 0.5):>7.2f} {percentile(window, 0.99):>7.2f} {max(window):>8.1f}"
            if window
            else f"{'-':>7} {'-':>7} {'-':>8}"
        )
        cores_cells = " ".join(f"{value:>5.2f}" for value in cores) if cores else ""
        print(
            f"{start_s:>5.0f}-{start_s + SAMPLE_INTERVAL_S:<4.0f}s {len(window):>9,} {cells} "
            f"{sample.rss_bytes / 2**20:>8.1f} {sample.errors:>6}         {cores_cells}"
        )


def warn_if_busy(soak: Soak) -> None:
    """Says when other work took a large share of the machine: then the latency
    figures say more about the neighbours than about the service."""
    others = [cores[3] for cores in window_cores(soak) if cores is not None]
    busy = [value for value in others if value > BUSY_MACHINE_CORES]
    if busy:
        print(
            f"WARNING: other work kept more than {BUSY_MACHINE_CORES} cores busy in"
            f" {len(busy)} of {len(others)} windows (median {statistics.median(others):.2f}"
            f" of {os.cpu_count()} cores): the latency figures are noisy"
        )


def checks(soak: Soak) -> list[tuple[str, str, str, bool]]:
    span_s = min(COMPARED_SPAN_S, soak.duration_s / 3)
    first = percentile(latencies_between(soak, 0, span_s), 0.99)
    last = percentile(latencies_between(soak, soak.duration_s - span_s, soak.duration_s), 0.99)
    rss_first, rss_last = soak.memory[0].rss_bytes, soak.memory[-1].rss_bytes
    growth = rss_last / rss_first - 1
    errors = ", ".join(f"{count} x {code}" for code, count in soak.tally.errors.most_common())
    return [
        (
            f"p99 last {span_s:.0f} s / first {span_s:.0f} s",
            f"<= {P99_GROWTH_MAX}",
            f"{last:.2f} / {first:.2f} ms = {last / first:.2f}",
            last <= P99_GROWTH_MAX * first,
        ),
        (
            "service RSS growth, first to last sample",
            f"< {RSS_GROWTH_MAX:.0%}",
            f"{rss_first / 2**20:.1f} -> {rss_last / 2**20:.1f} MiB = {growth:+.1%}",
            growth < RSS_GROWTH_MAX,
        ),
        ("refused or failed requests", "none", errors or "0", not soak.tally.errors),
        (
            "transactions stored = 201s",
            f"{soak.tally.created:,}",
            f"{soak.transactions_stored:,}",
            soak.transactions_stored == soak.tally.created,
        ),
        (
            "ledger invariants (timebank check)",
            "hold",
            "; ".join(soak.invariants_broken) or "hold",
            not soak.invariants_broken,
        ),
    ]


def print_summary(soak: Soak) -> bool:
    print(
        f"peak {soak.peak_per_s:,.0f} transfers/s ({CALLERS} clients); offered "
        f"{soak.offered_per_s:,.0f}/s ({LATENCY_LOAD_FRACTION:.0%}) for "
        f"{soak.duration_s / 60:g} min: {len(soak.latencies):,} requests, sampled every "
        f"{SAMPLE_INTERVAL_S:.0f} s"
    )
    print_windows(soak)
    warn_if_busy(soak)
    print()
    verdicts = checks(soak)
    for name, target, value, passed in verdicts:
        print(f"{name:<42} target {target:<8} measured {value:<34} {'PASS' if passed else 'FAIL'}")
    return all(passed for *_, passed in verdicts)


async def main(mode: Mode, minutes: float) -> int:
    configure_logging(Settings(log_format="console", log_level="warning"))
    async with bench_service(SERVICE_SETTINGS) as bench:
        connector = aiohttp.TCPConnector(limit=CONNECTIONS_MAX, limit_per_host=CONNECTIONS_MAX)
        async with aiohttp.ClientSession(bench.service.url, connector=connector) as session:
            community = await set_up_community(session, bench.operator_email, mode)
            pool = await create_pool(bench.database_uri, Settings(database_url=bench.database_uri))
            try:
                await pool.execute("ANALYZE")
                # As a running server writes WAL: into recycled segments, as in
                # http_bench. A fresh server fills each new segment with zeros first,
                # which would slow the first minute, the one the last is compared with.
                await recycle_wal_segments(pool, mode.wal_warm_segments)
                meter = await CpuMeter.open(bench.service.pid, pool)
                client = KeepAliveClient.for_url(bench.service.url, CONNECTIONS_MAX)
                try:
                    soak = await run_soak(
                        client, community, bench.service.pid, meter, mode, minutes
                    )
                finally:
                    await client.close()
            finally:
                await pool.close()
        await verify(bench.database_uri, community, soak)
    return 0 if print_summary(soak) else 1


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=None, help="length of the soak (10)")
    parser.add_argument("--quick", action="store_true", help="a one-minute smoke run")
    arguments = parser.parse_args()
    if arguments.minutes is None:
        arguments.minutes = 1.0 if arguments.quick else 10.0
    if not 0.5 <= arguments.minutes <= MINUTES_MAX:
        parser.error(f"--minutes must be between 0.5 and {MINUTES_MAX}")
    return arguments


if __name__ == "__main__":
    arguments = _arguments()
    mode = QUICK if arguments.quick else FULL
    raise SystemExit(asyncio.run(main(mode, arguments.minutes)))
