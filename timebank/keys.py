"""Typed keys of the resources the aiohttp application holds."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from timebank.ledger.store import LedgerStore
from timebank.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
DATABASE_POOL = web.AppKey("database_pool", asyncpg.Pool)
LEDGER = web.AppKey("ledger", LedgerStore)
