"""Webhook delivery end to end: subscriptions and transactions made through the API,
events received by a real HTTP server on 127.0.0.1, the worker on short timings."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.api.conftest import ApiClient
from tests.api.webhook_receiver import Received, Receiver, Subscribe, Subscribed
from tests.api.world import World, build_world, expect, transfer
from timebank.app import create_app
from timebank.settings import Settings
from timebank.webhooks.worker import (
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    JITTER_FRACTION,
    SIGNATURE_HEADER,
    SUBSCRIPTION_DELETED,
    RetryPolicy,
    backoff_s,
    retry_delay_s,
    webhook_delivery,
)

REQUEST_TIMEOUT_S = 0.3
RETRY_WINDOW_S = 1.0
FAST_WEBHOOKS = {
    "webhook_poll_interval_s": 0.02,
    "webhook_request_timeout_s": REQUEST_TIMEOUT_S,
    "webhook_backoff_base_s": 0.05,
    "webhook_backoff_max_s": 0.2,
    "webhook_retry_window_s": RETRY_WINDOW_S,
}
WAIT_TIMEOUT_S = 5.0
WAIT_STEP_S = 0.01
SIGNATURE_AGE_MAX_S = 60


@pytest.fixture(scope="module")
def webhook_settings(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return settings.model_copy(
        update={"data_dir": tmp_path_factory.mktemp("webhooks"), **FAST_WEBHOOKS}
    )


@pytest.fixture(scope="module")
async def api(webhook_settings: Settings) -> AsyncIterator[ApiClient]:
    """The application with its delivery worker on short timings, for the module."""
    async with TestClient(TestServer(create_app(webhook_settings))) as client:
        yield client


@pytest.fixture(scope="module")
async def world(api: ApiClient) -> World:
    """One community for the module (building one takes seconds of password hashing).
    Each test subscribes afresh and unsubscribes at its end, so every test starts
    with no live subscription; the amounts paid stay far within the limits."""
    return await build_world(api)


async def eventually(condition: Callable[[], bool], what: str) -> None:
    """Waits until the condition holds, failing after WAIT_TIMEOUT_S."""
    deadline_s = time.monotonic() + WAIT_TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline_s, f"timed out waiting for {what}"
        await asyncio.sleep(WAIT_STEP_S)


async def pay(api: ApiClient, world: World, amount: int, **extra: Any) -> str:
    """Alice pays Bob through the API; the transaction's id."""
    body = transfer(world, world.alice, world.bob, amount, **extra)
    await expect(await api.post("/v1/transactions", json=body, headers=world.alice.auth), 201)
    return str(body["id"])


async def delivery_log(api: ApiClient, world: World, subscribed: Subscribed) -> list[Any]:
    body = await expect(
        await api.get(
            f"/v1/communities/{world.slug}/webhooks/{subscribed.id}/deliveries",
            headers=world.admin.auth,
        ),
        200,
    )
    items: list[Any] = body["items"]
    return items


async def attempts_of(pool: asyncpg.Pool, subscribed: Subscribed) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT event_id, attempt, status, error FROM webhook_attempts"
        " WHERE subscription_id = $1 ORDER BY event_id, attempt",
        uuid.UUID(subscribed.id),
    )


def verify_signature(received: Received, secret: str) -> None:
    """The Timebank-Signature header signs "<t>.<body>" with the secret, recently."""
    fields = dict(part.split("=", 1) for part in received.headers[SIGNATURE_HEADER].split(","))
    message = f"{fields['t']}.".encode() + received.body
    expected = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, fields["v1"])
    assert abs(time.time() - int(fields["t"])) < SIGNATURE_AGE_MAX_S


async def test_events_arrive_signed_in_order_and_named(
    api: ApiClient, world: World, receiver: Receiver, subscribe: Subscribe
) -> None:
    """Each transaction's event arrives once, in order, as JSON signed with the
    subscription's secret and carrying its id and type in headers."""
    url, endpoint = receiver.endpoint()
    subscribed = await subscribe(url)
    paid = [await pay(api, world, minutes) for minutes in (10, 20, 30, 40, 50)]
    await eventually(lambda: len(endpoint.received) == len(paid), "five events")
    events = endpoint.events()
    assert paid == [event["data"]["id"] for event in events]
    assert ["transaction.posted"] * len(paid) == [event["type"] for event in events]
    assert sorted(event["id"] for event in events) == [event["id"] for event in events]
    for received, event in zip(endpoint.received, events, strict=True):
        verify_signature(received, subscribed.secret)
        assert received.headers["Content-Type"] == "application/json"
        assert received.headers[EVENT_ID_HEADER] == str(event["id"])
        assert received.headers[EVENT_TYPE_HEADER] == event["type"]
        assert {"id", "type", "created_at", "community_id", "data"} == set(event)
        assert event["community_id"] == event["data"]["community_id"]
    log = await delivery_log(api, world, subscribed)
    assert [("delivered", 1, 200)] * len(paid) == [
        (item["state"], item["attempts"], item["last_status"]) for item in log
    ]


