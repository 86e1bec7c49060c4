"""Wires Timebank together: settings -> database -> ledger -> HTTP application.
Resources open and close in the application's cleanup context."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import structlog
from aiohttp import web

from timebank.api import (  # noqa: F401 (each module declares its operations on the contract)
    accounts,
    audit,
    auth,
    communities,
    currency,
    health,
    invitations,
    keys,
    log,
    me,
    policies,
    pools,
    reports,
    transactions,
    webhooks,
)
from timebank.api.docs import publish
from timebank.api.listener import ConnectionLimitedSite, make_runner
from timebank.api.middleware import request_context
from timebank.api.registry import api
from timebank.auth.directory import Directory
from timebank.auth.invitations import InvitationStore
from timebank.auth.service import IdentityService
from timebank.auth.signing_keys import KeyRing
from timebank.keys import (
    CURRENCY,
    DATABASE_POOL,
    DIRECTORY,
    IDENTITIES,
    INVITATIONS,
    KEYS,
    LEDGER,
    LOG,
    POLICIES,
    POOLS,
    SETTINGS,
    SIGNING_KEYS,
    VERIFIER,
    WEBHOOKS,
)
from timebank.ledger.errors import DatabaseUnavailable
from timebank.ledger.store import LedgerStore
from timebank.log.checkpointer import checkpoint_forever
from timebank.log.store import LogKeys, LogStore
from timebank.logging import flush_logs, flush_logs_forever
from timebank.metrics import METRICS, Metrics
from timebank.migrations import migrated_database
from timebank.policies.currency import CurrencyStore
from timebank.policies.store import PolicyStore
from timebank.pools.store import PoolStore
from timebank.services import Services
from timebank.settings import Settings
from timebank.signing.keys import KeyStore
from timebank.signing.verifier import SignatureVerifier
from timebank.web.routes import add_front
from timebank.webhooks.subscriptions import Subscriptions
from timebank.webhooks.worker import webhook_delivery

logger = structlog.get_logger(__name__)

REQUEST_BODY_SIZE_MAX_BYTES = 4 * 1024 * 1024
EXPIRY_BATCH_SIZE = 1_000
# After the grace: how long writes handed to the ledger get to end before the
# pool is closed (which cuts them; the database rolls them back).
SHUTDOWN_DRAIN_TIMEOUT_S = 2.0
# Set when the service begins to stop: background work winds down with the requests.
STOPPING = web.AppKey("stopping", asyncio.Event)

Preparation = Callable[[Services], Awaitable[None]]


async def expire_pending_forever(store: LedgerStore, interval_s: float) -> None:
    """Expires overdue pending transactions now (they may have expired while the
    service was down) and then every interval."""
    while True:
        try:
            while await store.expire_overdue(EXPIRY_BATCH_SIZE) == EXPIRY_BATCH_SIZE:
                pass
        except DatabaseUnavailable as error:
            logger.warning("expiry_sweep_failed", error=str(error))
        except Exception:
            # A bug must not stop the sweeper for good: log it and try again later.
            logger.exception("expiry_sweep_crashed")
        await asyncio.sleep(interval_s)


async def run_policies_forever(policy_store: PolicyStore, interval_s: float) -> None:
    """Runs every ended period of the communities' schedules now (catching up on
    downtime) and then every interval; each period once, whatever happens."""
    while True:
        try:
            await policy_store.run_due()
        except DatabaseUnavailable as error:
            logger.warning("policy_run_failed", error=str(error))
        except Exception:
            # One broken schedule must not stop the others for good: log, retry later.
            logger.exception("policy_run_crashed")
        await asyncio.sleep(interval_s)


def signing_keys_directory(settings: Settings) -> Path:
    """Where the token-signing keys live: beside the embedded database, readable by
    the service's user only."""
    return settings.data_dir / "keys"


