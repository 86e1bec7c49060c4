"""Delivers the webhook outbox: each event POSTed to each subscription that wants it,
at least once, in event order per subscription, concurrently across subscriptions.

How a delivery goes out, safely with any number of processes running this worker:

1. One statement claims the due *head* of each live subscription (its pending
   delivery with the lowest event id), locking it `FOR UPDATE SKIP LOCKED`, and
   leases it: `attempts` counts the attempt and `next_attempt_at` moves past the
   request timeout. A leased head is not due, and the events behind it are not
   heads, so no other worker (nor this one) takes anything of that subscription
   until the attempt is recorded. No transaction stays open during the request.
2. The event is POSTed, signed (`Timebank-Signature: t=<unix s>,v1=<hex
   HMAC-SHA256 of "<t>.<body>">`) and named (`Timebank-Event-Id`) so receivers can
   verify it and drop duplicates.
3. One statement records the attempt in `webhook_attempts` and settles the delivery:
   `delivered` on any 2xx; else retried after an exponential backoff with jitter;
   `failed` once the next retry would fall beyond the retry window (counted from the
   first attempt), which lets the subscription's next event go.

If the process dies mid-request, the lease runs out and another worker retries:
deliveries are at least once. Pending deliveries of a deleted subscription are marked
`failed` ("subscription deleted") and never sent.

Order is event id order among the events a worker can see. Two transactions
committing at the same moment may become visible in the other order than their event
ids; they have no order between them, but a receiver should drop duplicates by event
id rather than by "highest id seen". An event's own history (pending, then posted)
is always in order: the second cannot be written before the first is committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import random
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import aiohttp
import asyncpg
import structlog
from structlog.typing import FilteringBoundLogger

from timebank.ledger.errors import DatabaseUnavailable
from timebank.ledger.store import run_translated
from timebank.settings import Settings
from timebank.webhooks import queries

logger = structlog.get_logger(__name__)

SIGNATURE_HEADER = "Timebank-Signature"
EVENT_ID_HEADER = "Timebank-Event-Id"
EVENT_TYPE_HEADER = "Timebank-Event-Type"
USER_AGENT = "Timebank-Webhooks/1"

# A lease outlives the request by this much, so only a dead process loses one.
LEASE_MARGIN_S = 30.0
# Each delay is shortened by up to this fraction, at random, so that receivers
# failing together are not retried in lockstep.
JITTER_FRACTION = 0.2
# Jitter from a generator of the worker's own: drawing from the random module's
# shared state would move it under whatever else in the process relies on it
# (hypothesis, for one, refuses a state changed by another thread mid-draw).
_JITTER = random.Random()  # noqa: S311 (spreading retries needs no secrecy)
BACKOFF_EXPONENT_MAX = 40
ERROR_TEXT_MAX_CHARS = 500
# Time given to record an interrupted attempt while the worker stops.
STOP_RECORD_TIMEOUT_S = 2.0

DELIVERED = "delivered"
PENDING = "pending"
FAILED = "failed"
SUBSCRIPTION_DELETED = "subscription deleted"
INTERRUPTED = "interrupted: the worker stopped"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    backoff_base_s: float
    backoff_max_s: float
    retry_window_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            settings.webhook_backoff_base_s,
            settings.webhook_backoff_max_s,
            settings.webhook_retry_window_s,
        )


def backoff_s(policy: RetryPolicy, attempt: int, jitter: float) -> float:
    """The delay after failed attempt number `attempt` (1, 2, ...): the base doubled
    at each retry, capped, then shortened by up to JITTER_FRACTION (`jitter` in [0, 1])."""
    assert attempt >= 1
    assert 0.0 <= jitter <= 1.0
    exponent = min(attempt - 1, BACKOFF_EXPONENT_MAX)
    delay_s = min(policy.backoff_base_s * 2.0**exponent, policy.backoff_max_s)
    return delay_s * (1.0 - JITTER_FRACTION * jitter)


def retry_delay_s(
    policy: RetryPolicy, attempt: int, retrying_for_s: float, jitter: float
) -> float | None:
    """When to retry after a failed attempt, or None when that would fall beyond the
    retry window (`retrying_for_s` is the time since the first attempt began)."""
    delay_s = backoff_s(policy, attempt, jitter)
    if retrying_for_s + delay_s > policy.retry_window_s:
        return None
    return delay_s


def signature(secret: str, timestamp_s: int, body: bytes) -> str:
    """The Timebank-Signature header: `t=<unix seconds>,v1=<hex HMAC-SHA256>` of
    "<t>.<body>" keyed with the subscription's secret."""
    message = f"{timestamp_s}.".encode() + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"t={timestamp_s},v1={digest}"


