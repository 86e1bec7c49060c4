"""Clients that keep, for every request, the transaction ids they sent and every
answer they got; and `verify`, which counts from those records and the ledger
itself what was acknowledged, retried, lost and duplicated."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from types import SimpleNamespace
from typing import Any

import aiohttp
import asyncpg

from tests.faults.harness import (
    CUT_HEADER,
    HOURS,
    Community,
    Member,
    Service,
    eventually,
    send_and_hang_up,
)

SINGLE_PATH = "/v1/transactions"
BATCH_PATH = "/v1/transactions/batch"
AMOUNT_MAX = 90
BATCH_SIZE_MIN = 5
BATCH_SIZE_MAX = 40
# Pauses between one client's requests: a steady load, not a flood.
SINGLE_PAUSE_S = (0.0, 0.01)
BATCH_PAUSE_S = (0.02, 0.08)
REQUEST_TIMEOUT_S = 30.0
# How long one request may take to be acknowledged, faults and restarts included.
DELIVERY_TIMEOUT_S = 90.0
RETRY_BACKOFF_S = 0.02
RETRY_BACKOFF_MAX_S = 0.25
RETRY_AFTER_MAX_S = 1.0
CONNECTIONS_MAX = 64
VERIFY_CONCURRENCY = 16
PROBLEMS_SHOWN_MAX = 10
UNAVAILABLE_CODE = "database_unavailable"


# Clients that remember everything they sent and every answer they got.


class Fault(Enum):
    NONE = "none"
    HANG_UP = "hang_up"  # the client closes its socket right after sending
    CUT_ANSWER = "cut_answer"  # the proxy drops the service's answer


# (request number, attempt number, batch?) -> the fault of that attempt
FaultPlan = Callable[[int, int, bool], Fault]


def no_faults(number: int, attempt: int, batch: bool) -> Fault:
    return Fault.NONE


@dataclass
class Attempt:
    """One sending of a request: to which service generation, and what came back
    (status None: no answer at all)."""

    generation: int
    fault: Fault
    token: str = ""
    status: int | None = None
    body: Any = None
    retry_after: str | None = None
    error: str = ""
    # False only when the connection was refused: the service never saw it.
    delivered: bool = True

    @property
    def acknowledged(self) -> bool:
        return self.status in (200, 201)

    @property
    def unavailable(self) -> bool:
        """The retryable refusal: 503 database_unavailable with a Retry-After."""
        return (
            self.status == 503
            and isinstance(self.body, dict)
            and self.body.get("code") == UNAVAILABLE_CODE
            and self.retry_after is not None
        )

    @property
    def retryable(self) -> bool:
        return self.status is None or self.unavailable

    def describe(self) -> str:
        return self.error if self.status is None else f"{self.status} {self.body}"


@dataclass(frozen=True)
class Transfer:
    id: uuid.UUID
    payer: uuid.UUID
    payee: uuid.UUID
    amount: int
    pending: bool


@dataclass
class Sent:
    """A write as a client made it (its transaction ids, its exact body) and every
    attempt at it."""

    number: int
    path: str
    member: Member
    transfers: tuple[Transfer, ...]
    body: bytes
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def batch(self) -> bool:
        return self.path == BATCH_PATH

    @property
    def ids(self) -> list[uuid.UUID]:
        return [transfer.id for transfer in self.transfers]

    def acknowledgement(self) -> tuple[int, Attempt] | None:
        """The first acknowledged attempt and its position."""
        for index, attempt in enumerate(self.attempts):
            if attempt.acknowledged:
                return index, attempt
        return None


def _retry_delay_s(attempt: Attempt, backoff_s: float) -> float:
    """Retry-After when the service gave one (capped), else the client's backoff."""
    try:
        return min(float(attempt.retry_after or ""), RETRY_AFTER_MAX_S)
    except ValueError:
        return backoff_s


