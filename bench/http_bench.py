"""HTTP benchmark: the real service in its own process, driven over loopback, next
to the ledger called directly in the same run (these machines are noisy, so only
ratios travel).

    python -m bench.http_bench              # embedded PostgreSQL in a temp dir
    DATABASE_URL=postgresql://... python -m bench.http_bench   # a scratch database there
    python -m bench.http_bench --quick      # shorter, smaller: a smoke run
    python -m bench.http_bench --profile server.svg   # and py-spy the service (needs py-spy)

Starts `python -m timebank serve` on 127.0.0.1 against a scratch database, sets a
community up through the API (an operator made with `timebank admin
create-operator`, a time unit, members with passwords, each also the agent of a
few organizations so that there are many accounts to pay from), then measures in
alternating rounds (a) LedgerStore.post with 32 concurrent callers in this process
and (b) POST /v1/transactions with 32 concurrent clients over 32 keep-alive
connections (bench/http_client.py, a lean client: it shares the cores with the
service it measures), on the same accounts, random payer and payee each time. Then it
offers Poisson arrivals at half the best HTTP rate and reports latency from each
request's intended start (so a stall counts against every request it delays).

Besides rates and latencies it prints the CPU each transfer costs in this
process, in the service and in PostgreSQL (from /proc, when PostgreSQL runs here),
and how busy other work kept the machine meanwhile. The service and the direct
ledger read their other settings from the same environment (so, e.g.,
TIMEBANK_COALESCE_IN_FLIGHT_MAX=2 applies to both). Exit code 1 when something is
broken (a refused request, a transaction missing or extra, a broken ledger
invariant); a missed performance target is reported, not an exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bench.http_client import KeepAliveClient
from bench.ledger_bench import bench_database, percentile, recycle_wal_segments, run_callers
from bench.procfs import machine_busy_s, process_stat
from timebank.database import create_pool
from timebank.ledger.errors import LedgerError
from timebank.ledger.invariants import check_invariants
from timebank.ledger.models import TransactionRequest
from timebank.ledger.store import LedgerStore
from timebank.logging import configure_logging
from timebank.settings import Settings

CALLERS = 32
CONNECTIONS_MAX = 32
HOURS = "HOUR"
# Limits wide enough that a random walk of transfers never meets them.
BALANCE_LIMIT = 1_000_000_000
AMOUNT_MAX = 90
PASSWORD = "bench correct horse battery"  # noqa: S105 (scratch members' password)
SETUP_CONCURRENCY = 4
SERVER_START_TIMEOUT_S = 60.0
SERVER_STOP_TIMEOUT_S = 15.0
LATENCY_LOAD_FRACTION = 0.5
LATENCY_WARM_UP_S = 1.0
RATIO_TARGET = 0.4
LATENCY_P99_TARGET_MS = 25.0
PROFILE_RATE_HZ = 250
PROFILE_FORMATS = {".svg": "flamegraph", ".json": "speedscope"}
PROFILE_SUMMARY_LINES = 40
# Frames in nearly every sample (the event loop, the CLI) say nothing.
PROFILE_SCAFFOLDING_SHARE = 0.75
LINE_NUMBER = re.compile(r":\d+\)$")
LOG_TAIL_LINES = 30
# Other work busier than this during a round makes the figures doubtful.
BUSY_MACHINE_CORES = 0.3


@dataclass(frozen=True)
class Mode:
    members: int
    # Accounts each member may pay from: its own and those of organizations it acts for.
    accounts_per_member: int
    rounds: int
    round_s: float
    latency_s: float
    serial_requests: int
    # WAL segments (16 MB) written and recycled before timing (recycle_wal_segments):
    # more than the run writes (a full run about 500 MB, 2.2 KB a transfer).
    wal_warm_segments: int


FULL = Mode(
    members=32,
    accounts_per_member=16,
    rounds=3,
    round_s=5.0,
    latency_s=10.0,
    serial_requests=300,
    wal_warm_segments=48,
)
QUICK = Mode(
    members=8,
    accounts_per_member=16,
    rounds=1,
    round_s=2.0,
    latency_s=3.0,
    serial_requests=100,
    wal_warm_segments=16,
)


@dataclass(frozen=True)
class Payer:
    account_id: uuid.UUID
    # The request headers of the member who may move this account.
    headers: dict[str, str]


@dataclass
class Community:
    slug: str
    id: uuid.UUID
    operator_headers: dict[str, str]
    payers: list[Payer] = field(default_factory=list)


@dataclass
class Tally:
    """Every attempt, warm-ups included: successes and refusals by status and code."""

    created: int = 0
    errors: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class CpuPerTransfer:
    """CPU microseconds each transfer cost in this process, in the service process
    and in PostgreSQL's processes; `others_cores`: the rest of the machine's load
    meanwhile (other people's work on a shared machine: noise, not ours)."""

    bench_us: float
    service_us: float
    database_us: float | None
    others_cores: float

    @property
    def total_us(self) -> float:
        return self.bench_us + self.service_us + (self.database_us or 0.0)


@dataclass
class Measured:
    """One kind of measurement over all its rounds."""

    rates: list[float] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    cpu: list[CpuPerTransfer] = field(default_factory=list)

    def cpu_median(self) -> CpuPerTransfer | None:
        if not self.cpu:
            return None
        databases = [c.database_us for c in self.cpu if c.database_us is not None]
        return CpuPerTransfer(
            statistics.median(c.bench_us for c in self.cpu),
            statistics.median(c.service_us for c in self.cpu),
            statistics.median(databases) if databases else None,
            statistics.median(c.others_cores for c in self.cpu),
        )


# CPU accounting from /proc (Linux only; the figures are left out elsewhere).

# PostgreSQL's own processes that work for every database (and so for ours).
DATABASE_PROCESSES = """
SELECT pid FROM pg_stat_activity
 WHERE datname = current_database()
    OR backend_type IN ('walwriter', 'checkpointer', 'background writer', 'io worker')
"""


def _postmaster_is_here(data_directory: str | None) -> bool:
    """Whether the server's data directory is on this machine, its postmaster alive."""
    if data_directory is None:
        return False
    try:
        postmaster_pid = int(Path(data_directory, "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    return Path(f"/proc/{postmaster_pid}").exists()


@dataclass(frozen=True)
class CpuSample:
    at_s: float
    bench_s: float
    service_s: float
    # Per PostgreSQL process: one that exits between two samples takes its time with it.
    database_s: dict[int, float] | None
    machine_busy_s: float


class CpuMeter:
    """Samples the CPU time of this process, the service and PostgreSQL (when it runs
    on this machine: its data directory is here and its postmaster alive)."""

    def __init__(self, service_pid: int, pool: asyncpg.Pool, database_is_local: bool) -> None:
        self._service_pid = service_pid
        self._pool = pool
        self._database_is_local = database_is_local

    @classmethod
    async def open(cls, service_pid: int, pool: asyncpg.Pool) -> CpuMeter:
        data_directory = None
        with contextlib.suppress(asyncpg.PostgresError):
            # Superusers (and pg_read_all_settings) only: otherwise no database figures.
            data_directory = await pool.fetchval("SELECT current_setting('data_directory')")
        return cls(service_pid, pool, _postmaster_is_here(data_directory))

    async def sample(self) -> CpuSample | None:
        database: dict[int, float] | None = None
        try:
            if self._database_is_local:
                database = {}
                for row in await self._pool.fetch(DATABASE_PROCESSES):
                    process = process_stat(row["pid"])
                    if process is not None:
                        database[row["pid"]] = process.cpu_s
            service = process_stat(self._service_pid)
            if service is None:
                return None
            return CpuSample(
                time.perf_counter(),
                time.process_time(),
                service.cpu_s,
                database,
                machine_busy_s(),
            )
        except (OSError, ValueError, IndexError):
            return None


def cpu_per_transfer(
    before: CpuSample | None, after: CpuSample | None, transfers: int
) -> CpuPerTransfer | None:
    if before is None or after is None or transfers <= 0:
        return None
    bench = after.bench_s - before.bench_s
    service = after.service_s - before.service_s
    database = None
    if before.database_s is not None and after.database_s is not None:
        database = sum(
            used - before.database_s.get(pid, 0.0) for pid, used in after.database_s.items()
        )
    ours = bench + service + (database or 0.0)
    others = max(0.0, after.machine_busy_s - before.machine_busy_s - ours)
    scale = 1e6 / transfers
    return CpuPerTransfer(
        bench * scale,
        service * scale,
        None if database is None else database * scale,
        others / (after.at_s - before.at_s),
    )


# The service, in a process of its own.


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def service_environment(database_uri: str, data_dir: Path) -> dict[str, str]:
    environment = {
        key: value for key, value in os.environ.items() if key != "TIMEBANK_DATABASE_URL"
    }
    environment.update(
        DATABASE_URL=database_uri,
        TIMEBANK_DATA_DIR=str(data_dir),
        TIMEBANK_HOST="127.0.0.1",
        TIMEBANK_LOG_FORMAT="json",
    )
    return environment


def log_tail(path: Path) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:])
    return ""


async def run_timebank(environment: dict[str, str], log: Path, *arguments: str) -> None:
    """Runs a `timebank` command to completion; fails with its output if it fails."""
    with log.open("ab") as output:
        # Our own CLI, run with this interpreter and fixed arguments.
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "timebank",
            *arguments,
            env=environment,
            stdout=output,
            stderr=output,
        )
        code = await process.wait()
    if code != 0:
        raise RuntimeError(f"timebank {arguments[0]} exited {code}:\n{log_tail(log)}")


