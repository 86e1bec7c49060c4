"""The real application on the session's database, served to an aiohttp client;
a webhook receiver and subscriptions to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from tests.api.webhook_receiver import TRANSACTION_EVENTS, Receiver, Subscribe, Subscribed
from tests.api.world import World, build_world, expect
from timebank.app import create_app
from timebank.settings import Settings

ApiClient = TestClient[web.Request, web.Application]


@pytest.fixture
def api_settings(settings: Settings, tmp_path: Path) -> Settings:
    """The session database; keys in a fresh data directory; a low login throttle."""
    return settings.model_copy(
        update={"data_dir": tmp_path, "login_failures_max": 3, "login_failures_per_address_max": 50}
    )


@pytest.fixture
async def api(api_settings: Settings) -> AsyncIterator[ApiClient]:
    async with TestClient(TestServer(create_app(api_settings))) as client:
        yield client


@pytest.fixture
async def world(api: ApiClient) -> World:
    """A community set up through the API, with a person per role."""
    return await build_world(api)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


@pytest.fixture
async def subscribe(api: ApiClient, world: World) -> AsyncIterator[Subscribe]:
    """Subscribes the world's community through the API; unsubscribes at the end, so
    no later test's worker keeps retrying a receiver that is gone."""
    made: list[str] = []

    async def create(url: str) -> Subscribed:
        body = await expect(
            await api.post(
                f"/v1/communities/{world.slug}/webhooks",
                json={"url": url, "events": TRANSACTION_EVENTS},
                headers=world.admin.auth,
            ),
            201,
        )
        made.append(body["id"])
        return Subscribed(body["id"], body["secret"])

    yield create
    for subscription_id in made:
        await api.delete(
            f"/v1/communities/{world.slug}/webhooks/{subscription_id}", headers=world.admin.auth
        )


async def scrape(api: ApiClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics by name and labels."""
    response = await api.get("/metrics")
    assert response.status == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(await response.text())
        for sample in family.samples
    }
