"""Typed keys of the resources the aiohttp application holds."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from timebank.auth.directory import Directory
from timebank.auth.invitations import InvitationStore
from timebank.auth.service import IdentityService
from timebank.auth.signing_keys import KeyRing
from timebank.ledger.store import LedgerStore
from timebank.log.store import LogStore
from timebank.policies.currency import CurrencyStore
from timebank.policies.store import PolicyStore
from timebank.pools.store import PoolStore
from timebank.settings import Settings
from timebank.signing.keys import KeyStore
from timebank.signing.verifier import SignatureVerifier
from timebank.webhooks.subscriptions import Subscriptions

SETTINGS = web.AppKey("settings", Settings)
DATABASE_POOL = web.AppKey("database_pool", asyncpg.Pool)
LEDGER = web.AppKey("ledger", LedgerStore)
SIGNING_KEYS = web.AppKey("signing_keys", KeyRing)
IDENTITIES = web.AppKey("identities", IdentityService)
DIRECTORY = web.AppKey("directory", Directory)
INVITATIONS = web.AppKey("invitations", InvitationStore)
WEBHOOKS = web.AppKey("webhooks", Subscriptions)
LOG = web.AppKey("log", LogStore)
KEYS = web.AppKey("keys", KeyStore)
VERIFIER = web.AppKey("verifier", SignatureVerifier)
POOLS = web.AppKey("pools", PoolStore)
POLICIES = web.AppKey("policies", PolicyStore)
CURRENCY = web.AppKey("currency", CurrencyStore)