@dataclass(frozen=True)
class Service:
    url: str
    pid: int


async def _wait_until_live(url: str, process: asyncio.subprocess.Process, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise RuntimeError(f"the service exited {process.returncode}:\n{log_tail(log)}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(f"{url}/health/live") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"the service did not answer within {SERVER_START_TIMEOUT_S} s")


@contextlib.asynccontextmanager
async def running_service(environment: dict[str, str], log: Path) -> AsyncIterator[Service]:
    """`timebank serve` on a free loopback port until the block ends (then SIGTERM)."""
    port = free_loopback_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("ab") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "timebank",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            env=environment,
            stdout=output,
            stderr=output,
        )
    try:
        await _wait_until_live(url, process, log)
        yield Service(url, process.pid)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), SERVER_STOP_TIMEOUT_S)
            except TimeoutError:
                process.kill()
                await process.wait()


# A community, set up through the API.


async def expect(response: aiohttp.ClientResponse, status: int) -> Any:
    text = await response.text()
    if response.status != status:
        raise RuntimeError(
            f"{response.method} {response.url.path}: {response.status} (wanted {status}): {text}"
        )
    return json.loads(text) if text else None


async def login(session: aiohttp.ClientSession, email: str) -> dict[str, str]:
    form = {"grant_type": "password", "username": email, "password": PASSWORD}
    async with session.post("/v1/auth/token", data=form) as response:
        token = (await expect(response, 200))["access_token"]
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


