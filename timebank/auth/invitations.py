"""Invitations: a one-time link with which an invited person sets their own
password. Only the token's SHA-256 is kept; a token works once, until it
expires, unless an admin revoked it first. Never sets the password of a person
who has one (a link an admin can copy must not take over someone's login)."""

from __future__ import annotations

import enum
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from timebank.auth import queries
from timebank.auth.errors import InvitationInvalid
from timebank.auth.passwords import hash_password
from timebank.ledger.store import run_translated

INVITATION_TOKEN_BYTES = 32
# An admin's list of invitations shows the latest ones.
INVITATIONS_LISTED_MAX = 200
INVITATION_TTL_S_MAX = 90 * 24 * 3600
TOKEN_SEPARATOR = "."  # noqa: S105 (a separator, not a secret)


class InvitationState(enum.StrEnum):
    PENDING = "pending"
    USED = "used"
    REVOKED = "revoked"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Invitation:
    id: uuid.UUID
    party_id: uuid.UUID
    email: str
    display_name: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None

    def state(self, now: datetime) -> InvitationState:
        if self.used_at is not None:
            return InvitationState.USED
        if self.revoked_at is not None:
            return InvitationState.REVOKED
        if self.expires_at <= now:
            return InvitationState.EXPIRED
        return InvitationState.PENDING


@dataclass(frozen=True, slots=True)
class Accepted:
    """Whose invitation was used: they log in with this email and their password."""

    email: str
    community_id: uuid.UUID


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_token(community_id: uuid.UUID) -> str:
    """`<community id>.<secret>`: the community it belongs to, readable (not a
    secret), so that it is looked up within that community only."""
    return f"{community_id}{TOKEN_SEPARATOR}{secrets.token_urlsafe(INVITATION_TOKEN_BYTES)}"


def community_of_token(token: str) -> uuid.UUID | None:
    """The community a token names; None for what is not one of our tokens."""
    community, separator, secret = token.partition(TOKEN_SEPARATOR)
    if not separator or not secret:
        return None
    try:
        return uuid.UUID(community)
    except ValueError:
        return None


def _invitation(row: asyncpg.Record) -> Invitation:
    return Invitation(
        id=row["id"],
        party_id=row["party_id"],
        email=row["email"],
        display_name=row["display_name"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        used_at=row["used_at"],
        revoked_at=row["revoked_at"],
    )


class InvitationStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def member_party(self, community_id: uuid.UUID, email: str) -> uuid.UUID | None:
        """The party of the community's member with this email, if there is one."""
        party_id = await run_translated(
            lambda: self._pool.fetchval(queries.SELECT_MEMBER_PARTY_BY_EMAIL, community_id, email)
        )
        assert party_id is None or isinstance(party_id, uuid.UUID)
        return party_id

    async def has_password(self, email: str) -> bool:
        """Whether a person with this email already has a password (then they log
        in with it and need no invitation)."""
        found = await run_translated(
            lambda: self._pool.fetchval(queries.SELECT_PERSON_HAS_PASSWORD, email)
        )
        return bool(found)

    async def create(
        self, community_id: uuid.UUID, party_id: uuid.UUID, *, ttl_s: int
    ) -> tuple[Invitation, str]:
        """A new invitation of a member without a password, and its token (shown
        once, never kept). Their earlier pending invitations are revoked: only the
        latest link works."""
        assert 0 < ttl_s <= INVITATION_TTL_S_MAX
        token = new_token(community_id)

        async def create() -> asyncpg.Record:
            async with self._pool.acquire() as connection, connection.transaction():
                await connection.execute(queries.REVOKE_PENDING_INVITATIONS, community_id, party_id)
                row = await connection.fetchrow(
                    queries.INSERT_INVITATION, community_id, party_id, token_hash(token), ttl_s
                )
                assert row is not None, "a member without a password is invited"
                return row

        invitation = _invitation(await run_translated(create))
        assert invitation.used_at is None
        assert invitation.revoked_at is None
        return invitation, token

    async def invitations(self, community_id: uuid.UUID) -> list[Invitation]:
        """The latest invitations, newest first, whatever their state."""
        rows = await run_translated(
            lambda: self._pool.fetch(
                queries.SELECT_INVITATIONS, community_id, INVITATIONS_LISTED_MAX
            )
        )
        return [_invitation(row) for row in rows]

    async def revoke(self, community_id: uuid.UUID, invitation_id: uuid.UUID) -> bool:
        """Revokes a pending invitation; False when there is no such one (unknown,
        used, or revoked already)."""
        revoked = await run_translated(
            lambda: self._pool.fetchval(queries.REVOKE_INVITATION, community_id, invitation_id)
        )
        return revoked is not None

    async def accept(self, token: str, password: str) -> Accepted:
        """Sets the invited person's password and spends the token, both or
        neither. An unknown, used, revoked or expired token, or a person who has a
        password by now, is invitation_invalid, all alike."""
        community_id = community_of_token(token)
        if community_id is None:
            raise InvitationInvalid("this invitation cannot be used")
        # The costly hash before the database transaction, which it must not hold open.
        password_hash = hash_password(password)

        async def accept() -> asyncpg.Record | None:
            async with self._pool.acquire() as connection, connection.transaction():
                row = await connection.fetchrow(
                    queries.CLAIM_INVITATION, community_id, token_hash(token)
                )
                if row is None:
                    return None
                updated = await connection.fetchval(
                    queries.SET_FIRST_PASSWORD, row["person_id"], password_hash
                )
                if updated is None:
                    # Rolls the claim back: the token stays as it was.
                    raise InvitationInvalid("this invitation cannot be used")
                return row

        row = await run_translated(accept)
        if row is None:
            raise InvitationInvalid("this invitation cannot be used")
        assert row["community_id"] == community_id
        return Accepted(email=row["email"], community_id=community_id)
