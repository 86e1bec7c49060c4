"""Prometheus metrics: request rate and latency by route and status, transactions
posted by kind, the ledger's coalesced calls (transactions carried, duration), and,
read when scraped, pending transactions, the webhook backlog,
each solidarity pool's balance and the database pool's use. Each application has
its own registry."""

from __future__ import annotations

import asyncpg
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS_S = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Transactions per coalesced call: 1 when posts come one at a time, up to the
# setting coalesce_batch_size_max (at most 1,000) under load.
CALL_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000)
CALL_DURATION_BUCKETS_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
SELECT_PENDING = "SELECT count(*) FROM transactions WHERE state = 'pending'"
SELECT_WEBHOOK_BACKLOG = "SELECT count(*) FROM webhook_deliveries WHERE state = 'pending'"
# Each solidarity pool's balance per unit (a pool per community is a handful of rows).
SELECT_POOL_BALANCES = """
SELECT c.slug AS community, pa.display_name AS pool, u.code AS unit, a.balance
  FROM pool_units pu
  JOIN accounts a ON a.community_id = pu.community_id AND a.id = pu.account_id
  JOIN units u ON u.community_id = pu.community_id AND u.id = pu.unit_id
  JOIN parties pa ON pa.community_id = pu.community_id AND pa.id = pu.pool_id
  JOIN communities c ON c.id = pu.community_id
 LIMIT 10000
"""


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "timebank_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "timebank_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ("method", "route"),
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.transactions = Counter(
            "timebank_transactions_posted",
            "Transactions written through the API, by kind and state.",
            ("kind", "state"),
            registry=self.registry,
        )
        self.ledger_call_size = Histogram(
            "timebank_ledger_call_transactions",
            "Single transactions posted at the same time and written by one database call, "
            "by kind (unsigned, signed).",
            ("kind",),
            buckets=CALL_SIZE_BUCKETS,
            registry=self.registry,
        )
        self.ledger_call_duration = Histogram(
            "timebank_ledger_call_duration_seconds",
            "Time of each such database call, from its sending until each of its "
            "transactions has its answer, by kind (unsigned, signed).",
            ("kind",),
            buckets=CALL_DURATION_BUCKETS_S,
            registry=self.registry,
        )
        self.pending = Gauge(
            "timebank_transactions_pending", "Pending transactions.", registry=self.registry
        )
        self.webhook_backlog = Gauge(
            "timebank_webhook_deliveries_pending",
            "Webhook deliveries not yet made.",
            registry=self.registry,
        )
        self.solidarity_pools = Gauge(
            "timebank_solidarity_pool_balance",
            "Balance of each solidarity pool, per unit, in the unit's smallest step.",
            ("community", "pool", "unit"),
            registry=self.registry,
        )
        self.pool_size = Gauge(
            "timebank_database_pool_connections",
            "Connections the database pool holds.",
            registry=self.registry,
        )
        self.connections_turned_away = Counter(
            "timebank_http_connections_turned_away",
            "Connections answered 503 at once because the service held as many as it takes.",
            registry=self.registry,
        )
        self.pool_idle = Gauge(
            "timebank_database_pool_idle_connections",
            "Connections of the pool not in use.",
            registry=self.registry,
        )
        self.pool_in_use = Gauge(
            "timebank_database_pool_connections_in_use",
            "Connections of the pool lent out to a query or a transaction.",
            registry=self.registry,
        )
        self.pool_size_max = Gauge(
            "timebank_database_pool_max_connections",
            "Connections the pool may hold at most (TIMEBANK_DATABASE_POOL_MAX_SIZE).",
            registry=self.registry,
        )

    def observe_request(self, method: str, route: str, status: int, duration_s: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(duration_s)

    def observe_ledger_call(self, kind: str, transactions: int, duration_s: float) -> None:
        """A coalesced ledger call has ended (`LedgerStore`'s `on_call`)."""
        self.ledger_call_size.labels(kind).observe(transactions)
        self.ledger_call_duration.labels(kind).observe(duration_s)

    async def exposition(self, pool: asyncpg.Pool) -> bytes:
        """The text exposition, with the gauges read now."""
        size, idle = pool.get_size(), pool.get_idle_size()
        self.pool_size.set(size)
        self.pool_idle.set(idle)
        self.pool_in_use.set(size - idle)
        self.pool_size_max.set(pool.get_max_size())
        try:
            self.pending.set(await pool.fetchval(SELECT_PENDING))
            self.webhook_backlog.set(await pool.fetchval(SELECT_WEBHOOK_BACKLOG))
            balances = await pool.fetch(SELECT_POOL_BALANCES)
            self.solidarity_pools.clear()
            for row in balances:
                self.solidarity_pools.labels(row["community"], row["pool"], row["unit"]).set(
                    row["balance"]
                )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            # The database is away: the request figures are still worth serving.
            pass
        return generate_latest(self.registry)


METRICS = web.AppKey("metrics", Metrics)