def create_app(settings: Settings, *, prepare: Preparation | None = None) -> web.Application:
    app = web.Application(
        client_max_size=REQUEST_BODY_SIZE_MAX_BYTES, middlewares=[request_context]
    )
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[STOPPING] = asyncio.Event()
    app.on_shutdown.append(_begin_stopping)
    app.add_routes(api.routes())
    # The old readiness path, kept for the CLI's and Docker's health checks.
    app.router.add_get("/health", health.ready)
    publish(app, api)
    add_front(app)

    async def database_context(app: web.Application) -> AsyncIterator[None]:
        async with migrated_database(settings) as (pool, _):
            store = LedgerStore(pool, settings, on_call=app[METRICS].observe_ledger_call)
            keys = await asyncio.to_thread(KeyRing.load_or_create, signing_keys_directory(settings))
            app[DATABASE_POOL] = pool
            app[LEDGER] = store
            app[SIGNING_KEYS] = keys
            app[IDENTITIES] = IdentityService(pool, settings, keys)
            app[DIRECTORY] = Directory(pool, actor_cache_ttl_s=settings.access_cache_ttl_s)
            app[INVITATIONS] = InvitationStore(pool)
            app[WEBHOOKS] = Subscriptions(pool)
            app[KEYS] = KeyStore(pool, cache_ttl_s=settings.access_cache_ttl_s)
            app[VERIFIER] = SignatureVerifier(
                settings.signature_verify_threads,
                idle_priority=settings.signature_verify_idle_priority,
            )
            app[POOLS] = PoolStore(pool, store, levy_cache_ttl_s=settings.access_cache_ttl_s)
            app[POLICIES] = PolicyStore(pool, store)
            app[CURRENCY] = CurrencyStore(pool, store, cache_ttl_s=settings.access_cache_ttl_s)
            app[LOG] = LogStore(
                pool, LogKeys(signing_keys_directory(settings) / "log"), settings.log_origin_prefix
            )
            if prepare is not None:
                await prepare(
                    Services(store, app[DIRECTORY], app[POOLS], app[POLICIES], app[CURRENCY])
                )
            sweeper = asyncio.create_task(
                expire_pending_forever(store, settings.expiry_sweep_interval_s)
            )
            checkpointer = asyncio.create_task(
                checkpoint_forever(app[LOG], settings.log_checkpoint_interval_s)
            )
            policy_runner = asyncio.create_task(
                run_policies_forever(app[POLICIES], settings.policy_run_interval_s)
            )
            async with webhook_delivery(pool, settings, app[STOPPING]):
                yield
            for task in (sweeper, checkpointer, policy_runner):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await _drain_writes(store)
            app[VERIFIER].close()

    app.cleanup_ctx.append(database_context)
    return app


async def _begin_stopping(app: web.Application) -> None:
    """Runs when the listening sockets are closed, before requests in flight are
    waited for: the webhook worker starts flushing at the same time."""
    app[STOPPING].set()


async def _drain_writes(store: LedgerStore) -> None:
    """Waits for writes handed to the ledger to end, within a bound: one stuck on
    a lock must not hold the process (the pool's closing cuts it)."""
    try:
        await asyncio.wait_for(store.drain(), SHUTDOWN_DRAIN_TIMEOUT_S)
    except TimeoutError:
        logger.warning("writes_cut_at_shutdown", waited_s=SHUTDOWN_DRAIN_TIMEOUT_S)


async def serve(settings: Settings, *, prepare: Preparation | None = None) -> None:
    """Runs the HTTP server until SIGINT or SIGTERM, then shuts down cleanly: stops
    listening (new connections are refused), closes idle connections, gives the
    requests in flight and the webhook deliveries `shutdown_grace_s` to finish (then
    cancels them), stops the background work, waits a bounded time for the
    ledger's writes and closes the pool."""
    app = create_app(settings, prepare=prepare)
    runner = make_runner(app, settings)
    log_flusher = asyncio.create_task(flush_logs_forever())
    await runner.setup()
    try:
        site = ConnectionLimitedSite(
            runner, settings.host, settings.port, connections_max=settings.http_connections_max
        )
        await site.start()
        logger.info("listening", url=f"http://{settings.host}:{settings.port}")
        # What start-up made lives as long as the process: keep it out of the
        # collector's full passes, which otherwise stall requests for tens of ms.
        gc.freeze()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signal_number, stop.set)
        await stop.wait()
        logger.info("stopping", grace_s=settings.shutdown_grace_s)
    finally:
        await runner.cleanup()
        log_flusher.cancel()
        flush_logs()
