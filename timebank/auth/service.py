"""People, logins and sessions: password logins throttled per account and per
address (the answer never says whether an email exists), short-lived access
tokens (signed JWTs) and refresh tokens that rotate on every use, a reused one
revoking its whole family."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass

import asyncpg

from timebank.auth import queries
from timebank.auth.access import Scope
from timebank.auth.client_ids import parse_client_id
from timebank.auth.errors import RateLimited, Unauthenticated
from timebank.auth.passwords import hash_password, spend_verification_time, verify_password
from timebank.auth.signing_keys import KeyRing
from timebank.settings import Settings

REFRESH_TOKEN_BYTES = 32
INVALID_LOGIN = "the email or the password is not right"
INVALID_CLIENT = "the client id or the secret is not right, or the client was revoked"


@dataclass(frozen=True, slots=True)
class ClientGrant:
    """What an API client's access token carries: its community, the party it acts
    for, and its scopes."""

    # The client's id in its community (the token's `sub`; see auth/client_ids.py).
    client_id: uuid.UUID
    community_id: uuid.UUID
    party_id: uuid.UUID
    scopes: frozenset[Scope]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request comes from, as its access token says: a person, or an API
    client (then `person_id` is None and `client` says what it may do)."""

    person_id: uuid.UUID | None
    is_operator: bool
    client: ClientGrant | None = None

    def __post_init__(self) -> None:
        assert (self.person_id is None) != (self.client is None), "a person or a client"

    @property
    def label(self) -> str:
        if self.client is not None:
            return f"client:{self.client.client_id}"
        return f"person:{self.person_id}"


@dataclass(frozen=True, slots=True)
class Membership:
    community_id: uuid.UUID
    slug: str
    name: str
    role: str
    party_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class Person:
    id: uuid.UUID
    email: str
    display_name: str
    is_operator: bool
    memberships: tuple[Membership, ...]


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    expires_in_s: int
    # None for API clients (client_credentials grants no refresh token, RFC 6749 4.4.3).
    refresh_token: str | None


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _account_key(email: str) -> str:
    return "email:" + email.strip().lower()


def _address_key(address: str) -> str:
    return "address:" + address


