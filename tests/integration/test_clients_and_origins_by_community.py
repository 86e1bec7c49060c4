"""Migration 0025: API clients keyed by community first, and log origins unique
by construction. What existed before it keeps working (a client's bare id and
secret, its device keys, the log's origin and the bundles exported before), and
the database itself refuses what would make an origin name two communities."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.integration.helpers import bundle_of, hours_unit, transfer
from timebank.auth.access import Scope
from timebank.auth.client_ids import format_client_id
from timebank.auth.directory import Directory
from timebank.auth.errors import Unauthenticated
from timebank.auth.service import IdentityService
from timebank.auth.signing_keys import KeyRing
from timebank.database import create_pool
from timebank.ledger.models import PartyKind
from timebank.ledger.store import LedgerStore
from timebank.log.audit import verify_bundle
from timebank.log.store import LogKeys, LogStore
from timebank.migrations import apply_migrations, load_migrations
from timebank.settings import Settings
from timebank.signing.intents import KeyAlgorithm, public_key_id
from timebank.signing.keys import KeyStore

BEFORE = 24  # the last migration before 0025
ORIGIN_PREFIX = "sharding.test"


@dataclass
class Before:
    """What a database had before 0025: a community with history and a checkpoint,
    an API client with its secret and a device key, and a bundle exported then."""

    community_id: uuid.UUID
    slug: str
    client_id: uuid.UUID
    client_secret: str
    key_id: str
    bundle: Path


async def history(store: LedgerStore, community_id: uuid.UUID, unit_id: uuid.UUID) -> None:
    accounts = []
    for name in ("ana", "ben", "cleo"):
        party = await store.create_party(community_id, PartyKind.MEMBER, name)
        accounts.append(await store.open_account(community_id, owner_id=party.id, unit_id=unit_id))
    for index in range(6):
        await store.post(
            transfer(community_id, accounts[index % 3], accounts[(index + 1) % 3], 30 + index)
        )


@pytest.fixture
async def pool(
    create_database: Callable[[], Awaitable[str]], settings: Settings
) -> AsyncIterator[asyncpg.Pool]:
    """A database of its own, migrated only up to 0024."""
    pool = await create_pool(await create_database(), settings)
    async with pool.acquire() as connection:
        await apply_migrations(connection, load_migrations()[:BEFORE])
    yield pool
    await pool.close()


@pytest.fixture
def log(pool: asyncpg.Pool, tmp_path: Path) -> LogStore:
    return LogStore(pool, LogKeys(tmp_path / "log-keys"), ORIGIN_PREFIX)


async def made_before(
    pool: asyncpg.Pool, settings: Settings, log: LogStore, tmp_path: Path
) -> Before:
    store = LedgerStore(pool, settings)
    slug = f"old-{secrets.token_hex(4)}"
    community = await store.create_community(slug, "Old")
    hours = await hours_unit(store, community.id)
    # The origin as the code before 0025 wrote it (no slug column then).
    await pool.execute(
        "INSERT INTO log_identities (community_id, origin) VALUES ($1, $2)",
        community.id,
        f"{ORIGIN_PREFIX}/{slug}",
    )
    await history(store, community.id, hours.id)
    assert await log.checkpoint(community.id, slug) is not None
    party = await store.community_party(community.id)
    client, secret = await Directory(pool).create_client(
        community.id, name="Old shop", party_id=party.id, scopes=[Scope.ACCOUNTS_READ]
    )
    public_key = (
        Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    )
    key = await KeyStore(pool).register(
        community.id,
        key_id=public_key_id(KeyAlgorithm.ED25519, public_key),
        party_id=party.id,
        person_id=None,
        client_id=client.id,
        algorithm=KeyAlgorithm.ED25519.value,
        public_key=public_key,
        label="till",
    )
    bundle = await bundle_of(pool, slug, tmp_path / "before.jsonl")
    return Before(community.id, slug, client.id, secret, key.key_id, bundle)


async def migrate(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as connection:
        applied = await apply_migrations(connection)
    assert [migration.version for migration in applied] == list(
        range(BEFORE + 1, len(load_migrations()) + 1)
    )


async def test_a_client_made_before_keeps_its_bare_id_and_gets_the_new_one(
    pool: asyncpg.Pool, settings: Settings, log: LogStore, tmp_path: Path
) -> None:
    """After 0025 the client is keyed (community_id, id); its bare id and secret
    still get tokens (through the frozen legacy map), and so does its new
    client_id naming the community; its device key still points at it; revoking
    it stops both."""
    before = await made_before(pool, settings, log, tmp_path)
    await migrate(pool)
    identities = IdentityService(pool, settings, KeyRing.load_or_create(tmp_path / "keys"))
    full_id = format_client_id(before.community_id, before.client_id)
    for client_id in (str(before.client_id), full_id):
        pair = await identities.client_login(client_id, before.client_secret)
        grant = identities.principal(pair.access_token).client
        assert grant is not None
        assert (before.community_id, before.client_id) == (grant.community_id, grant.client_id)
    with pytest.raises(Unauthenticated):
        await identities.client_login(str(before.client_id), "not the secret")
    keys = await KeyStore(pool).of_client(before.community_id, before.client_id)
    assert [before.key_id] == [key.key_id for key in keys]
    directory = Directory(pool)
    assert [full_id] == [
        client.client_id for client in await directory.clients(before.community_id)
    ]
    assert await directory.revoke_client(before.community_id, before.client_id)
    for client_id in (str(before.client_id), full_id):
        with pytest.raises(Unauthenticated):
            await identities.client_login(client_id, before.client_secret)


async def test_only_clients_made_before_have_a_bare_id(
    pool: asyncpg.Pool, settings: Settings, log: LogStore, tmp_path: Path
) -> None:
    """A client made after 0025 is found only by the client_id naming its
    community: its bare id, or its id under another community, gets nothing;
    the legacy map takes no new row."""
    before = await made_before(pool, settings, log, tmp_path)
    await migrate(pool)
    party = await LedgerStore(pool, settings).community_party(before.community_id)
    client, secret = await Directory(pool).create_client(
        before.community_id, name="New shop", party_id=party.id, scopes=[Scope.ACCOUNTS_READ]
    )
    assert client.client_id == f"{before.community_id}.{client.id}"
    identities = IdentityService(pool, settings, KeyRing.load_or_create(tmp_path / "keys"))
    await identities.client_login(client.client_id, secret)
    other = await LedgerStore(pool, settings).create_community(f"other-{secrets.token_hex(4)}", "O")
    for wrong in (str(client.id), format_client_id(other.id, client.id), f"{client.client_id} "):
        with pytest.raises(Unauthenticated):
            await identities.client_login(wrong, secret)
    with pytest.raises(asyncpg.RaiseError, match="clients made before migration 0025"):
        await pool.execute(
            "INSERT INTO api_client_legacy_ids (client_id, community_id) VALUES ($1, $2)",
            client.id,
            before.community_id,
        )
    legacy = await pool.fetch("SELECT client_id FROM api_client_legacy_ids")
    assert [before.client_id] == [row["client_id"] for row in legacy]
    digest = await pool.fetchval(
        "SELECT secret_hash FROM api_clients WHERE community_id = $1 AND id = $2",
        before.community_id,
        client.id,
    )
    assert hashlib.sha256(secret.encode()).digest() == digest


async def test_bundles_exported_before_and_after_verify_with_the_same_origin(
    pool: asyncpg.Pool, settings: Settings, log: LogStore, tmp_path: Path
) -> None:
    """The origin fixed before 0025 stays; the bundle exported before it still
    verifies, and so does one exported after more history, whose log extends the
    old checkpoint."""
    before = await made_before(pool, settings, log, tmp_path)
    old = verify_bundle(before.bundle)
    assert (old.problems, old.origin) == ([], f"{ORIGIN_PREFIX}/{before.slug}")
    await migrate(pool)
    store = LedgerStore(pool, settings)
    unit_id = await pool.fetchval(
        "SELECT id FROM units WHERE community_id = $1 AND code = 'H'", before.community_id
    )
    await history(store, before.community_id, unit_id)
    fresh_log = LogStore(pool, LogKeys(tmp_path / "log-keys"), "another.prefix")
    latest = await fresh_log.checkpoint(before.community_id, before.slug)
    assert latest is not None
    earlier_note = await pool.fetchval(
        "SELECT note FROM log_checkpoints WHERE community_id = $1 ORDER BY tree_size LIMIT 1",
        before.community_id,
    )
    new = verify_bundle(
        await bundle_of(pool, before.slug, tmp_path / "after.jsonl"),
        earlier_checkpoint=earlier_note,
    )
    assert (new.problems, new.origin) == ([], old.origin)
    assert (new.size, new.checkpoints_verified) == (latest.tree_size, 2)
    assert new.size > old.size


async def test_no_two_communities_can_have_one_origin(
    pool: asyncpg.Pool, settings: Settings, log: LogStore, tmp_path: Path
) -> None:
    """Without a global unique index: an origin must end with its own community's
    slug (a key to communities (id, slug)), so another community's origin is
    refused whichever slug the row claims, and a logged community's slug cannot
    change (it would free its origin for a new community)."""
    before = await made_before(pool, settings, log, tmp_path)
    await migrate(pool)
    store = LedgerStore(pool, settings)
    other = await store.create_community(f"new-{secrets.token_hex(4)}", "New")
    taken = f"{ORIGIN_PREFIX}/{before.slug}"
    insert = "INSERT INTO log_identities (community_id, slug, origin) VALUES ($1, $2, $3)"
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await pool.execute(insert, other.id, before.slug, taken)
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute(insert, other.id, other.slug, taken)
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute(insert, other.id, other.slug, f"{taken}-{other.slug}")
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await pool.execute(
            "UPDATE communities SET slug = $2 WHERE id = $1", before.community_id, "renamed"
        )
    assert f"{ORIGIN_PREFIX}/{other.slug}" == await log.origin(other.id, other.slug)
    origins = await pool.fetch("SELECT slug, origin FROM log_identities ORDER BY origin")
    assert sorted([(before.slug, taken), (other.slug, f"{ORIGIN_PREFIX}/{other.slug}")]) == [
        (row["slug"], row["origin"]) for row in origins
    ]
