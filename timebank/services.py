"""The stores a running service holds, as one value for code that needs several
(the demo's set-up); handlers take theirs from the application's typed keys."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from timebank.auth.directory import Directory
from timebank.ledger.store import LedgerStore
from timebank.policies.currency import CurrencyStore
from timebank.policies.store import PolicyStore
from timebank.pools.store import PoolStore
from timebank.settings import Settings


@dataclass(frozen=True, slots=True)
class Services:
    ledger: LedgerStore
    directory: Directory
    pools: PoolStore
    policies: PolicyStore
    currency: CurrencyStore


def services_on(pool: asyncpg.Pool, settings: Settings) -> Services:
    """The stores on a pool, as the service makes them (for tools and tests)."""
    ledger = LedgerStore(pool, settings)
    ttl_s = settings.access_cache_ttl_s
    return Services(
        ledger=ledger,
        directory=Directory(pool, actor_cache_ttl_s=ttl_s),
        pools=PoolStore(pool, ledger, levy_cache_ttl_s=ttl_s),
        policies=PolicyStore(pool, ledger),
        currency=CurrencyStore(pool, ledger, cache_ttl_s=ttl_s),
    )