class IdentityService:
    def __init__(self, pool: asyncpg.Pool, settings: Settings, keys: KeyRing) -> None:
        self._pool = pool
        self._settings = settings
        self._keys = keys

    def principal(self, access_token: str) -> Principal:
        """The principal of a valid access token; Unauthenticated otherwise."""
        claims = self._keys.verify(
            access_token, audience=self._settings.token_audience, issuer=self._settings.token_issuer
        )
        try:
            subject_id = uuid.UUID(claims["sub"])
            if claims.get("client"):
                grant = ClientGrant(
                    client_id=subject_id,
                    community_id=uuid.UUID(claims["community"]),
                    party_id=uuid.UUID(claims["party"]),
                    scopes=frozenset(Scope(scope) for scope in str(claims["scope"]).split()),
                )
                return Principal(None, False, grant)
        except (ValueError, TypeError, KeyError) as error:
            raise Unauthenticated("the token names no person or client") from error
        return Principal(subject_id, bool(claims.get("operator", False)))

    async def person(self, person_id: uuid.UUID) -> Person:
        """A person with their memberships; Unauthenticated if they no longer exist."""
        row = await self._pool.fetchrow(queries.SELECT_PERSON, person_id)
        if row is None:
            raise Unauthenticated("the token's person no longer exists")
        memberships = await self._pool.fetch(queries.SELECT_MEMBERSHIPS_OF, person_id)
        return Person(
            id=row["id"],
            email=row["email"],
            display_name=row["display_name"],
            is_operator=row["is_operator"],
            memberships=tuple(Membership(**dict(membership)) for membership in memberships),
        )

    async def create_operator(self, email: str, password: str, display_name: str) -> bool:
        """Creates a platform operator; False (and nothing changed) if the email exists."""
        password_hash = hash_password(password)
        person_id = await self._pool.fetchval(
            queries.INSERT_OPERATOR, email, display_name, password_hash
        )
        return person_id is not None

    async def login(self, email: str, password: str, address: str) -> TokenPair:
        """Tokens for a right email and password; the same refusal for any wrong one,
        after the same time; RateLimited after too many failures."""
        settings = self._settings
        failures = await self._pool.fetchrow(
            queries.SELECT_FAILURES,
            _account_key(email),
            _address_key(address),
            settings.login_window_s,
        )
        assert failures is not None
        if (
            failures["account_failures"] >= settings.login_failures_max
            or failures["address_failures"] >= settings.login_failures_per_address_max
        ):
            raise RateLimited(retry_after_s=settings.login_window_s)
        person = await self._pool.fetchrow(queries.SELECT_PERSON_BY_EMAIL, email.strip())
        if person is None or person["password_hash"] is None:
            spend_verification_time(password)
            await self._record_failure(email, address)
            raise Unauthenticated(INVALID_LOGIN)
        if not verify_password(password, person["password_hash"]):
            await self._record_failure(email, address)
            raise Unauthenticated(INVALID_LOGIN)
        await self._pool.execute(queries.CLEAR_FAILURES, _account_key(email))
        return await self._issue(person["id"], person["is_operator"], family_id=uuid.uuid4())

    async def _record_failure(self, email: str, address: str) -> None:
        async with self._pool.acquire() as connection, connection.transaction():
            for key in (_account_key(email), _address_key(address)):
                await connection.fetchval(
                    queries.RECORD_FAILURE, key, self._settings.login_window_s
                )

    async def client_login(self, client_id: str, secret: str) -> TokenPair:
        """An access token for an API client's client_id and secret
        (client_credentials): the client is read in the community its client_id
        names (or, for a bare id issued before migration 0025, the one recorded for
        it). The same refusal for an unknown client, a wrong secret or a revoked one."""
        reference = parse_client_id(client_id)
        if reference is None:
            raise Unauthenticated(INVALID_CLIENT)
        community_id = reference.community_id
        if community_id is None:
            # Two reads, not a join, so that each runs where its rows live.
            community_id = await self._pool.fetchval(
                queries.SELECT_LEGACY_CLIENT_COMMUNITY, reference.id
            )
        row = (
            None
            if community_id is None
            else await self._pool.fetchrow(queries.SELECT_CLIENT, community_id, reference.id)
        )
        if (
            row is None
            or row["revoked_at"] is not None
            or not hmac.compare_digest(row["secret_hash"], _digest(secret))
        ):
            raise Unauthenticated(INVALID_CLIENT)
        now = int(time.time())
        settings = self._settings
        access_token = self._keys.sign(
            {
                "sub": str(reference.id),
                "iss": settings.token_issuer,
                "aud": settings.token_audience,
                "iat": now,
                "exp": now + settings.access_token_ttl_s,
                "jti": uuid.uuid4().hex,
                "client": True,
                "community": str(row["community_id"]),
                "party": str(row["party_id"]),
                "scope": " ".join(row["scopes"]),
            }
        )
        return TokenPair(access_token, settings.access_token_ttl_s, None)

    async def refresh(self, refresh_token: str) -> TokenPair:
        """New tokens for a refresh token used for the first time. A token used a
        second time was stolen or leaked: its whole family is revoked."""
        async with self._pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(queries.SELECT_REFRESH_TOKEN, _digest(refresh_token))
            if row is None or row["revoked_at"] is not None or row["expired"]:
                raise Unauthenticated("the refresh token is not valid")
            if row["used_at"] is not None:
                await connection.execute(queries.REVOKE_FAMILY, row["family_id"])
                reuse = True
            else:
                await connection.execute(queries.MARK_REFRESH_TOKEN_USED, row["id"])
                reuse = False
        if reuse:
            raise Unauthenticated("the refresh token was already used; the session is revoked")
        return await self._issue(row["person_id"], row["is_operator"], family_id=row["family_id"])

    async def logout(self, refresh_token: str) -> None:
        """Revokes the session the refresh token belongs to (unknown tokens: nothing)."""
        async with self._pool.acquire() as connection, connection.transaction():
            family_id = await connection.fetchval(queries.SELECT_FAMILY_OF, _digest(refresh_token))
            if family_id is not None:
                await connection.execute(queries.REVOKE_FAMILY, family_id)

    async def _issue(
        self, person_id: uuid.UUID, is_operator: bool, *, family_id: uuid.UUID
    ) -> TokenPair:
        settings = self._settings
        now = int(time.time())
        access_token = self._keys.sign(
            {
                "sub": str(person_id),
                "iss": settings.token_issuer,
                "aud": settings.token_audience,
                "iat": now,
                "exp": now + settings.access_token_ttl_s,
                "jti": uuid.uuid4().hex,
                "operator": is_operator,
            }
        )
        refresh_token = secrets.token_urlsafe(REFRESH_TOKEN_BYTES)
        await self._pool.execute(
            queries.INSERT_REFRESH_TOKEN,
            family_id,
            person_id,
            _digest(refresh_token),
            settings.refresh_token_ttl_s,
        )
        return TokenPair(access_token, settings.access_token_ttl_s, refresh_token)
