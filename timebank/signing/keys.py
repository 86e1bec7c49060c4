"""Members' device keys and the community's signature policy, in PostgreSQL. The
database logs every registration and revocation (sql/0007_member_keys.sql)."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from timebank.ledger.errors import DuplicateName
from timebank.ledger.store import run_translated

INSERT_KEY = """
INSERT INTO member_keys (community_id, key_id, party_id, person_id, client_id, algorithm,
                         public_key, label)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT DO NOTHING
RETURNING community_id, key_id, party_id, person_id, client_id, algorithm, public_key, label,
          registered_at, revoked_at
"""
KEY_COLUMNS = """
SELECT k.community_id, k.key_id, k.party_id, k.person_id, k.client_id, k.algorithm,
       k.public_key, k.label, k.registered_at, k.revoked_at
  FROM member_keys k
"""
SELECT_KEY = KEY_COLUMNS + " WHERE k.community_id = $1 AND k.key_id = $2"
SELECT_KEYS_OF_PERSON = (
    KEY_COLUMNS
    + " WHERE k.person_id = $1 AND ($2::uuid IS NULL OR k.community_id = $2)"
    + " ORDER BY k.registered_at, k.key_id"
)
SELECT_KEYS_OF_CLIENT = (
    KEY_COLUMNS
    + " WHERE k.community_id = $1 AND k.client_id = $2 ORDER BY k.registered_at, k.key_id"
)
SELECT_KEYS_OF_COMMUNITY = (
    KEY_COLUMNS + " WHERE k.community_id = $1 ORDER BY k.registered_at, k.key_id"
)
REVOKE_KEY = """
UPDATE member_keys SET revoked_at = now()
 WHERE community_id = $1 AND key_id = $2 AND revoked_at IS NULL
"""
SELECT_POLICY = """
SELECT coalesce((SELECT signatures FROM community_policies WHERE community_id = $1), 'optional')
"""
UPSERT_POLICY = """
INSERT INTO community_policies (community_id, signatures) VALUES ($1, $2)
ON CONFLICT (community_id) DO UPDATE SET signatures = EXCLUDED.signatures, updated_at = now()
"""


@dataclass(frozen=True, slots=True)
class MemberKey:
    community_id: uuid.UUID
    key_id: str
    party_id: uuid.UUID
    person_id: uuid.UUID | None
    client_id: uuid.UUID | None
    algorithm: str
    public_key: bytes
    label: str
    registered_at: datetime
    revoked_at: datetime | None


def _key(row: asyncpg.Record) -> MemberKey:
    return MemberKey(**{**dict(row), "public_key": bytes(row["public_key"])})


# The most live keys kept in memory (all communities together), the least recently
# used forgotten first: about 200 bytes each.
LIVE_KEYS_CACHED_MAX = 100_000


class KeyStore:
    """Members' keys and the community's signature policy. With a cache
    (`cache_ttl_s` > 0), live keys are kept once read, and policies for
    `cache_ttl_s`; changes made through this store apply at once. A key revoked
    through another process may still be found live here: the database refuses
    its signature when the write is made (key_revoked), and `forget` drops it."""

    def __init__(self, pool: asyncpg.Pool, *, cache_ttl_s: float = 0.0) -> None:
        self._pool = pool
        self._cache_ttl_s = cache_ttl_s
        # Live keys by (community, key id), least recently used first. A key never
        # changes but for its revocation, which the database judges at write time.
        self._live: OrderedDict[tuple[uuid.UUID, str], MemberKey] = OrderedDict()
        self._policies: dict[uuid.UUID, tuple[float, str]] = {}

    async def register(
        self,
        community_id: uuid.UUID,
        *,
        key_id: str,
        party_id: uuid.UUID,
        person_id: uuid.UUID | None,
        client_id: uuid.UUID | None,
        algorithm: str,
        public_key: bytes,
        label: str,
    ) -> MemberKey:
        """Registers a public key (logged); already_exists if it is registered."""
        row = await run_translated(
            lambda: self._pool.fetchrow(
                INSERT_KEY,
                community_id,
                key_id,
                party_id,
                person_id,
                client_id,
                algorithm,
                public_key,
                label,
            )
        )
        if row is None:
            raise DuplicateName("this key is already registered in this community", key_id=key_id)
        return _key(row)

    async def get(
        self, community_id: uuid.UUID, key_id: str, *, cached: bool = False
    ) -> MemberKey | None:
        """The key; with `cached`, a live key read before may be answered from
        memory (see the class)."""
        use_cache = cached and self._cache_ttl_s > 0
        if use_cache:
            known = self._live.get((community_id, key_id))
            if known is not None:
                self._live.move_to_end((community_id, key_id))
                return known
        row = await run_translated(lambda: self._pool.fetchrow(SELECT_KEY, community_id, key_id))
        key = None if row is None else _key(row)
        if use_cache and key is not None and key.revoked_at is None:
            self._live[(community_id, key_id)] = key
            if len(self._live) > LIVE_KEYS_CACHED_MAX:
                self._live.popitem(last=False)
        return key

    def forget(self, community_id: uuid.UUID, key_id: str) -> None:
        """Drops a key from memory: the database said it was revoked."""
        self._live.pop((community_id, key_id), None)

    async def of_person(
        self, person_id: uuid.UUID, community_id: uuid.UUID | None
    ) -> list[MemberKey]:
        rows = await run_translated(
            lambda: self._pool.fetch(SELECT_KEYS_OF_PERSON, person_id, community_id)
        )
        return [_key(row) for row in rows]

    async def of_client(self, community_id: uuid.UUID, client_id: uuid.UUID) -> list[MemberKey]:
        rows = await run_translated(
            lambda: self._pool.fetch(SELECT_KEYS_OF_CLIENT, community_id, client_id)
        )
        return [_key(row) for row in rows]

    async def of_community(self, community_id: uuid.UUID) -> list[MemberKey]:
        rows = await run_translated(
            lambda: self._pool.fetch(SELECT_KEYS_OF_COMMUNITY, community_id)
        )
        return [_key(row) for row in rows]

    async def revoke(self, community_id: uuid.UUID, key_id: str) -> None:
        """Revokes a key (logged); signatures made before stay valid. Revoking twice
        changes nothing."""
        await run_translated(lambda: self._pool.execute(REVOKE_KEY, community_id, key_id))
        self.forget(community_id, key_id)

    async def policy(self, community_id: uuid.UUID) -> str:
        """Whether signatures are `required` or `optional` here."""
        now = time.monotonic()
        known = self._policies.get(community_id)
        if known is not None and now - known[0] < self._cache_ttl_s:
            return known[1]
        policy = await run_translated(lambda: self._pool.fetchval(SELECT_POLICY, community_id))
        assert policy in ("optional", "required")
        self._policies[community_id] = (now, str(policy))
        return str(policy)

    async def set_policy(self, community_id: uuid.UUID, signatures: str) -> None:
        assert signatures in ("optional", "required")
        await run_translated(lambda: self._pool.execute(UPSERT_POLICY, community_id, signatures))
        self._policies.pop(community_id, None)