async def test_a_pending_transaction_then_confirmed_gives_pending_then_posted(
    api: ApiClient, world: World, receiver: Receiver, subscribe: Subscribe
) -> None:
    """A proposal and its confirmation are two events of one transaction, in order."""
    url, endpoint = receiver.endpoint()
    await subscribe(url)
    body = transfer(world, world.alice, world.bob, 60, pending=True)
    await expect(await api.post("/v1/transactions", json=body, headers=world.bob.auth), 201)
    await expect(
        await api.post(f"/v1/transactions/{body['id']}/confirm", headers=world.alice.auth), 200
    )
    await eventually(lambda: len(endpoint.received) == 2, "two events")
    events = endpoint.events()
    assert [event["type"] for event in events] == ["transaction.pending", "transaction.posted"]
    assert [body["id"]] * 2 == [event["data"]["id"] for event in events]
    assert [event["data"]["state"] for event in events] == ["pending", "posted"]


async def test_a_failing_receiver_gets_the_event_again_until_it_answers_2xx(
    api: ApiClient, world: World, receiver: Receiver, subscribe: Subscribe, pool: asyncpg.Pool
) -> None:
    """500, 500, then 204: the same event three times (same id), delivered on the
    third attempt, and the delivery log shows the attempts."""

    async def fail_twice(received: Received, earlier: int) -> int:
        return 500 if earlier < 2 else 204

    url, endpoint = receiver.endpoint(fail_twice)
    subscribed = await subscribe(url)
    paid = await pay(api, world, 15)
    await eventually(lambda: len(endpoint.received) == 3, "three attempts")
    assert [paid] * 3 == [event["data"]["id"] for event in endpoint.events()]
    assert len({request.headers[EVENT_ID_HEADER] for request in endpoint.received}) == 1

    async def settled() -> list[Any]:
        deadline_s = time.monotonic() + WAIT_TIMEOUT_S
        while (log := await delivery_log(api, world, subscribed))[0]["state"] == "pending":
            assert time.monotonic() < deadline_s, "the delivery stays pending"
            await asyncio.sleep(WAIT_STEP_S)
        return log

    [item] = await settled()
    assert (
        item["state"],
        item["attempts"],
        item["last_status"],
        item["last_error"],
    ) == ("delivered", 3, 204, None)
    assert item["delivered_at"] is not None
    assert [(row["attempt"], row["status"]) for row in await attempts_of(pool, subscribed)] == [
        (1, 500),
        (2, 500),
        (3, 204),
    ]


async def test_a_hanging_receiver_is_timed_out_and_retried(
    api: ApiClient, world: World, receiver: Receiver, subscribe: Subscribe, pool: asyncpg.Pool
) -> None:
    """A receiver that never answers costs one request timeout, logged as an error,
    and the event is sent again."""

    async def hang_once(received: Received, earlier: int) -> int:
        return await receiver.hang() if earlier == 0 else 200

    url, endpoint = receiver.endpoint(hang_once)
    subscribed = await subscribe(url)
    started_s = time.monotonic()
    await pay(api, world, 25)
    await eventually(lambda: len(endpoint.received) == 2, "a second attempt")
    assert time.monotonic() - started_s >= REQUEST_TIMEOUT_S
    attempts: list[asyncpg.Record] = []

    async def recorded() -> None:
        while len(attempts) < 2:
            attempts[:] = await attempts_of(pool, subscribed)
            await asyncio.sleep(WAIT_STEP_S)

    async with asyncio.timeout(WAIT_TIMEOUT_S):
        await recorded()
    first, second = attempts
    assert (first["status"], second["status"]) == (None, 200)
    assert "no answer within" in first["error"]


async def test_a_receiver_failing_beyond_the_retry_window_ends_failed_and_later_events_flow(
    api: ApiClient, world: World, receiver: Receiver, subscribe: Subscribe
) -> None:
    """The first event is retried for the retry window, then marked failed; only then
    does the next event go out, and it is delivered."""
    failing_event_ids: set[int] = set()

    async def refuse_the_first_event(received: Received, earlier: int) -> int:
        if earlier == 0:
            failing_event_ids.add(received.event["id"])
        return 503 if received.event["id"] in failing_event_ids else 200

    url, endpoint = receiver.endpoint(refuse_the_first_event)
    subscribed = await subscribe(url)
    first = await pay(api, world, 5)
    second = await pay(api, world, 6)
    await eventually(lambda: second in [e["data"]["id"] for e in endpoint.events()], "event 2")
    ids = [event["data"]["id"] for event in endpoint.events()]
    assert ids[-1] == second
    assert set(ids[:-1]) == {first}
    assert len(ids) - 1 >= 3
    retried_for_s = endpoint.received[-2].at_s - endpoint.received[0].at_s
    # Given up only when the next retry (at most backoff_max_s later) would be too late.
    assert retried_for_s >= RETRY_WINDOW_S - FAST_WEBHOOKS["webhook_backoff_max_s"] - 0.05
    newest, oldest = await delivery_log(api, world, subscribed)
    assert ("failed", 503, len(ids) - 1) == (
        oldest["state"],
        oldest["last_status"],
        oldest["attempts"],
    )
    assert (newest["type"], newest["last_status"]) == ("transaction.posted", 200)


