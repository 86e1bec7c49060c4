"""The stores a running service holds, as one value for code that needs several
(the demo's set-up); handlers take theirs from the application's typed keys."""

from __future__ import annotations

from dataclasses import dataclass

from timebank.auth.directory import Directory
from timebank.ledger.store import LedgerStore
from timebank.policies.currency import CurrencyStore
from timebank.policies.store import PolicyStore
from timebank.pools.store import PoolStore


@dataclass(frozen=True, slots=True)
class Services:
    ledger: LedgerStore
    directory: Directory
    pools: PoolStore
    policies: PolicyStore
    currency: CurrencyStore
