"""Liveness and readiness. The API proper (issue 3) lives beside this module."""

from __future__ import annotations

import asyncio

import asyncpg
from aiohttp import web

from timebank.keys import DATABASE_POOL

routes = web.RouteTableDef()

READINESS_TIMEOUT_S = 2.0


async def database_reachable(pool: asyncpg.Pool) -> bool:
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_S):
            return bool(await pool.fetchval("SELECT 1") == 1)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
        return False


@routes.get("/health/live")
async def live(request: web.Request) -> web.Response:
    """The process answers: it is alive, whatever the database does."""
    return web.json_response({"status": "ok"})


@routes.get("/health")
@routes.get("/health/ready")
async def ready(request: web.Request) -> web.Response:
    """Ready to serve: the database answers. 503 (retryable) otherwise."""
    if await database_reachable(request.app[DATABASE_POOL]):
        return web.json_response({"status": "ok", "database": "ok"})
    return web.json_response(
        {"status": "unavailable", "database": "unreachable"},
        status=503,
        headers={"Retry-After": "1"},
    )