class Load:
    """Clients posting single transfers and atomic batches between the community's
    members, as fast as a steady load goes. Each client delivers its request until
    the service acknowledges it, retrying with the same ids through refused
    connections, lost answers and 503s; every attempt is kept on its request."""

    def __init__(
        self,
        community: Community,
        url: str,
        *,
        generation: Callable[[], int],
        seed: int,
        fault_plan: FaultPlan = no_faults,
        hang_up_port: int = 0,
    ) -> None:
        self.community = community
        self._url = url
        self._generation = generation
        self._seed = seed
        self._fault_plan = fault_plan
        self._hang_up_port = hang_up_port
        self._session: aiohttp.ClientSession | None = None
        self._stopping = asyncio.Event()
        self._clients: list[asyncio.Task[None]] = []
        self.sent: list[Sent] = []
        self.unexpected: list[str] = []
        self.attempts = 0
        # Set when a request body to that path has just gone out on the wire.
        self.body_sent = {SINGLE_PATH: asyncio.Event(), BATCH_PATH: asyncio.Event()}

    async def __aenter__(self) -> Load:
        trace = aiohttp.TraceConfig()
        trace.on_request_chunk_sent.append(self._on_chunk_sent)
        # One request per connection: the proxy cuts connections, not requests.
        connector = aiohttp.TCPConnector(limit=CONNECTIONS_MAX, force_close=True)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
            trace_configs=[trace],
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._stopping.set()
        for client in self._clients:
            client.cancel()
        await asyncio.gather(*self._clients, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def _on_chunk_sent(
        self,
        session: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceRequestChunkSentParams,
    ) -> None:
        event = self.body_sent.get(params.url.path)
        if event is not None:
            event.set()

    # What the clients send.

    def _transfer(
        self, generator: random.Random, member: Member, pending: bool, expires_in: int | None
    ) -> tuple[Transfer, dict[str, Any]]:
        payee = generator.choice([m for m in self.community.members if m is not member])
        transfer = Transfer(
            uuid.uuid4(),
            member.account_id,
            payee.account_id,
            generator.randint(1, AMOUNT_MAX),
            pending,
        )
        body: dict[str, Any] = {
            "id": str(transfer.id),
            "community": self.community.slug,
            "unit": HOURS,
            "from": str(transfer.payer),
            "to": str(transfer.payee),
            "amount": transfer.amount,
        }
        if pending:
            body.update(pending=True, expires_in=expires_in)
        return transfer, body

    def single(
        self, generator: random.Random, *, pending: bool = False, expires_in: int | None = None
    ) -> Sent:
        """A new single transfer from a random member, recorded before it is sent."""
        member = generator.choice(self.community.members)
        transfer, body = self._transfer(generator, member, pending, expires_in)
        return self._record(SINGLE_PATH, member, (transfer,), body)

    def batch(
        self,
        generator: random.Random,
        size: int,
        *,
        pending: bool = False,
        expires_in: int | None = None,
    ) -> Sent:
        """A new atomic batch of transfers, all paid by one random member."""
        member = generator.choice(self.community.members)
        made = [self._transfer(generator, member, pending, expires_in) for _ in range(size)]
        body = {"atomic": True, "transactions": [item for _, item in made]}
        return self._record(BATCH_PATH, member, tuple(t for t, _ in made), body)

    def _record(
        self, path: str, member: Member, transfers: tuple[Transfer, ...], body: dict[str, Any]
    ) -> Sent:
        sent = Sent(len(self.sent), path, member, transfers, json.dumps(body).encode())
        self.sent.append(sent)
        return sent

    # Sending.

    async def attempt(self, sent: Sent, fault: Fault | None = None) -> Attempt:
        """Sends the request once (with the fault the plan gives it, unless told)
        and keeps the attempt on it."""
        assert self._session is not None
        if fault is None:
            fault = self._fault_plan(sent.number, len(sent.attempts), sent.batch)
        attempt = Attempt(self._generation(), fault, token=f"{sent.number}.{len(sent.attempts)}")
        sent.attempts.append(attempt)
        self.attempts += 1
        if fault is Fault.HANG_UP:
            attempt.error = "hung up"
            with contextlib.suppress(OSError):
                await send_and_hang_up(
                    self._hang_up_port, sent.path, sent.body, sent.member.headers
                )
            return attempt
        headers = {**sent.member.headers, "Content-Type": "application/json"}
        if fault is Fault.CUT_ANSWER:
            headers[CUT_HEADER] = attempt.token
        try:
            async with self._session.post(
                self._url + sent.path, data=sent.body, headers=headers
            ) as response:
                raw = await response.read()
                attempt.status = response.status
                attempt.retry_after = response.headers.get("Retry-After")
                try:
                    attempt.body = json.loads(raw) if raw else None
                except ValueError:
                    attempt.body = raw.decode(errors="replace")
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            attempt.error = type(error).__name__
            attempt.delivered = not isinstance(error, aiohttp.ClientConnectorError)
        return attempt

    async def deliver(self, sent: Sent) -> bool:
        """Sends until acknowledged, retrying with the same ids: True when it was,
        False (and an unexpected answer kept) otherwise."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DELIVERY_TIMEOUT_S
        backoff_s = RETRY_BACKOFF_S
        while True:
            attempt = await self.attempt(sent)
            if attempt.acknowledged:
                return True
            if not attempt.retryable:
                self.unexpected.append(f"request {sent.number}: {attempt.describe()}")
                return False
            if loop.time() >= deadline:
                self.unexpected.append(
                    f"request {sent.number}: not acknowledged in {DELIVERY_TIMEOUT_S:.0f} s,"
                    f" last {attempt.describe()}"
                )
                return False
            if attempt.fault is not Fault.HANG_UP:
                # After a hang-up, at once: the retry races the original in the service.
                await asyncio.sleep(_retry_delay_s(attempt, backoff_s))
                backoff_s = min(backoff_s * 2, RETRY_BACKOFF_MAX_S)

    def start(self, *, singles: int, batches: int) -> None:
        """Starts the clients: `singles` posting single transfers, `batches` atomic
        batches, each with its own seeded generator."""
        for index in range(singles + batches):
            client = self._client(random.Random(self._seed * 1_000 + index), index >= singles)
            self._clients.append(asyncio.get_running_loop().create_task(client))

    async def _client(self, generator: random.Random, batches: bool) -> None:
        pause_s = BATCH_PAUSE_S if batches else SINGLE_PAUSE_S
        while not self._stopping.is_set():
            if batches:
                sent = self.batch(generator, generator.randint(BATCH_SIZE_MIN, BATCH_SIZE_MAX))
            else:
                sent = self.single(generator)
            await self.deliver(sent)
            await asyncio.sleep(generator.uniform(*pause_s))

    async def stop(self) -> None:
        """Lets each client finish the request in hand (acknowledged, or given up
        on), then stops them."""
        self._stopping.set()
        done, _ = await asyncio.wait(self._clients, timeout=DELIVERY_TIMEOUT_S + 10)
        assert len(done) == len(self._clients), "a client did not finish its request"
        for client in done:
            client.result()

    def acknowledged(self) -> int:
        return sum(1 for sent in self.sent if sent.acknowledgement() is not None)

    async def more_acknowledged(self, count: int, what: str = "") -> None:
        """Waits until `count` more requests than now are acknowledged."""
        target = self.acknowledged() + count

        async def reached() -> bool:
            return self.acknowledged() >= target

        await eventually(reached, f"{count} more requests acknowledged {what}".strip())

    async def kill_while_sending(self, service: Service, path: str, delay_s: float) -> None:
        """SIGKILLs the service delay_s after a request body to `path` went out: in
        the middle of writing it, or of answering."""
        event = self.body_sent[path]
        event.clear()

        async def sent() -> bool:
            return event.is_set()

        await eventually(sent, f"a request to {path} is sent")
        await asyncio.sleep(delay_s)
        await service.kill()


# What the ledger says, and what the records say it must.


@dataclass(frozen=True)
class Snapshot:
    """The transaction ids in the ledger after a service generation was killed and
    everything it had started in the database had ended."""

    generation: int
    present: frozenset[uuid.UUID]


async def settle_and_snapshot(
    connection: asyncpg.Connection[asyncpg.Record], community_id: uuid.UUID, generation: int
) -> Snapshot:
    """Waits until no backend of the killed service is left (each of its writes is
    now committed or rolled back), then reads the ledger's transaction ids."""

    async def settled() -> bool:
        others = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
        return bool(others == 0)

    await eventually(settled, "the killed service's database sessions have ended")
    rows = await connection.fetch(
        "SELECT id FROM transactions WHERE community_id = $1", community_id
    )
    return Snapshot(generation, frozenset(row["id"] for row in rows))


@dataclass
class Figures:
    """A scenario's run in numbers. requests: writes the clients made (each with
    its transaction ids); acknowledged: those answered 201/200 during the load;
    attempts: HTTP sends, every retry and re-send included; unanswered: sends that
    got no answer or a 503; retried: sends after the first of a request during the
    load; resent: acknowledged requests sent again at the end to compare answers;
    written_unacknowledged: requests whose answer was lost though the service had
    written them (their retry said 200), written_despite_503 of them after nothing
    but 503s. lost, duplicated, half_applied, wrong_answers and balances_off must
    stay 0."""

    scenario: str
    faults: int
    requests: int = 0
    transactions: int = 0
    acknowledged: int = 0
    attempts: int = 0
    unanswered: int = 0
    retried: int = 0
    resent: int = 0
    written_unacknowledged: int = 0
    written_despite_503: int = 0
    lost: int = 0
    duplicated: int = 0
    half_applied: int = 0
    wrong_answers: int = 0
    balances_off: int = 0
    checked_at_crashes: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        if len(self.problems) < PROBLEMS_SHOWN_MAX:
            self.problems.append(text)

    def line(self) -> str:
        checked = (
            f", {self.checked_at_crashes} answers to requests cut by a crash checked"
            " against the ledger at the crash"
            if self.checked_at_crashes
            else ""
        )
        return (
            f"{self.scenario}: {self.faults} faults; requests {self.requests}"
            f" ({self.transactions} transactions), acknowledged {self.acknowledged},"
            f" retried {self.retried} (after {self.unanswered} unanswered), resent"
            f" {self.resent}, written but unacknowledged {self.written_unacknowledged}"
            f" ({self.written_despite_503} after a 503), lost {self.lost}, duplicated"
            f" {self.duplicated}, half-applied batches {self.half_applied}, wrong retry"
            f" answers {self.wrong_answers}, balances off {self.balances_off};"
            f" {self.attempts} HTTP attempts{checked}"
        )

    def assert_nothing_lost_or_doubled(self) -> None:
        assert (
            self.lost,
            self.duplicated,
            self.half_applied,
            self.wrong_answers,
            self.balances_off,
        ) == (0, 0, 0, 0, 0), self.line() + "\n" + "\n".join(self.problems)


def _comparable(body: Any, sent: Sent) -> Any:
    """What a retry must repeat of an answer: all of it, but the item statuses of a
    batch (found, not created) and, for pending transactions, their state."""

    def transaction(out: dict[str, Any]) -> dict[str, Any]:
        if sent.transfers[0].pending:
            return {k: v for k, v in out.items() if k not in ("state", "resolved_at")}
        return out

    if not isinstance(body, dict):
        return body
    if sent.batch:
        items = [
            {**item, "status": None, "transaction": transaction(item["transaction"])}
            for item in body.get("items", [])
        ]
        return {**body, "items": items}
    return transaction(body)


def _answers_found(attempt: Attempt, sent: Sent) -> bool:
    """200, and for a batch each item 200: everything was found, nothing written."""
    return _answers_all(attempt, sent, 200)


def _answers_created(attempt: Attempt, sent: Sent) -> bool:
    """201, and for a batch each item 201: everything was written now."""
    return _answers_all(attempt, sent, 201)


def _answers_all(attempt: Attempt, sent: Sent, status: int) -> bool:
    if attempt.status != status:
        return False
    return not sent.batch or all(item["status"] == status for item in attempt.body["items"])


async def resend_acknowledged(load: Load, figures: Figures) -> None:
    """Sends every acknowledged request again, unchanged: each must answer 200 with
    the body of its first acknowledgement."""
    limit = asyncio.Semaphore(VERIFY_CONCURRENCY)

    async def resend(sent: Sent, first: Attempt) -> None:
        async with limit:
            again = await load.attempt(sent, Fault.NONE)
            figures.resent += 1
        if not _answers_found(again, sent) or _comparable(again.body, sent) != _comparable(
            first.body, sent
        ):
            figures.wrong_answers += 1
            figures.problem(
                f"request {sent.number} again: {again.describe()}; first: {first.describe()}"
            )

    acknowledged = [
        (sent, found[1]) for sent in load.sent if (found := sent.acknowledgement()) is not None
    ]
    await asyncio.gather(*(resend(sent, first) for sent, first in acknowledged))


def _check_against_snapshots(sent: Sent, snapshots: Sequence[Snapshot], figures: Figures) -> None:
    """At each crash, what was acknowledged before it is in the ledger, and a batch
    is there whole or not at all; the first answer after a crash says 201 only for
    what the ledger did not hold, 200 only for what it did."""
    found = sent.acknowledgement()
    for snapshot in snapshots:
        there = sum(1 for id_ in sent.ids if id_ in snapshot.present)
        if 0 < there < len(sent.ids):
            figures.half_applied += 1
            figures.problem(f"request {sent.number}: {there} of {len(sent.ids)} at a crash")
        if found is not None and found[1].generation <= snapshot.generation and not there:
            figures.lost += 1
            figures.problem(f"request {sent.number}: acknowledged, not there after the crash")
    if found is None:
        return
    index, acknowledged = found
    before = [s for s in snapshots if s.generation < acknowledged.generation]
    # A send that reached this same generation before may have written it already.
    reached_since = any(
        a.delivered and a.generation == acknowledged.generation for a in sent.attempts[:index]
    )
    if not before or reached_since:
        return  # nothing known of the ledger just before this answer
    if index > 0:
        figures.checked_at_crashes += 1
    there = all(id_ in before[-1].present for id_ in sent.ids)
    if there and not _answers_found(acknowledged, sent):
        figures.duplicated += 1
        figures.problem(
            f"request {sent.number}: written before the crash, then {acknowledged.status}"
        )
    if not there and not _answers_created(acknowledged, sent):
        figures.wrong_answers += 1
        figures.problem(
            f"request {sent.number}: not written at the crash, then {acknowledged.describe()}"
        )


async def verify(
    load: Load,
    connection: asyncpg.Connection[asyncpg.Record],
    figures: Figures,
    snapshots: Sequence[Snapshot] = (),
) -> Figures:
    """Counts what the records and the ledger say (the load must have stopped):
    re-sends every acknowledged request, then compares the ledger's transactions,
    log entries and balances with what was sent."""
    for sent in load.sent:
        if sent.acknowledgement() is not None:
            figures.acknowledged += 1
        else:
            figures.problem(f"request {sent.number} never acknowledged: {sent.attempts}")
    figures.requests = len(load.sent)
    figures.transactions = sum(len(sent.ids) for sent in load.sent)
    figures.retried = sum(len(sent.attempts) - 1 for sent in load.sent)
    figures.unanswered = sum(1 for s in load.sent for a in s.attempts if a.retryable)
    await resend_acknowledged(load, figures)
    sent_ids: dict[uuid.UUID, Sent] = {}
    for sent in load.sent:
        _check_against_snapshots(sent, snapshots, figures)
        found = sent.acknowledgement()
        if found is not None and found[0] > 0 and _answers_found(found[1], sent):
            figures.written_unacknowledged += 1
            if all(attempt.unavailable for attempt in sent.attempts[: found[0]]):
                figures.written_despite_503 += 1
                refusal = sent.attempts[0].body
                figures.notes.append(
                    f"request {sent.number}: 503 ({refusal.get('detail')}), then found written"
                )
        for id_ in sent.ids:
            sent_ids[id_] = sent
    figures.attempts = load.attempts
    await _compare_ledger(load, connection, figures, sent_ids)
    return figures


async def _compare_ledger(
    load: Load,
    connection: asyncpg.Connection[asyncpg.Record],
    figures: Figures,
    sent_ids: dict[uuid.UUID, Sent],
) -> None:
    community_id = load.community.id
    logged = {
        row["transaction_id"]: row["written"]
        for row in await connection.fetch(
            "SELECT transaction_id, count(*) AS written FROM log_entries"
            " WHERE community_id = $1 AND transaction_id IS NOT NULL"
            " AND convert_from(entry, 'UTF8')::jsonb ->> 'type' = 'transaction'"
            " GROUP BY transaction_id",
            community_id,
        )
    }
    stored = {
        row["id"]
        for row in await connection.fetch(
            "SELECT id FROM transactions WHERE community_id = $1", community_id
        )
    }
    for id_, sent in sent_ids.items():
        if id_ not in stored and sent.acknowledgement() is not None:
            figures.lost += 1
            figures.problem(f"transaction {id_} of request {sent.number}: acknowledged, missing")
    for id_ in stored:
        if id_ not in sent_ids or logged.get(id_, 0) != 1:
            figures.duplicated += 1
            figures.problem(f"transaction {id_}: sent by nobody, or logged {logged.get(id_)}x")
    expected: dict[uuid.UUID, int] = {}
    for transfer in _written_transfers(load.sent, stored):
        expected[transfer.payer] = expected.get(transfer.payer, 0) - transfer.amount
        expected[transfer.payee] = expected.get(transfer.payee, 0) + transfer.amount
    for row in await connection.fetch(
        "SELECT id, balance FROM accounts WHERE community_id = $1", community_id
    ):
        if row["balance"] != expected.get(row["id"], 0):
            figures.balances_off += 1
            figures.problem(
                f"account {row['id']}: balance {row['balance']}, sent {expected.get(row['id'], 0)}"
            )


def _written_transfers(sent: Iterable[Sent], stored: set[uuid.UUID]) -> Iterable[Transfer]:
    """Posted transfers the ledger holds (pending ones move no balance here)."""
    for request in sent:
        for transfer in request.transfers:
            if transfer.id in stored and not transfer.pending:
                yield transfer


async def open_connection(database_uri: str) -> asyncpg.Connection[asyncpg.Record]:
    connection: asyncpg.Connection[asyncpg.Record] = await asyncpg.connect(database_uri)
    return connection