async def post_json(
    session: aiohttp.ClientSession,
    path: str,
    body: dict[str, Any],
    headers: dict[str, str],
    status: int = 201,
) -> Any:
    async with session.post(path, json=body, headers=headers) as response:
        return await expect(response, status)


def hour_account(body: Any) -> uuid.UUID:
    return next(uuid.UUID(ref["id"]) for ref in body["accounts"] if ref["unit"] == HOURS)


async def add_member(
    session: aiohttp.ClientSession, community: Community, index: int, organizations: int
) -> list[Payer]:
    """A member with a password, logged in, and agent of `organizations` organizations."""
    slug, operator = community.slug, community.operator_headers
    email = f"member-{index}-{secrets.token_hex(3)}@example.org"
    member = await post_json(
        session,
        f"/v1/communities/{slug}/members",
        {"email": email, "display_name": f"Member {index}", "password": PASSWORD},
        operator,
    )
    headers = await login(session, email)
    payers = [Payer(hour_account(member), headers)]
    for number in range(organizations):
        organization = await post_json(
            session,
            f"/v1/communities/{slug}/organizations",
            {"name": f"Organization {index}.{number}", "kind": "association"},
            operator,
        )
        await post_json(
            session,
            f"/v1/communities/{slug}/organizations/{organization['id']}/agents",
            {"member": member["party_id"]},
            operator,
            status=200,
        )
        payers.append(Payer(hour_account(organization), headers))
    return payers


