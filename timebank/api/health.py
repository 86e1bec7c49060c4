"""Liveness and readiness, for orchestrators and load balancers."""

from __future__ import annotations

import asyncio

import asyncpg
from aiohttp import web

from timebank.api.contract import respond
from timebank.api.registry import api
from timebank.api.schemas import Health
from timebank.keys import DATABASE_POOL
from timebank.metrics import METRICS

TAG = "Health"

READINESS_TIMEOUT_S = 2.0


async def database_reachable(pool: asyncpg.Pool) -> bool:
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_S):
            return bool(await pool.fetchval("SELECT 1") == 1)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
        return False


@api.operation(
    "GET", "/health/live", tag=TAG, summary="Alive", responses={200: Health}, public=True
)
async def live(request: web.Request) -> web.Response:
    """The process answers: it is alive, whatever the database does."""
    return respond(Health(status="ok"))


@api.operation(
    "GET",
    "/metrics",
    tag=TAG,
    summary="Prometheus metrics",
    responses={200: None},
    text_responses={200: "text/plain"},
    public=True,
)
async def metrics(request: web.Request) -> web.Response:
    """Requests by route and status with their latency, transactions posted by
    kind, pending transactions, the webhook backlog and the database pool's use,
    in the Prometheus text format."""
    body = await request.app[METRICS].exposition(request.app[DATABASE_POOL])
    return web.Response(body=body, content_type="text/plain", charset="utf-8")


@api.operation(
    "GET",
    "/health/ready",
    tag=TAG,
    summary="Ready to serve",
    responses={200: Health, 503: Health},
    public=True,
)
async def ready(request: web.Request) -> web.Response:
    """Ready: the database answers. 503 (retry after Retry-After) while it does not."""
    if await database_reachable(request.app[DATABASE_POOL]):
        return respond(Health(status="ok", database="ok"))
    return respond(
        Health(status="unavailable", database="unreachable"), 503, **{"Retry-After": "1"}
    )