@dataclass(frozen=True, slots=True)
class Claim:
    """One leased delivery: the attempt to make, where, and what to send."""

    subscription_id: uuid.UUID
    event_id: int
    attempt: int
    url: str
    secret: str
    community_id: uuid.UUID
    type: str
    created_at: datetime
    payload: str
    retrying_for_s: float

    def body(self) -> bytes:
        event = {
            "id": self.event_id,
            "type": self.type,
            "created_at": self.created_at.isoformat(),
            "community_id": str(self.community_id),
            "data": json.loads(self.payload),
        }
        return json.dumps(event, separators=(",", ":")).encode()

    def headers(self, body: bytes, timestamp_s: int) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(self.secret, timestamp_s, body),
            EVENT_ID_HEADER: str(self.event_id),
            EVENT_TYPE_HEADER: self.type,
        }


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one attempt went: the receiver's status, or why there was none."""

    status: int | None
    error: str | None
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def _error_text(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}".rstrip(": ")
    return text[:ERROR_TEXT_MAX_CHARS]


async def post_event(session: aiohttp.ClientSession, claim: Claim, timeout_s: float) -> Outcome:
    """One POST of the event; never raises for what the receiver or the network does.
    Redirects are not followed: a 3xx is a failed attempt."""
    body = claim.body()
    headers = claim.headers(body, int(time.time()))
    started_s = time.monotonic()
    status: int | None = None
    error: str | None = None
    try:
        async with session.post(
            claim.url,
            data=body,
            headers=headers,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
        ) as response:
            status = response.status
    except TimeoutError:
        error = f"no answer within {timeout_s:g} s"
    except aiohttp.ClientError as client_error:
        error = _error_text(client_error)
    duration_ms = round((time.monotonic() - started_s) * 1000)
    return Outcome(status, error, duration_ms)


def _claim_of(row: asyncpg.Record) -> Claim:
    return Claim(**dict(row))