async def set_up_community(
    session: aiohttp.ClientSession, operator_email: str, mode: Mode
) -> Community:
    operator = await login(session, operator_email)
    slug = f"bench-{secrets.token_hex(4)}"
    created = await post_json(
        session, "/v1/communities", {"slug": slug, "name": "Benchmark town"}, operator
    )
    unit = {
        "code": HOURS,
        "name": "Hours",
        "kind": "time",
        "default_min_balance": -BALANCE_LIMIT,
        "default_max_balance": BALANCE_LIMIT,
    }
    await post_json(session, f"/v1/communities/{slug}/units", unit, operator)
    community = Community(slug, uuid.UUID(created["id"]), operator)
    limit = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def member(index: int) -> list[Payer]:
        async with limit:
            return await add_member(session, community, index, mode.accounts_per_member - 1)

    for payers in await asyncio.gather(*(member(index) for index in range(mode.members))):
        community.payers.extend(payers)
    return community


# The two ways of posting a transfer, each an operation for run_callers.

Operation = Callable[[random.Random], Awaitable[int]]


def http_transfer(client: KeepAliveClient, community: Community, tally: Tally) -> Operation:
    payers = community.payers

    async def operation(generator: random.Random) -> int:
        payer, payee = generator.sample(payers, 2)
        body = json.dumps(
            {
                "id": str(uuid.uuid4()),
                "community": community.slug,
                "unit": HOURS,
                "from": str(payer.account_id),
                "to": str(payee.account_id),
                "amount": generator.randint(1, AMOUNT_MAX),
            }
        ).encode()
        try:
            reply = await client.post("/v1/transactions", body, payer.headers)
        except OSError as error:  # ResponseError and TimeoutError are OSErrors
            tally.errors[f"connection {type(error).__name__}"] += 1
            return 0
        if reply.status == 201:
            tally.created += 1
            return 1
        code = "not created" if reply.status < 300 else problem_code(reply.body)
        tally.errors[f"{reply.status} {code}"] += 1
        return 0

    return operation


def problem_code(body: bytes) -> str:
    try:
        return str(json.loads(body).get("code", "?"))
    except (ValueError, AttributeError):
        return "?"


def direct_transfer(store: LedgerStore, community: Community, tally: Tally) -> Operation:
    accounts = [payer.account_id for payer in community.payers]

    async def operation(generator: random.Random) -> int:
        payer, payee = generator.sample(accounts, 2)
        request = TransactionRequest.transfer(
            id=uuid.uuid4(),
            community_id=community.id,
            unit_code=HOURS,
            from_account=payer,
            to_account=payee,
            amount=generator.randint(1, AMOUNT_MAX),
        )
        try:
            await store.post(request)
        except LedgerError as error:
            tally.errors[f"ledger {error.code}"] += 1
            return 0
        tally.created += 1
        return 1

    return operation


