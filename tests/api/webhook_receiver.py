"""A webhook receiver on 127.0.0.1 for the delivery tests: one endpoint per
subscription, each answering as the test decides and recording what it got."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

# Longest a hanging receiver hangs, should the test forget to release it.
HANG_MAX_S = 5.0
TRANSACTION_EVENTS = ["transaction.posted", "transaction.pending"]


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it."""

    headers: dict[str, str]
    body: bytes
    at_s: float

    @property
    def event(self) -> dict[str, Any]:
        event: dict[str, Any] = json.loads(self.body)
        return event


# Decides the status of each request an endpoint receives: given the request and how
# many that endpoint received before it.
Behaviour = Callable[[Received, int], Awaitable[int]]


async def answer_ok(received: Received, earlier: int) -> int:
    return 200


@dataclass
class Endpoint:
    behaviour: Behaviour
    received: list[Received] = field(default_factory=list)
    in_flight: int = 0
    in_flight_max: int = 0

    def events(self) -> list[dict[str, Any]]:
        return [request.event for request in self.received]


class Receiver:
    """A webhook receiver on 127.0.0.1: one endpoint per subscription, each recording
    what it got and how many of its requests overlapped."""

    def __init__(self) -> None:
        self.endpoints: dict[str, Endpoint] = {}
        self.in_flight = 0
        self.in_flight_max = 0
        self.released = asyncio.Event()
        self._app = web.Application()
        self._app.router.add_post("/{name}", self._handle)
        self._runner = web.AppRunner(self._app, shutdown_timeout=0.1)
        self.base_url = ""

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        self.released.set()
        await self._runner.cleanup()

    def endpoint(self, behaviour: Behaviour = answer_ok) -> tuple[str, Endpoint]:
        name = uuid.uuid4().hex
        self.endpoints[name] = Endpoint(behaviour)
        return f"{self.base_url}/{name}", self.endpoints[name]

    async def hang(self) -> int:
        """Answers only when the test ends: the worker's timeout must give up first."""
        async with asyncio.timeout(HANG_MAX_S):
            await self.released.wait()
        return 200

    async def _handle(self, request: web.Request) -> web.Response:
        endpoint = self.endpoints[request.match_info["name"]]
        received = Received(dict(request.headers), await request.read(), time.monotonic())
        earlier = len(endpoint.received)
        endpoint.received.append(received)
        endpoint.in_flight += 1
        self.in_flight += 1
        endpoint.in_flight_max = max(endpoint.in_flight_max, endpoint.in_flight)
        self.in_flight_max = max(self.in_flight_max, self.in_flight)
        try:
            status = await endpoint.behaviour(received, earlier)
        finally:
            endpoint.in_flight -= 1
            self.in_flight -= 1
        return web.Response(status=status)


@dataclass(frozen=True)
class Subscribed:
    id: str
    secret: str


Subscribe = Callable[[str], Awaitable[Subscribed]]
