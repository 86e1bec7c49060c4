"""Webhook subscriptions of a community and their delivery log."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from timebank.ledger.store import run_translated
from timebank.webhooks import queries

SECRET_BYTES = 32
DELIVERIES_SHOWN_MAX = 500


@dataclass(frozen=True, slots=True)
class Subscription:
    id: uuid.UUID
    url: str
    event_types: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Delivery:
    event_id: int
    type: str
    state: str
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: datetime
    delivered_at: datetime | None


def _subscription(row: asyncpg.Record) -> Subscription:
    return Subscription(row["id"], row["url"], tuple(row["event_types"]), row["created_at"])


class Subscriptions:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(
        self, community_id: uuid.UUID, url: str, event_types: Sequence[str]
    ) -> tuple[Subscription, str]:
        """A new subscription and the secret that signs its deliveries (shown once)."""
        secret = secrets.token_urlsafe(SECRET_BYTES)
        row = await run_translated(
            lambda: self._pool.fetchrow(
                queries.INSERT_SUBSCRIPTION,
                community_id,
                url,
                list(dict.fromkeys(event_types)),
                secret,
            )
        )
        assert row is not None
        return _subscription(row), secret

    async def active(self, community_id: uuid.UUID) -> list[Subscription]:
        rows = await run_translated(
            lambda: self._pool.fetch(queries.SELECT_SUBSCRIPTIONS, community_id)
        )
        return [_subscription(row) for row in rows]

    async def get(self, community_id: uuid.UUID, subscription_id: uuid.UUID) -> Subscription | None:
        row = await run_translated(
            lambda: self._pool.fetchrow(queries.SELECT_SUBSCRIPTION, community_id, subscription_id)
        )
        return None if row is None else _subscription(row)

    async def delete(self, community_id: uuid.UUID, subscription_id: uuid.UUID) -> bool:
        """Stops deliveries to it; its log stays."""
        deleted = await run_translated(
            lambda: self._pool.fetchval(queries.DELETE_SUBSCRIPTION, community_id, subscription_id)
        )
        return deleted is not None

    async def deliveries(
        self, community_id: uuid.UUID, subscription_id: uuid.UUID, limit: int
    ) -> list[Delivery]:
        assert 1 <= limit <= DELIVERIES_SHOWN_MAX
        rows = await run_translated(
            lambda: self._pool.fetch(
                queries.SELECT_DELIVERIES, subscription_id, limit, community_id
            )
        )
        return [Delivery(**dict(row)) for row in rows]
