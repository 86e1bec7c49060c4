"""Who may do what in a community: pure rules, no I/O.

An `Actor` is a principal (a person or an API client) as seen from one community:
its role there, the parties whose accounts it may move, and its scopes. Every
endpoint resolves the actor of its community and asks it; nobody crosses
communities, because an actor exists only for the community it was built for."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from timebank.auth.errors import Forbidden


class Role(enum.StrEnum):
    """A person's role in one community."""

    MEMBER = "member"
    # Reads everything of the community and audits; never writes on others' accounts.
    TREASURER = "treasurer"
    # Manages members, units, limits, organizations, API clients and webhooks.
    ADMIN = "admin"


class Scope(enum.StrEnum):
    """What an API client's token allows; people hold every scope their role allows."""

    ACCOUNTS_READ = "accounts:read"
    TRANSACTIONS_READ = "transactions:read"
    TRANSACTIONS_WRITE = "transactions:write"
    MEMBERS_READ = "members:read"
    AUDIT_READ = "audit:read"
    WEBHOOKS_MANAGE = "webhooks:manage"


ALL_SCOPES = frozenset(Scope)


@dataclass(frozen=True, slots=True)
class Actor:
    """A principal acting in one community."""

    community_id: uuid.UUID
    # A person's role here; None for an API client, or for an operator who is not a member.
    role: Role | None
    # The person's own party here, or the client's party.
    party_id: uuid.UUID | None
    # Parties whose accounts the actor moves: a member's own party and the
    # organizations they are an agent of; an admin also the community's own party;
    # a client its party.
    acting_for: frozenset[uuid.UUID]
    scopes: frozenset[Scope]
    is_operator: bool = False
    is_client: bool = False

    def __post_init__(self) -> None:
        assert self.party_id is None or self.party_id in self.acting_for or self.is_client, (
            "an actor acts for its own party"
        )

    @property
    def label(self) -> str:
        return f"{'client' if self.is_client else 'person'} as {self.role or 'none'}"

    def require_scope(self, scope: Scope) -> None:
        if scope not in self.scopes:
            raise Forbidden(f"the token lacks the scope {scope.value}", scope=scope.value)

    def require_role(self, *roles: Role) -> None:
        """Only people with one of these roles here."""
        if self.role not in roles:
            wanted = " or ".join(role.value for role in roles)
            raise Forbidden(f"only a community {wanted} may do this", required_role=wanted)

    def require_admin(self) -> None:
        """Community admins only."""
        if self.role is not Role.ADMIN:
            raise Forbidden("only a community admin may do this", required_role="admin")

    def require_manager(self) -> None:
        """Who sets a community up: its admins, and platform operators (units,
        members, organizations and API clients; nothing of the ledger itself)."""
        if self.role is not Role.ADMIN and not self.is_operator:
            raise Forbidden("only a community admin may do this", required_role="admin")

    @property
    def sees_emails(self) -> bool:
        """Members' emails are for the community's staff and operators, not clients."""
        return self.is_operator or self.role in (Role.TREASURER, Role.ADMIN)

    def require_member(self) -> None:
        """Anyone with a role here, or a client of this community."""
        if self.role is None and not self.is_client:
            raise Forbidden("only the community's members may see this")

    @property
    def reads_all(self) -> bool:
        """Treasurers, admins and auditing clients read every account and transaction."""
        if self.is_client:
            return Scope.AUDIT_READ in self.scopes
        return self.role in (Role.TREASURER, Role.ADMIN)

    def may_read_account(self, owner_id: uuid.UUID) -> bool:
        if self.reads_all:
            return True
        return Scope.ACCOUNTS_READ in self.scopes and owner_id in self.acting_for

    def require_account_read(self, owner_id: uuid.UUID) -> None:
        if not self.may_read_account(owner_id):
            raise Forbidden("this account is not yours to read")

    def may_move(self, owner_id: uuid.UUID) -> bool:
        """Whether the actor may take value out of an account of this owner."""
        return Scope.TRANSACTIONS_WRITE in self.scopes and owner_id in self.acting_for

    def require_transaction_write(self, debited_owners: Iterable[uuid.UUID]) -> None:
        """Posting needs every debited account to be the actor's own."""
        self.require_scope(Scope.TRANSACTIONS_WRITE)
        for owner_id in debited_owners:
            if not self.may_move(owner_id):
                raise Forbidden(
                    "you may only move value out of your own accounts", owner_id=str(owner_id)
                )

    def require_pending_proposal(self, owners: Iterable[uuid.UUID]) -> None:
        """A pending transaction (to be confirmed by the payer) may be proposed by
        any of its parties: 'I helped you' awaits the helped member's yes."""
        self.require_scope(Scope.TRANSACTIONS_WRITE)
        if not any(owner_id in self.acting_for for owner_id in owners):
            raise Forbidden("you may only propose transactions you take part in")

    def may_read_transaction(self, owners: Iterable[uuid.UUID]) -> bool:
        if self.reads_all:
            return True
        return Scope.TRANSACTIONS_READ in self.scopes and any(
            owner_id in self.acting_for for owner_id in owners
        )

    def require_transaction_read(self, owners: Iterable[uuid.UUID]) -> None:
        if not self.may_read_transaction(owners):
            raise Forbidden("you take no part in this transaction")

    def require_void(self, owners: Iterable[uuid.UUID]) -> None:
        """Either side may decline or withdraw a pending transaction; an admin may
        void any of the community's."""
        self.require_scope(Scope.TRANSACTIONS_WRITE)
        if self.role is Role.ADMIN:
            return
        if not any(owner_id in self.acting_for for owner_id in owners):
            raise Forbidden("you take no part in this transaction")

    def require_audit(self) -> None:
        if not self.reads_all:
            raise Forbidden("only treasurers, admins and auditing clients read the whole ledger")


PERSON_SCOPES = ALL_SCOPES


def person_actor(
    community_id: uuid.UUID,
    *,
    role: Role | None,
    party_id: uuid.UUID | None,
    organization_ids: Iterable[uuid.UUID],
    community_party_id: uuid.UUID | None,
    is_operator: bool,
) -> Actor:
    """A person in a community: a member acts for their party and organizations;
    an admin also for the community's own accounts; a non-member only as operator."""
    if role is None:
        return Actor(community_id, None, None, frozenset(), frozenset(), is_operator=is_operator)
    acting_for = {party_id, *organization_ids} if party_id is not None else set()
    if role is Role.ADMIN and community_party_id is not None:
        acting_for.add(community_party_id)
    return Actor(
        community_id,
        role,
        party_id,
        frozenset(acting_for),
        PERSON_SCOPES,
        is_operator=is_operator,
    )


def client_actor(community_id: uuid.UUID, *, party_id: uuid.UUID, scopes: Iterable[Scope]) -> Actor:
    return Actor(
        community_id, None, party_id, frozenset({party_id}), frozenset(scopes), is_client=True
    )
