"""Members' device keys and the community's signature policy, in PostgreSQL. The
database logs every registration and revocation (sql/0007_member_keys.sql)."""

from __future__ import annotations

import uuid
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
SELECT_KEYS_OF_CLIENT = KEY_COLUMNS + " WHERE k.client_id = $1 ORDER BY k.registered_at, k.key_id"
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


class KeyStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

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

    async def get(self, community_id: uuid.UUID, key_id: str) -> MemberKey | None:
        row = await run_translated(lambda: self._pool.fetchrow(SELECT_KEY, community_id, key_id))
        return None if row is None else _key(row)

    async def of_person(
        self, person_id: uuid.UUID, community_id: uuid.UUID | None
    ) -> list[MemberKey]:
        rows = await run_translated(
            lambda: self._pool.fetch(SELECT_KEYS_OF_PERSON, person_id, community_id)
        )
        return [_key(row) for row in rows]

    async def of_client(self, client_id: uuid.UUID) -> list[MemberKey]:
        rows = await run_translated(lambda: self._pool.fetch(SELECT_KEYS_OF_CLIENT, client_id))
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

    async def policy(self, community_id: uuid.UUID) -> str:
        policy = await run_translated(lambda: self._pool.fetchval(SELECT_POLICY, community_id))
        assert policy in ("optional", "required")
        return str(policy)

    async def set_policy(self, community_id: uuid.UUID, signatures: str) -> None:
        assert signatures in ("optional", "required")
        await run_translated(lambda: self._pool.execute(UPSERT_POLICY, community_id, signatures))