async def measure_round(
    operation: Operation, tally: Tally, meter: CpuMeter, duration_s: float, into: Measured
) -> None:
    before_cpu, before_created = await meter.sample(), tally.created
    rate, latencies_ms = await run_callers(CALLERS, duration_s, operation)
    cpu = cpu_per_transfer(before_cpu, await meter.sample(), tally.created - before_created)
    into.rates.append(rate)
    into.latencies_ms.extend(latencies_ms)
    if cpu is not None:
        into.cpu.append(cpu)


async def one_at_a_time(operation: Operation, generator: random.Random, count: int) -> list[float]:
    """Latencies of `count` transfers made one after the other: the floor."""
    latencies_ms = []
    for _ in range(count):
        started = time.perf_counter()
        await operation(generator)
        latencies_ms.append((time.perf_counter() - started) * 1000)
    return latencies_ms


async def open_loop(
    operation: Operation, rate_per_s: float, duration_s: float, seed: int
) -> list[float]:
    """Starts requests at Poisson arrivals of rate_per_s for duration_s, whatever
    the answers do; each latency runs from the request's intended start."""
    timed = await open_loop_timed(operation, rate_per_s, duration_s, seed)
    return [latency_ms for _, latency_ms in timed]


async def open_loop_timed(
    operation: Operation, rate_per_s: float, duration_s: float, seed: int
) -> list[tuple[float, float]]:
    """open_loop's latencies, each with its request's intended start in seconds
    from the beginning (to cut a long run into windows)."""
    with frozen_heap():
        return await _open_loop_timed(operation, rate_per_s, duration_s, seed)


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """This process's objects kept out of the collector's passes while it times
    requests. Its full passes otherwise stopped this process (the client) for 45 to
    60 ms every few seconds of an open loop at 2,400 requests/s (a heap of some
    90,000 objects): each pause made every request in flight, and every one due
    meanwhile, late, and such pauses set the p99. The collector still runs, on what
    the loop makes."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


async def _open_loop_timed(
    operation: Operation, rate_per_s: float, duration_s: float, seed: int
) -> list[tuple[float, float]]:
    generator = random.Random(seed)
    latencies_ms: list[tuple[float, float]] = []
    running: set[asyncio.Task[None]] = set()

    async def one(intended_at: float) -> None:
        await operation(generator)
        latencies_ms.append((intended_at - began, (time.perf_counter() - intended_at) * 1000))

    began = time.perf_counter()
    next_at = began
    while next_at < began + duration_s:
        delay = next_at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.get_running_loop().create_task(one(next_at))
        running.add(task)
        task.add_done_callback(running.discard)
        next_at += generator.expovariate(rate_per_s)
    await asyncio.gather(*running)
    return latencies_ms


# Profiling the service while it is loaded.


@contextlib.asynccontextmanager
async def py_spy(pid: int, output: Path | None, duration_s: float) -> AsyncIterator[None]:
    """py-spy recording the service for duration_s (nothing when output is None)."""
    if output is None:
        yield
        return
    executable = shutil.which("py-spy")
    if executable is None:
        raise RuntimeError("--profile needs py-spy on PATH (pip install py-spy)")
    process = await asyncio.create_subprocess_exec(
        executable,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(math.ceil(duration_s)),
        "--rate",
        str(PROFILE_RATE_HZ),
        "--nonblocking",
        "--format",
        PROFILE_FORMATS.get(output.suffix, "raw"),
        "--output",
        str(output),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    await asyncio.sleep(0.5)  # py-spy attaches
    try:
        yield
    finally:
        _, errors = await process.communicate()
        if process.returncode != 0:
            print(f"py-spy failed: {errors.decode(errors='replace')}", file=sys.stderr)


def print_profile_summary(path: Path, lines: int = PROFILE_SUMMARY_LINES) -> None:
    """The functions holding most samples (with what they call, and alone), from
    py-spy's collapsed stacks; the event loop's own frames that hold nearly all
    samples are left out."""
    inclusive: Counter[str] = Counter()
    alone: Counter[str] = Counter()
    total = 0
    try:
        text = path.read_text()
    except OSError:  # py-spy failed, and said so
        return
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        # "function (path/module.py:line)": the line number would split a function.
        frames = [LINE_NUMBER.sub(")", frame) for frame in stack.split(";")]
        alone[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return
    print(f"\nservice profile, {total:,} samples: share with callees | share alone")
    shown = [
        (frame, count)
        for frame, count in inclusive.most_common()
        if count < PROFILE_SCAFFOLDING_SHARE * total
    ]
    for frame, count in shown[:lines]:
        print(f"{100 * count / total:5.1f}% | {100 * alone[frame] / total:5.1f}%  {frame}")


# The run.


@dataclass
class Results:
    direct: Measured = field(default_factory=Measured)
    http: Measured = field(default_factory=Measured)
    ratios: list[float] = field(default_factory=list)
    offered_per_s: float = 0.0
    paced_latencies_ms: list[float] = field(default_factory=list)
    direct_serial_ms: list[float] = field(default_factory=list)
    http_serial_ms: list[float] = field(default_factory=list)
    direct_tally: Tally = field(default_factory=Tally)
    http_tally: Tally = field(default_factory=Tally)
    transactions_stored: int = 0
    invariants_broken: list[str] = field(default_factory=list)


async def measure(
    client: KeepAliveClient,
    store: LedgerStore,
    community: Community,
    service: Service,
    meter: CpuMeter,
    mode: Mode,
    profile: Path | None,
) -> Results:
    results = Results()
    direct = direct_transfer(store, community, results.direct_tally)
    http = http_transfer(client, community, results.http_tally)
    for number in range(1, mode.rounds + 1):
        await measure_round(direct, results.direct_tally, meter, mode.round_s, results.direct)
        await measure_round(http, results.http_tally, meter, mode.round_s, results.http)
        results.ratios.append(results.http.rates[-1] / results.direct.rates[-1])
        print(
            f"round {number}/{mode.rounds}: direct {results.direct.rates[-1]:,.0f}/s, "
            f"HTTP {results.http.rates[-1]:,.0f}/s, ratio {results.ratios[-1]:.2f}",
            file=sys.stderr,
        )
    generator = random.Random(3)
    results.direct_serial_ms = await one_at_a_time(direct, generator, mode.serial_requests)
    results.http_serial_ms = await one_at_a_time(http, generator, mode.serial_requests)
    results.offered_per_s = max(results.http.rates) * LATENCY_LOAD_FRACTION
    await open_loop(http, results.offered_per_s, LATENCY_WARM_UP_S, seed=1)
    results.paced_latencies_ms = await open_loop(
        http, results.offered_per_s, mode.latency_s, seed=2
    )
    if profile is not None:
        async with py_spy(service.pid, profile, mode.round_s * 2):
            await run_callers(CALLERS, mode.round_s * 2, http)
        print(f"profile of the service under full load: {profile}", file=sys.stderr)
    return results


async def verify(pool: asyncpg.Pool, community: Community, results: Results) -> None:
    """Every 201 and every direct success is one stored transaction, no more; the
    ledger's invariants hold."""
    async with pool.acquire() as connection:
        results.transactions_stored = await connection.fetchval(
            "SELECT count(*) FROM transactions WHERE community_id = $1", community.id
        )
        violations = await check_invariants(connection)
    results.invariants_broken = [violation.describe() for violation in violations]