class DeliveryWorker:
    """Claims due deliveries and sends them, up to a bound at once, until cancelled."""

    def __init__(
        self, pool: asyncpg.Pool, session: aiohttp.ClientSession, settings: Settings
    ) -> None:
        self._pool = pool
        self._session = session
        self._policy = RetryPolicy.from_settings(settings)
        self._poll_interval_s = settings.webhook_poll_interval_s
        self._request_timeout_s = settings.webhook_request_timeout_s
        self._in_flight_max = settings.webhook_deliveries_in_flight_max
        self._lease_s = settings.webhook_request_timeout_s + LEASE_MARGIN_S
        self._flush_timeout_s = settings.shutdown_grace_s
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Claims nothing more; run() returns once the deliveries in flight are
        recorded (those still running after the shutdown grace are interrupted)."""
        self._stopping.set()

    async def run(self) -> None:
        """Claims as much due work as there is room for, then waits for a delivery to
        end (its subscription's next event may be due at once), for the next poll or
        for stop(); then flushes what is in flight."""
        in_flight: set[asyncio.Task[None]] = set()
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            while not self._stopping.is_set():
                room = self._in_flight_max - len(in_flight)
                if room > 0:
                    for claim in await self._claim_safely(room):
                        in_flight.add(asyncio.create_task(self._deliver(claim)))
                in_flight = await self._wait(in_flight, stopping)
            in_flight = await self._flush(in_flight)
        finally:
            stopping.cancel()
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)

    async def _wait(
        self, in_flight: set[asyncio.Task[None]], stopping: asyncio.Task[bool]
    ) -> set[asyncio.Task[None]]:
        done, _ = await asyncio.wait(
            {*in_flight, stopping},
            timeout=self._poll_interval_s,
            return_when=asyncio.FIRST_COMPLETED,
        )
        self._log_crashes({task for task in in_flight if task in done})
        return {task for task in in_flight if not task.done()}

    async def _flush(self, in_flight: set[asyncio.Task[None]]) -> set[asyncio.Task[None]]:
        """Lets the deliveries in flight end and be recorded, within the grace;
        returns those still running (they are interrupted: due again at once)."""
        if not in_flight:
            return in_flight
        logger.info("webhook_worker_flushing", in_flight=len(in_flight))
        done, still_running = await asyncio.wait(in_flight, timeout=self._flush_timeout_s)
        self._log_crashes(done)
        return still_running

    @staticmethod
    def _log_crashes(done: set[asyncio.Task[None]]) -> None:
        for task in done:
            if not task.cancelled() and (error := task.exception()) is not None:
                # A bug in one delivery: its lease runs out and it is sent again.
                logger.error("webhook_delivery_crashed", exc_info=error)

    async def _claim_safely(self, limit: int) -> list[Claim]:
        try:
            return await run_translated(lambda: self._claim(limit))
        except DatabaseUnavailable as error:
            logger.warning("webhook_claim_failed", error=str(error))
        except Exception:
            # A bug must not stop deliveries for good: log it and try again later.
            logger.exception("webhook_claim_crashed")
        return []

    async def _claim(self, limit: int) -> list[Claim]:
        async with self._pool.acquire() as connection:
            abandoned = await connection.execute(queries.ABANDON_DELETED, SUBSCRIPTION_DELETED)
            if abandoned != "UPDATE 0":
                logger.info("webhook_deliveries_abandoned", reason=SUBSCRIPTION_DELETED)
            rows = await connection.fetch(queries.CLAIM_DUE_HEADS, limit, self._lease_s)
        return [_claim_of(row) for row in rows]

    async def _deliver(self, claim: Claim) -> None:
        log = logger.bind(
            subscription_id=str(claim.subscription_id),
            event_id=claim.event_id,
            attempt=claim.attempt,
        )
        try:
            outcome = await post_event(self._session, claim, self._request_timeout_s)
        except asyncio.CancelledError:
            await self._record_interrupted(claim)
            raise
        try:
            await self._settle(claim, outcome, log)
        except Exception:
            # Unrecorded, the lease runs out and the event is sent again (at least once).
            log.exception("webhook_record_failed")

    async def _settle(self, claim: Claim, outcome: Outcome, log: FilteringBoundLogger) -> None:
        if outcome.delivered:
            await self._record(claim, outcome, DELIVERED, 0.0)
            log.debug("webhook_delivered", status=outcome.status)
            return
        retrying_for_s = claim.retrying_for_s + outcome.duration_ms / 1000
        jitter = _JITTER.random()
        delay_s = retry_delay_s(self._policy, claim.attempt, retrying_for_s, jitter)
        if delay_s is None:
            await self._record(claim, outcome, FAILED, 0.0)
            log.warning("webhook_delivery_failed", status=outcome.status, error=outcome.error)
            return
        await self._record(claim, outcome, PENDING, delay_s)
        log.info(
            "webhook_attempt_failed",
            status=outcome.status,
            error=outcome.error,
            retry_in_s=round(delay_s, 3),
        )

    async def _record(self, claim: Claim, outcome: Outcome, state: str, delay_s: float) -> None:
        settled = await run_translated(
            lambda: self._pool.fetchval(
                queries.RECORD_ATTEMPT,
                claim.subscription_id,
                claim.event_id,
                claim.attempt,
                outcome.status,
                outcome.error,
                outcome.duration_ms,
                state,
                delay_s,
                claim.community_id,
            )
        )
        if settled is None:
            logger.warning(
                "webhook_lease_lost",
                subscription_id=str(claim.subscription_id),
                event_id=claim.event_id,
                attempt=claim.attempt,
            )

    async def _record_interrupted(self, claim: Claim) -> None:
        """Stopping mid-request: the attempt is logged and the delivery is due again
        at once, for whichever worker runs next."""
        outcome = Outcome(None, INTERRUPTED, 0)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(STOP_RECORD_TIMEOUT_S):
                await self._record(claim, outcome, PENDING, 0.0)


@contextlib.asynccontextmanager
async def webhook_delivery(
    pool: asyncpg.Pool, settings: Settings, stopping: asyncio.Event | None = None
) -> AsyncIterator[None]:
    """Runs a delivery worker in the background while inside (if enabled). When
    `stopping` is set (the service was asked to stop) or the block ends, the worker
    claims nothing more and flushes its deliveries in flight within the shutdown
    grace: each is recorded, delivered or interrupted."""
    if not settings.webhook_delivery_enabled:
        yield
        return
    connector = aiohttp.TCPConnector(limit=settings.webhook_deliveries_in_flight_max)
    async with aiohttp.ClientSession(
        connector=connector, headers={"User-Agent": USER_AGENT}
    ) as session:
        worker = DeliveryWorker(pool, session, settings)
        task = asyncio.create_task(worker.run())
        # Stopping starts with the HTTP shutdown, so both use the same grace.
        watcher = asyncio.create_task((stopping or asyncio.Event()).wait())
        watcher.add_done_callback(lambda _: worker.stop())
        logger.info("webhook_worker_started")
        try:
            yield
        finally:
            watcher.cancel()
            worker.stop()
            try:
                await task
            except asyncio.CancelledError:
                task.cancel()
                raise
            logger.info("webhook_worker_stopped")