async def test_no_event_is_written_for_a_community_without_subscriptions(
    api: ApiClient, world: World, receiver: Receiver, subscribe: Subscribe, pool: asyncpg.Pool
) -> None:
    """The outbox stays empty while nobody listens; a later subscriber gets only what
    happens after it subscribed."""
    community_id = await pool.fetchval("SELECT id FROM communities WHERE slug = $1", world.slug)

    async def outbox_size() -> int:
        size: int = await pool.fetchval(
            "SELECT count(*) FROM webhook_events WHERE community_id = $1", community_id
        )
        return size

    before = await outbox_size()
    await pay(api, world, 7)
    assert await outbox_size() == before
    url, endpoint = receiver.endpoint()
    await subscribe(url)
    after = await pay(api, world, 8)
    await eventually(lambda: len(endpoint.received) == 1, "the event after subscribing")
    assert [after] == [event["data"]["id"] for event in endpoint.events()]
    assert await outbox_size() == before + 1


async def test_one_delivery_at_a_time_per_subscription_even_with_two_workers(
    api: ApiClient,
    world: World,
    receiver: Receiver,
    subscribe: Subscribe,
    pool: asyncpg.Pool,
    webhook_settings: Settings,
) -> None:
    """With a second worker on its own pool (another process, as far as the database
    knows), each subscription still has one request in flight at most and gets every
    event once, in order; two subscriptions are served at the same time."""

    async def slow(received: Received, earlier: int) -> int:
        await asyncio.sleep(0.03)
        return 200

    endpoints = []
    for _ in range(2):
        url, endpoint = receiver.endpoint(slow)
        await subscribe(url)
        endpoints.append(endpoint)
    async with webhook_delivery(pool, webhook_settings):
        paid = [await pay(api, world, minutes) for minutes in range(1, 9)]
        await eventually(
            lambda: all(len(endpoint.received) == len(paid) for endpoint in endpoints),
            "every event at both receivers",
        )
    for endpoint in endpoints:
        assert paid == [event["data"]["id"] for event in endpoint.events()]
        assert endpoint.in_flight_max == 1
    assert receiver.in_flight_max == 2


async def test_a_deleted_subscription_is_sent_nothing_more(
    api: ApiClient, world: World, receiver: Receiver, subscribe: Subscribe, pool: asyncpg.Pool
) -> None:
    """Unsubscribing abandons what was left to deliver: marked failed, never sent."""

    async def refuse(received: Received, earlier: int) -> int:
        return 500

    url, endpoint = receiver.endpoint(refuse)
    subscribed = await subscribe(url)
    await pay(api, world, 3)
    await eventually(lambda: len(endpoint.received) >= 1, "a first attempt")
    await expect(
        await api.delete(
            f"/v1/communities/{world.slug}/webhooks/{subscribed.id}", headers=world.admin.auth
        ),
        204,
    )
    query = "SELECT state, last_error FROM webhook_deliveries WHERE subscription_id = $1"
    deadline_s = time.monotonic() + WAIT_TIMEOUT_S
    while (row := await pool.fetchrow(query, uuid.UUID(subscribed.id))) is not None:
        if row["state"] != "pending":
            break
        assert time.monotonic() < deadline_s, "the delivery stays pending"
        await asyncio.sleep(WAIT_STEP_S)
    assert row is not None
    assert (row["state"], row["last_error"]) == ("failed", SUBSCRIPTION_DELETED)
    sent = len(endpoint.received)
    await asyncio.sleep(0.1)
    assert len(endpoint.received) == sent


def test_backoff_doubles_from_the_base_up_to_the_cap_less_some_jitter() -> None:
    """1, 2, 4, 8 s... capped; jitter only ever shortens a delay, by JITTER_FRACTION at most."""
    policy = RetryPolicy(backoff_base_s=1.0, backoff_max_s=10.0, retry_window_s=3600.0)
    assert [backoff_s(policy, attempt, jitter=0.0) for attempt in range(1, 7)] == [
        1.0,
        2.0,
        4.0,
        8.0,
        10.0,
        10.0,
    ]
    assert backoff_s(policy, 2, jitter=1.0) == pytest.approx(2.0 * (1 - JITTER_FRACTION))
    assert backoff_s(policy, 10_000, jitter=0.5) <= policy.backoff_max_s


def test_retries_stop_when_the_next_would_fall_beyond_the_retry_window() -> None:
    """A delivery is retried while the next attempt starts within the window."""
    policy = RetryPolicy(backoff_base_s=1.0, backoff_max_s=10.0, retry_window_s=30.0)
    assert retry_delay_s(policy, attempt=3, retrying_for_s=25.0, jitter=0.0) == 4.0
    assert retry_delay_s(policy, attempt=3, retrying_for_s=26.5, jitter=0.0) is None