@contextlib.contextmanager
def service_directory() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="timebank-http-bench-") as directory:
        yield Path(directory)


@dataclass(frozen=True)
class BenchService:
    """The service running on a scratch database, with an operator to set it up."""

    service: Service
    database_uri: str
    operator_email: str


@contextlib.asynccontextmanager
async def bench_service(settings: dict[str, str] | None = None) -> AsyncIterator[BenchService]:
    """`timebank serve` on a scratch database (and data directory) with a platform
    operator made by the CLI; `settings`: more environment for the service."""
    with service_directory() as data_dir:
        async with bench_database() as uri:
            environment = service_environment(uri, data_dir) | (settings or {})
            log = data_dir / "service.log"
            operator_email = f"operator-{secrets.token_hex(3)}@example.org"
            await run_timebank(
                environment,
                log,
                *("admin", "create-operator", "--email", operator_email, "--password", PASSWORD),
            )
            async with running_service(environment, log) as service:
                yield BenchService(service, uri, operator_email)


async def main(mode: Mode, profile: Path | None) -> int:
    configure_logging(Settings(log_format="console", log_level="warning"))
    async with bench_service() as bench:
        results, settings = await run_against(
            bench.service, bench.database_uri, bench.operator_email, mode, profile
        )
    print_summary(results, mode, settings)
    if profile is not None and profile.suffix not in PROFILE_FORMATS:
        print_profile_summary(profile)
    # The first two checks are performance targets; the others fail only when broken.
    return 0 if all(passed for *_, passed in _checks(results)[2:]) else 1


