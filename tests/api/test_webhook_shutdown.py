"""The webhook worker when the service stops: it claims nothing more and lets the
deliveries in flight finish and be recorded within the shutdown grace; one still
running at the end of the grace is recorded as interrupted and due again."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.api.conftest import ApiClient
from tests.api.test_webhook_delivery import FAST_WEBHOOKS, eventually, pay
from tests.api.webhook_receiver import Received, Receiver, Subscribe
from tests.api.world import World
from timebank.app import create_app
from timebank.settings import Settings
from timebank.webhooks.worker import INTERRUPTED, webhook_delivery

GRACE_S = 1.0
ANSWER_DELAY_S = 0.4
# The worker's own request timeout must not end the slow answers first.
SHUTDOWN_WEBHOOKS = {**FAST_WEBHOOKS, "webhook_request_timeout_s": 5.0, "shutdown_grace_s": GRACE_S}


@pytest.fixture
def worker_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(update={"data_dir": tmp_path, **SHUTDOWN_WEBHOOKS})


@pytest.fixture
async def api(worker_settings: Settings) -> AsyncIterator[ApiClient]:
    """The application without a worker of its own: the test runs the only one."""
    app_settings = worker_settings.model_copy(update={"webhook_delivery_enabled": False})
    async with TestClient(TestServer(create_app(app_settings))) as client:
        yield client


async def delivery_of(pool: asyncpg.Pool, subscription_id: str) -> tuple[str, list[str]]:
    """The subscription's one delivery: its state and each attempt's outcome."""
    state = await pool.fetchval(
        "SELECT state FROM webhook_deliveries WHERE subscription_id = $1",
        uuid.UUID(subscription_id),
    )
    attempts = await pool.fetch(
        "SELECT status, error FROM webhook_attempts WHERE subscription_id = $1 ORDER BY attempt",
        uuid.UUID(subscription_id),
    )
    return state, [str(row["status"] or row["error"]) for row in attempts]


async def stop_while_delivering(
    api: ApiClient, world: World, receiver: Receiver, pool: asyncpg.Pool, settings: Settings
) -> float:
    """Runs a worker, pays so that an event goes out, asks the worker to stop while
    the receiver holds the request; the seconds the worker took to end."""
    stopping = asyncio.Event()
    async with webhook_delivery(pool, settings, stopping):
        await pay(api, world, 5)
        await eventually(lambda: receiver.in_flight == 1, "a delivery in flight")
        stopping.set()
        stopped_at = time.monotonic()
    return time.monotonic() - stopped_at


async def test_a_delivery_in_flight_when_the_service_stops_is_finished_and_recorded(
    api: ApiClient,
    world: World,
    receiver: Receiver,
    subscribe: Subscribe,
    pool: asyncpg.Pool,
    worker_settings: Settings,
) -> None:
    """Stopping while the receiver takes ANSWER_DELAY_S to answer: the worker waits
    for the answer, records the delivery as delivered, and ends within the grace."""

    async def slow(received: Received, earlier: int) -> int:
        await asyncio.sleep(ANSWER_DELAY_S)
        return 200

    url, endpoint = receiver.endpoint(slow)
    subscription_id = (await subscribe(url)).id
    assert await stop_while_delivering(api, world, receiver, pool, worker_settings) < GRACE_S
    assert len(endpoint.received) == 1
    assert await delivery_of(pool, subscription_id) == ("delivered", ["200"])


async def test_a_delivery_outlasting_the_grace_is_recorded_as_interrupted_and_due_again(
    api: ApiClient,
    world: World,
    receiver: Receiver,
    subscribe: Subscribe,
    pool: asyncpg.Pool,
    worker_settings: Settings,
) -> None:
    """A receiver that does not answer within the grace: the worker ends soon after
    the grace, the attempt is recorded as interrupted and the delivery stays
    pending, due at once for the next worker."""

    async def hang(received: Received, earlier: int) -> int:
        return await receiver.hang()

    url, _ = receiver.endpoint(hang)
    subscription_id = (await subscribe(url)).id
    stopping_s = await stop_while_delivering(api, world, receiver, pool, worker_settings)
    assert GRACE_S <= stopping_s < GRACE_S + 1.0
    assert await delivery_of(pool, subscription_id) == ("pending", [INTERRUPTED])
    due = await pool.fetchval(
        "SELECT next_attempt_at <= now() FROM webhook_deliveries WHERE subscription_id = $1",
        uuid.UUID(subscription_id),
    )
    assert due is True
