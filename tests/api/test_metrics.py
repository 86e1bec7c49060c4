"""/metrics holds what issue 7 lists, with values that agree with the database:
request rate and latency by route and status, transactions posted by kind,
pending transactions, the webhook backlog and the database pool's use; and the
ledger's coalesced calls (transactions carried, duration)."""

from __future__ import annotations

import asyncpg

from tests.api.conftest import ApiClient, scrape
from tests.api.webhook_receiver import Subscribe
from tests.api.world import World, expect, transfer
from timebank.keys import DATABASE_POOL
from timebank.settings import Settings

# Nothing listens on the discard port: deliveries there fail and stay pending.
DEAD_RECEIVER = "http://127.0.0.1:9/hook"


async def count(api: ApiClient, query: str) -> int:
    pool: asyncpg.Pool = api.app[DATABASE_POOL]
    value = await pool.fetchval(query)
    assert isinstance(value, int)
    return value


async def test_metrics_agree_with_the_database_and_the_requests_made(
    api: ApiClient, world: World, subscribe: Subscribe, api_settings: Settings
) -> None:
    """After a posted transfer, a pending one and a subscription no receiver
    answers: the request and latency counts of the route, transactions by kind
    and state, the pending count and the webhook backlog as the database has
    them, the pool's size, idle, in-use and maximum connections, and the ledger
    calls that carried the two transfers."""
    await subscribe(DEAD_RECEIVER)
    posted = transfer(world, world.alice, world.bob, 5)
    pending = transfer(world, world.alice, world.bob, 7, pending=True)
    for body in (posted, pending):
        await expect(await api.post("/v1/transactions", json=body, headers=world.alice.auth), 201)
    metrics = await scrape(api)
    route = (("method", "POST"), ("route", "/v1/transactions"))
    assert metrics[("timebank_http_requests_total", (*route, ("status", "201")))] == 2
    assert metrics[("timebank_http_request_duration_seconds_count", route)] == 2
    assert metrics[("timebank_http_request_duration_seconds_sum", route)] > 0
    by_kind = (("kind", "exchange"),)
    assert metrics[("timebank_transactions_posted_total", (*by_kind, ("state", "posted")))] == 1
    assert metrics[("timebank_transactions_posted_total", (*by_kind, ("state", "pending")))] == 1
    pending_now = await count(api, "SELECT count(*) FROM transactions WHERE state = 'pending'")
    assert pending_now >= 1
    assert metrics[("timebank_transactions_pending", ())] == pending_now
    backlog = await count(api, "SELECT count(*) FROM webhook_deliveries WHERE state = 'pending'")
    assert backlog >= 2
    assert metrics[("timebank_webhook_deliveries_pending", ())] == backlog
    size = metrics[("timebank_database_pool_connections", ())]
    idle = metrics[("timebank_database_pool_idle_connections", ())]
    assert 1 <= size <= api_settings.database_pool_max_size
    assert metrics[("timebank_database_pool_connections_in_use", ())] == size - idle
    assert metrics[("timebank_database_pool_max_connections", ())] == (
        api_settings.database_pool_max_size
    )
    # Posted one after the other: two calls of one transaction each.
    unsigned = (("kind", "unsigned"),)
    assert metrics[("timebank_ledger_call_transactions_count", unsigned)] == 2
    assert metrics[("timebank_ledger_call_transactions_sum", unsigned)] == 2
    assert metrics[("timebank_ledger_call_transactions_bucket", (*unsigned, ("le", "1.0")))] == 2
    assert metrics[("timebank_ledger_call_duration_seconds_count", unsigned)] == 2
    assert metrics[("timebank_ledger_call_duration_seconds_sum", unsigned)] > 0