async def run_against(
    service: Service, uri: str, operator_email: str, mode: Mode, profile: Path | None
) -> tuple[Results, Settings]:
    # The direct ledger gets the settings the service reads from the same environment.
    settings = Settings(database_url=uri)
    connector = aiohttp.TCPConnector(limit=CONNECTIONS_MAX, limit_per_host=CONNECTIONS_MAX)
    async with aiohttp.ClientSession(service.url, connector=connector) as session:
        started = time.perf_counter()
        community = await set_up_community(session, operator_email, mode)
        pool = await create_pool(uri, settings)
        try:
            await pool.execute("ANALYZE")
            # As a running server writes WAL: into recycled segments. A fresh one
            # stops its writes to fill each new segment with zeros first (every 3 s
            # at 2,200 requests/s): those stalls set the open loop's p99.
            await recycle_wal_segments(pool, mode.wal_warm_segments)
            wal_before = await pool.fetchval("SELECT pg_current_wal_lsn()")
            print(
                f"service {service.url} (pid {service.pid}), PostgreSQL "
                f"{await pool.fetchval('SHOW server_version')}; {mode.members} members paying "
                f"from {len(community.payers)} accounts, set up through the API in "
                f"{time.perf_counter() - started:.1f} s",
                file=sys.stderr,
            )
            store = LedgerStore(pool, settings)
            meter = await CpuMeter.open(service.pid, pool)
            client = KeepAliveClient.for_url(service.url, CONNECTIONS_MAX)
            try:
                results = await measure(client, store, community, service, meter, mode, profile)
            finally:
                await client.close()
            await store.drain()
            wal_written = await pool.fetchval(
                "SELECT pg_current_wal_lsn() - $1::pg_lsn", wal_before
            )
            print(f"WAL written while timing: {wal_written / 2**20:,.0f} MB", file=sys.stderr)
            await verify(pool, community, results)
        finally:
            await pool.close()
    return results, settings


