"""A community's people and organizations: who is in it with which role, who acts
for which organization, its API clients, and the actor a principal is in it.
Each change is one database transaction (a new member is a person, a party, a
membership and an account per unit, or nothing)."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from timebank.auth import queries
from timebank.auth.access import Actor, Role, Scope, client_actor, person_actor
from timebank.auth.client_ids import format_client_id
from timebank.auth.errors import Forbidden
from timebank.auth.passwords import check_password_policy, hash_password
from timebank.auth.service import Principal
from timebank.errors import NotFound
from timebank.ledger import queries as ledger_queries
from timebank.ledger.errors import (
    DuplicateName,
    UnknownCommunity,
    ValidationError,
)
from timebank.ledger.models import Community, Unit, UnitKind, validate_limits
from timebank.ledger.store import run_translated

CLIENT_SECRET_BYTES = 32
# Accounts never change owner, so who owns one is cached for the process's life.
ACCOUNT_OWNERS_CACHED_MAX = 200_000
ACTORS_CACHED_MAX = 100_000
DIRECTORY_PAGE_SIZE_MAX = 500


@dataclass(frozen=True, slots=True)
class AccountRef:
    id: uuid.UUID
    unit_code: str
    purpose: str


@dataclass(frozen=True, slots=True)
class Member:
    party_id: uuid.UUID
    person_id: uuid.UUID
    display_name: str
    email: str
    role: Role
    joined_at: datetime
    accounts: tuple[AccountRef, ...]


@dataclass(frozen=True, slots=True)
class Organization:
    party_id: uuid.UUID
    display_name: str
    kind: str
    created_at: datetime
    agent_party_ids: tuple[uuid.UUID, ...]
    accounts: tuple[AccountRef, ...]


@dataclass(frozen=True, slots=True)
class ApiClient:
    community_id: uuid.UUID
    # Its id in the community; what integrators send is `client_id` below.
    id: uuid.UUID
    party_id: uuid.UUID
    name: str
    scopes: tuple[Scope, ...]
    created_at: datetime
    revoked_at: datetime | None

    @property
    def client_id(self) -> str:
        """The client_id for the token endpoint (it names the community)."""
        return format_client_id(self.community_id, self.id)


def _community(row: asyncpg.Record) -> Community:
    return Community(id=row["id"], slug=row["slug"], name=row["name"], created_at=row["created_at"])


class Directory:
    def __init__(self, pool: asyncpg.Pool, *, actor_cache_ttl_s: float = 0.0) -> None:
        self._pool = pool
        self._account_owners: dict[tuple[uuid.UUID, uuid.UUID], uuid.UUID] = {}
        # (principal, community slug or id) -> community, actor, until (monotonic s).
        self._actors: dict[tuple[str, object], tuple[Community, Actor, float]] = {}
        self._actor_cache_ttl_s = actor_cache_ttl_s

    def forget_actors(self) -> None:
        """Drops every remembered standing: roles, agents or clients changed."""
        self._actors.clear()

    async def account_owners(
        self, community_id: uuid.UUID, account_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, uuid.UUID]:
        """The owner of each of these accounts of the community (unknown ones absent)."""
        owners: dict[uuid.UUID, uuid.UUID] = {}
        missing: list[uuid.UUID] = []
        for account_id in account_ids:
            owner_id = self._account_owners.get((community_id, account_id))
            if owner_id is None:
                missing.append(account_id)
            else:
                owners[account_id] = owner_id
        if missing:
            rows = await run_translated(
                lambda: self._pool.fetch(queries.SELECT_ACCOUNT_OWNERS, community_id, missing)
            )
            if len(self._account_owners) + len(rows) > ACCOUNT_OWNERS_CACHED_MAX:
                self._account_owners.clear()
            for row in rows:
                owners[row["id"]] = row["owner_id"]
                self._account_owners[(community_id, row["id"])] = row["owner_id"]
        return owners

    async def parties(
        self, community_id: uuid.UUID, party_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[str, str]]:
        """Kind and display name of each of these parties of the community."""
        rows = await run_translated(
            lambda: self._pool.fetch(queries.SELECT_PARTIES, community_id, list(set(party_ids)))
        )
        return {row["id"]: (row["kind"], row["display_name"]) for row in rows}

    # Who is asking, in which community.

    async def actor(
        self,
        principal: Principal,
        *,
        slug: str | None = None,
        community_id: uuid.UUID | None = None,
    ) -> tuple[Community, Actor]:
        """The community (by slug or id) and the principal's standing in it;
        Forbidden for a principal with none there, UnknownCommunity if it does not exist."""
        assert (slug is None) != (community_id is None), "a slug or an id"
        key: object = slug if slug is not None else community_id
        cache_key = (principal.label, key)
        remembered = self._actors.get(cache_key)
        if remembered is not None and remembered[2] > time.monotonic():
            return remembered[0], remembered[1]
        community, actor = await self._resolve_actor(principal, slug, key)
        if self._actor_cache_ttl_s > 0:
            if len(self._actors) >= ACTORS_CACHED_MAX:
                self._actors.clear()
            self._actors[cache_key] = (
                community,
                actor,
                time.monotonic() + self._actor_cache_ttl_s,
            )
        return community, actor

    async def _resolve_actor(
        self, principal: Principal, slug: str | None, key: object
    ) -> tuple[Community, Actor]:
        if principal.client is not None:
            query = (
                queries.SELECT_CLIENT_ACTOR_BY_SLUG
                if slug is not None
                else queries.SELECT_CLIENT_ACTOR_BY_ID
            )
            row = await self._fetchrow(query, key, principal.client.client_id)
            _require_community(row, key)
            assert row is not None
            if not row["client_active"]:
                raise Forbidden("this client does not belong to this community or was revoked")
            grant = principal.client
            return _community(row), client_actor(
                row["id"], party_id=grant.party_id, scopes=grant.scopes
            )
        query = (
            queries.SELECT_PERSON_ACTOR_BY_SLUG
            if slug is not None
            else queries.SELECT_PERSON_ACTOR_BY_ID
        )
        row = await self._fetchrow(query, key, principal.person_id)
        _require_community(row, key)
        assert row is not None
        actor = person_actor(
            row["id"],
            role=Role(row["role"]) if row["role"] is not None else None,
            party_id=row["party_id"],
            organization_ids=row["organization_ids"],
            community_party_id=row["community_party_id"],
            is_operator=principal.is_operator,
        )
        if actor.role is None and not actor.is_operator:
            raise Forbidden("you are not a member of this community")
        return _community(row), actor

    async def _fetchrow(self, query: str, *args: object) -> asyncpg.Record | None:
        return await run_translated(lambda: self._pool.fetchrow(query, *args))

    # Units: adding one opens an account in it for every member and organization.

    async def create_unit(
        self,
        community_id: uuid.UUID,
        *,
        code: str,
        name: str,
        kind: UnitKind,
        decimals: int,
        default_min_balance: int,
        default_max_balance: int,
    ) -> Unit:
        validate_limits(default_min_balance, default_max_balance)
        if kind is UnitKind.TIME and decimals != 0:
            raise ValidationError("a time unit counts whole minutes: decimals must be 0")

        async def create() -> Unit:
            async with self._pool.acquire() as connection, connection.transaction():
                if kind is UnitKind.TIME:
                    existing = await connection.fetchval(
                        "SELECT code FROM units WHERE community_id = $1 AND kind = 'time'",
                        community_id,
                    )
                    if existing is not None:
                        raise DuplicateName(
                            f"the community already has its time unit {existing}", unit=existing
                        )
                row = await connection.fetchrow(
                    ledger_queries.INSERT_UNIT,
                    community_id,
                    code,
                    name,
                    kind.value,
                    decimals,
                    default_min_balance,
                    default_max_balance,
                )
                assert row is not None
                await connection.execute(queries.OPEN_ACCOUNTS_FOR_UNIT, community_id, row["id"])
                return Unit(**{**dict(row), "kind": UnitKind(row["kind"])})

        return await run_translated(create)

    # Members.

    async def create_member(
        self,
        community_id: uuid.UUID,
        *,
        email: str,
        display_name: str,
        password: str | None,
        role: Role,
    ) -> Member:
        """A person (new, or known by email) joins the community with a party and a
        main account per unit; already_exists if they are a member already."""
        password_hash = None
        if password is not None:
            check_password_policy(password)
            password_hash = hash_password(password)

        async def create() -> uuid.UUID:
            async with self._pool.acquire() as connection, connection.transaction():
                person_id = await connection.fetchval(
                    queries.UPSERT_PERSON, email, display_name, password_hash
                )
                party_id = await connection.fetchval(
                    queries.INSERT_MEMBER_PARTY, community_id, display_name
                )
                joined = await connection.fetchval(
                    queries.INSERT_MEMBERSHIP, community_id, person_id, party_id, role.value
                )
                if joined is None:
                    raise DuplicateName(
                        f"{email} is already a member of this community", email=email
                    )
                await connection.execute(queries.OPEN_ACCOUNTS_FOR_PARTY, community_id, party_id)
                assert isinstance(party_id, uuid.UUID)
                return party_id

        party_id = await run_translated(create)
        self.forget_actors()
        (member,) = await self._members_where(community_id, party_id=party_id)
        return member

    async def members(
        self,
        community_id: uuid.UUID,
        *,
        search: str | None,
        after: tuple[str, uuid.UUID] | None,
        limit: int,
    ) -> list[Member]:
        """A page of the directory, by name, after the (name, party id) of the last
        member of the previous page."""
        # One more than a page, to tell whether another follows.
        assert 1 <= limit <= DIRECTORY_PAGE_SIZE_MAX + 1
        after_name, after_id = after if after is not None else ("", uuid.UUID(int=0))
        rows = await run_translated(
            lambda: self._pool.fetch(
                queries.SELECT_MEMBERS, community_id, search, after_name, after_id, limit
            )
        )
        return await self._with_accounts(community_id, rows)

    async def _members_where(self, community_id: uuid.UUID, *, party_id: uuid.UUID) -> list[Member]:
        rows = await run_translated(
            lambda: self._pool.fetch(queries.SELECT_MEMBER, community_id, party_id)
        )
        return await self._with_accounts(community_id, rows)

    async def member(self, community_id: uuid.UUID, party_id: uuid.UUID) -> Member | None:
        members = await self._members_where(community_id, party_id=party_id)
        return members[0] if members else None

    async def _with_accounts(
        self, community_id: uuid.UUID, rows: Sequence[asyncpg.Record]
    ) -> list[Member]:
        accounts = await self._accounts_of(community_id, [row["party_id"] for row in rows])
        return [
            Member(
                party_id=row["party_id"],
                person_id=row["person_id"],
                display_name=row["display_name"],
                email=row["email"],
                role=Role(row["role"]),
                joined_at=row["joined_at"],
                accounts=accounts.get(row["party_id"], ()),
            )
            for row in rows
        ]

    async def _accounts_of(
        self, community_id: uuid.UUID, party_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[AccountRef, ...]]:
        if not party_ids:
            return {}
        rows = await run_translated(
            lambda: self._pool.fetch(queries.SELECT_PARTY_ACCOUNTS, community_id, list(party_ids))
        )
        by_owner: dict[uuid.UUID, list[AccountRef]] = {}
        for row in rows:
            by_owner.setdefault(row["owner_id"], []).append(
                AccountRef(row["id"], row["unit_code"], row["purpose"])
            )
        return {owner: tuple(refs) for owner, refs in by_owner.items()}

    # Organizations and their agents.

    async def create_organization(
        self, community_id: uuid.UUID, *, name: str, kind: str
    ) -> Organization:
        async def create() -> uuid.UUID:
            async with self._pool.acquire() as connection, connection.transaction():
                row = await connection.fetchrow(
                    queries.INSERT_ORGANIZATION_PARTY, community_id, name
                )
                assert row is not None
                await connection.execute(queries.INSERT_ORGANIZATION, community_id, row["id"], kind)
                await connection.execute(queries.OPEN_ACCOUNTS_FOR_PARTY, community_id, row["id"])
                party_id: uuid.UUID = row["id"]
                return party_id

        party_id = await run_translated(create)
        return await self.organization(community_id, party_id)

    async def organizations(
        self, community_id: uuid.UUID, organization_id: uuid.UUID | None = None
    ) -> list[Organization]:
        rows = await run_translated(
            lambda: self._pool.fetch(queries.SELECT_ORGANIZATIONS, community_id, organization_id)
        )
        accounts = await self._accounts_of(community_id, [row["party_id"] for row in rows])
        return [
            Organization(
                party_id=row["party_id"],
                display_name=row["display_name"],
                kind=row["kind"],
                created_at=row["created_at"],
                agent_party_ids=tuple(row["agent_party_ids"]),
                accounts=accounts.get(row["party_id"], ()),
            )
            for row in rows
        ]

    async def organization(self, community_id: uuid.UUID, party_id: uuid.UUID) -> Organization:
        found = await self.organizations(community_id, party_id)
        if not found:
            raise NotFound(
                "no organization with this id in this community", organization_id=str(party_id)
            )
        return found[0]

    async def add_agent(
        self, community_id: uuid.UUID, organization_id: uuid.UUID, member_party_id: uuid.UUID
    ) -> Organization:
        """Names a member (by their party id) an agent of the organization."""
        await self.organization(community_id, organization_id)
        person_id = await run_translated(
            lambda: self._pool.fetchval(
                queries.SELECT_MEMBER_BY_PARTY, community_id, member_party_id
            )
        )
        if person_id is None:
            raise NotFound("no member with this id in this community", member=str(member_party_id))
        await run_translated(
            lambda: self._pool.execute(
                queries.INSERT_AGENT, community_id, organization_id, person_id
            )
        )
        self.forget_actors()
        return await self.organization(community_id, organization_id)

    # API clients.

    async def create_client(
        self,
        community_id: uuid.UUID,
        *,
        name: str,
        party_id: uuid.UUID,
        scopes: Sequence[Scope],
    ) -> tuple[ApiClient, str]:
        """A new client and its secret, which is shown once and never kept."""
        secret = secrets.token_urlsafe(CLIENT_SECRET_BYTES)
        scope_values = sorted({scope.value for scope in scopes})
        row = await run_translated(
            lambda: self._pool.fetchrow(
                queries.INSERT_CLIENT,
                community_id,
                party_id,
                name,
                hashlib.sha256(secret.encode()).digest(),
                scope_values,
            )
        )
        assert row is not None
        client = ApiClient(
            community_id=community_id,
            id=row["id"],
            party_id=party_id,
            name=name,
            scopes=tuple(Scope(value) for value in scope_values),
            created_at=row["created_at"],
            revoked_at=None,
        )
        return client, secret

    async def clients(self, community_id: uuid.UUID) -> list[ApiClient]:
        rows = await run_translated(lambda: self._pool.fetch(queries.SELECT_CLIENTS, community_id))
        return [
            ApiClient(
                community_id=community_id,
                id=row["id"],
                party_id=row["party_id"],
                name=row["name"],
                scopes=tuple(Scope(value) for value in row["scopes"]),
                created_at=row["created_at"],
                revoked_at=row["revoked_at"],
            )
            for row in rows
        ]

    async def revoke_client(self, community_id: uuid.UUID, client_id: uuid.UUID) -> bool:
        revoked = await run_translated(
            lambda: self._pool.fetchval(queries.REVOKE_CLIENT, community_id, client_id)
        )
        self.forget_actors()
        return revoked is not None

    async def party_kind(self, community_id: uuid.UUID, party_id: uuid.UUID) -> str | None:
        row = await self._fetchrow(queries.SELECT_PARTY, community_id, party_id)
        return None if row is None else str(row["kind"])


def _require_community(row: asyncpg.Record | None, key: object) -> None:
    if row is None:
        raise UnknownCommunity(community=str(key))