def print_summary(results: Results, mode: Mode, settings: Settings) -> None:
    print(
        f"{mode.rounds} alternating round(s) of {mode.round_s:.0f} s, {CALLERS} callers; "
        f"service and direct ledger alike: pool {settings.database_pool_min_size}-"
        f"{settings.database_pool_max_size}, coalescing {settings.coalesce_in_flight_max} "
        f"calls x {settings.coalesce_batch_size_max}"
    )
    header = (
        f"{'measurement':<40} {'transfers/s':>11} {'p50 ms':>7} {'p99 ms':>7}  "
        f"CPU us/transfer: {'bench':>6} {'service':>8} {'postgres':>8} {'total':>6}  "
        f"{'others':>6}"
    )
    print(header)
    print("-" * len(header))
    for name, measured in (
        ("direct LedgerStore.post, 32 callers", results.direct),
        ("HTTP POST /v1/transactions, 32 clients", results.http),
    ):
        print(
            f"{name:<40} {statistics.median(measured.rates):>11,.0f} "
            f"{percentile(measured.latencies_ms, 0.5):>7.2f} "
            f"{percentile(measured.latencies_ms, 0.99):>7.2f}  {_cpu_cells(measured.cpu_median())}"
        )
    paced = results.paced_latencies_ms
    name = f"HTTP open loop, {results.offered_per_s:,.0f}/s offered"
    print(
        f"{name:<40} {len(paced) / mode.latency_s:>11,.0f} {percentile(paced, 0.5):>7.2f} "
        f"{percentile(paced, 0.99):>7.2f}  p95 {percentile(paced, 0.95):.2f} ms, "
        f"max {max(paced):.1f} ms, {len(paced):,} requests"
    )
    for name, serial in (
        ("direct, one transfer at a time", results.direct_serial_ms),
        ("HTTP, one request at a time", results.http_serial_ms),
    ):
        print(
            f"{name:<40} {1000 / statistics.mean(serial):>11,.0f} "
            f"{percentile(serial, 0.5):>7.2f} {percentile(serial, 0.99):>7.2f}"
        )
    others = max((c.others_cores for m in (results.direct, results.http) for c in m.cpu), default=0)
    if others > BUSY_MACHINE_CORES:
        print(f"WARNING: other work kept up to {others:.1f} cores busy: these figures are noisy")
    print(
        f"CPU per transfer: bench = this process (HTTP client or direct ledger), service = "
        f"the server, postgres = its processes ({(os.cpu_count() or 0) * 1_000_000:,} us/s "
        f"on {os.cpu_count()} cores); others = cores busy with other work meanwhile."
    )
    print()
    for name, target, value, passed in _checks(results):
        verdict = "PASS" if passed else "FAIL"
        print(f"{name:<40} target {target:<10} measured {value:<16} {verdict}")


def _cpu_cells(cpu: CpuPerTransfer | None) -> str:
    if cpu is None:
        return ""
    database = "-" if cpu.database_us is None else f"{cpu.database_us:.0f}"
    return (
        f"{'':>16} {cpu.bench_us:>6.0f} {cpu.service_us:>8.0f} {database:>8} "
        f"{cpu.total_us:>6.0f}  {cpu.others_cores:>6.2f}"
    )


def _checks(results: Results) -> list[tuple[str, str, str, bool]]:
    ratio = statistics.median(results.ratios)
    p99 = percentile(results.paced_latencies_ms, 0.99)
    tallies = (results.http_tally, results.direct_tally)
    expected = sum(tally.created for tally in tallies)
    return [
        (
            "HTTP / direct rate (median of rounds)",
            f">= {RATIO_TARGET}",
            f"{ratio:.2f}",
            ratio >= RATIO_TARGET,
        ),
        (
            f"p99 at {LATENCY_LOAD_FRACTION:.0%} of the best HTTP rate",
            f"< {LATENCY_P99_TARGET_MS:.0f} ms",
            f"{p99:.2f} ms",
            p99 < LATENCY_P99_TARGET_MS,
        ),
        (
            "refused or failed requests",
            "none",
            _errors(*tallies),
            not any(t.errors for t in tallies),
        ),
        (
            "transactions stored = successes",
            f"{expected:,}",
            f"{results.transactions_stored:,}",
            results.transactions_stored == expected,
        ),
        (
            "ledger invariants (timebank check)",
            "hold",
            "; ".join(results.invariants_broken) or "hold",
            not results.invariants_broken,
        ),
    ]


def _errors(*tallies: Tally) -> str:
    errors: Counter[str] = Counter()
    for tally in tallies:
        errors.update(tally.errors)
    return ", ".join(f"{count} x {code}" for code, count in errors.most_common()) or "0"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run (~30 s)")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="after measuring, py-spy the service under full load into this file "
        "(.svg flamegraph, .json speedscope, else collapsed stacks)",
    )
    arguments = parser.parse_args()
    raise SystemExit(asyncio.run(main(QUICK if arguments.quick else FULL, arguments.profile)))
