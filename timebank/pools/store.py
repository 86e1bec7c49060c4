"""Pools and levies in PostgreSQL. Every write is one database transaction: a
decision that reaches the pool's threshold pays the grant in the same
transaction, so a decision is never recorded without its consequence."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import asyncpg

from timebank.auth.errors import Forbidden
from timebank.database import DatabaseConnection
from timebank.ledger import queries as ledger_queries
from timebank.ledger.errors import UnknownAccount, UnknownUnit, ValidationError
from timebank.ledger.models import (
    AMOUNT_MAX,
    TransactionKind,
    TransactionRequest,
)
from timebank.ledger.store import LedgerStore, StoredSignature, in_transaction, run_translated
from timebank.pools import queries
from timebank.pools.errors import (
    CharterInvalid,
    DecisionConflict,
    RequestIdConflict,
    RequestNotOpen,
    UnknownPool,
)
from timebank.pools.models import (
    REASON_LENGTH_MAX,
    Charter,
    Decision,
    LevyPayer,
    LevyRule,
    RequestState,
    StaffRole,
    UnitTerms,
    check_grant,
    grant_transaction_id,
    request_outcome,
    validate_charter,
)

T = TypeVar("T")
REQUESTS_PAGE_SIZE_MAX = 100


@dataclass(frozen=True, slots=True)
class PoolUnit:
    terms: UnitTerms
    unit_id: uuid.UUID
    account_id: uuid.UUID
    balance: int


@dataclass(frozen=True, slots=True)
class Pool:
    id: uuid.UUID
    name: str
    charter: Charter
    units: tuple[PoolUnit, ...]
    created_at: datetime

    def unit(self, code: str) -> PoolUnit:
        for unit in self.units:
            if unit.terms.unit_code == code:
                return unit
        raise UnknownPool(f"the pool gives nothing in {code!r}", unit=code)


@dataclass(frozen=True, slots=True)
class HelpRequest:
    id: uuid.UUID
    pool_id: uuid.UUID
    beneficiary_id: uuid.UUID
    unit_code: str
    account_id: uuid.UUID
    amount: int
    reason: str
    state: RequestState
    created_at: datetime
    resolved_at: datetime | None
    transaction_id: uuid.UUID | None
    # (manager, decision), in the order they were made.
    decisions: tuple[tuple[uuid.UUID, Decision], ...]


@dataclass(frozen=True, slots=True)
class PoolPolicies:
    """What a community's pools take from its transfers: levies, and overflows
    (unit code, the pool account that takes what is above a payee's maximum)."""

    levies: tuple[LevyRule, ...]
    overflows: tuple[tuple[str, uuid.UUID], ...]

    def overflow_account(self, unit_code: str) -> uuid.UUID | None:
        return next((account for code, account in self.overflows if code == unit_code), None)


@dataclass(frozen=True, slots=True)
class Counterparty:
    party_id: uuid.UUID
    name: str
    kind: str


class PoolStore:
    """Pools, their requests and decisions, grants, and the community's levy rules
    (kept in a short-lived cache: they are read on every levied transfer)."""

    def __init__(
        self, pool: asyncpg.Pool, ledger: LedgerStore, *, levy_cache_ttl_s: float = 0.0
    ) -> None:
        self._pool = pool
        self._ledger = ledger
        self._levy_cache_ttl_s = levy_cache_ttl_s
        self._levy_cache: dict[uuid.UUID, tuple[float, PoolPolicies]] = {}

    async def _in_transaction(self, work: Callable[[DatabaseConnection], Awaitable[T]]) -> T:
        return await in_transaction(self._pool, work)

    # Pools and their charters.

    async def create_pool(self, community_id: uuid.UUID, name: str, charter: Charter) -> Pool:
        """A pool party, an account per unit (never below zero), its charter, logged."""
        validate_charter(charter)
        if not 1 <= len(name) <= 200:
            raise ValidationError("a pool's name is 1 to 200 characters", field="name")

        async def create(connection: DatabaseConnection) -> uuid.UUID:
            pool_id: uuid.UUID = await connection.fetchval(
                queries.INSERT_POOL_PARTY, community_id, name
            )
            await connection.execute(
                queries.INSERT_POOL, community_id, pool_id, *_pool_row(charter)
            )
            await self._write_charter(connection, community_id, pool_id, charter)
            return pool_id

        return await self.pool(community_id, await self._in_transaction(create))

    async def set_charter(
        self, community_id: uuid.UUID, pool_id: uuid.UUID, charter: Charter
    ) -> Pool:
        """Replaces the charter; a unit once given stays (requests name it), and
        decisions already made keep counting."""
        validate_charter(charter)
        current = await self.pool(community_id, pool_id)
        dropped = {unit.terms.unit_code for unit in current.units} - {
            terms.unit_code for terms in charter.units
        }
        if dropped:
            raise CharterInvalid(
                f"a pool keeps its units; missing: {', '.join(sorted(dropped))}", field="units"
            )

        async def update(connection: DatabaseConnection) -> None:
            found = await connection.fetchval(
                queries.UPDATE_POOL, community_id, pool_id, *_pool_row(charter)
            )
            if found is None:
                raise UnknownPool(pool_id=str(pool_id))
            await connection.execute(queries.DELETE_POOL_STAFF, community_id, pool_id)
            await self._write_charter(connection, community_id, pool_id, charter)

        await self._in_transaction(update)
        return await self.pool(community_id, pool_id)

    async def _write_charter(
        self,
        connection: DatabaseConnection,
        community_id: uuid.UUID,
        pool_id: uuid.UUID,
        charter: Charter,
    ) -> None:
        staff = [(party, StaffRole.MANAGER.value) for party in sorted(charter.managers)] + [
            (party, StaffRole.REFERRER.value) for party in sorted(charter.referrers)
        ]
        kinds = _pairs(
            await connection.fetch(
                queries.SELECT_PARTY_KINDS, community_id, [party for party, _ in staff]
            )
        )
        for party, role in staff:
            if kinds.get(party) != "member":
                raise CharterInvalid(
                    f"the {role} {party} is not a member of this community", field=f"{role}s"
                )
        await connection.execute(
            queries.INSERT_POOL_STAFF,
            community_id,
            pool_id,
            [party for party, _ in staff],
            [role for _, role in staff],
        )
        unit_ids = _pairs(
            await connection.fetch(
                queries.SELECT_UNITS_BY_CODE,
                community_id,
                [terms.unit_code for terms in charter.units],
            )
        )
        for terms in charter.units:
            unit_id = unit_ids.get(terms.unit_code)
            if unit_id is None:
                raise UnknownUnit(unit=terms.unit_code)
            account_id = await connection.fetchval(
                queries.INSERT_POOL_ACCOUNT, community_id, unit_id, pool_id
            )
            await connection.execute(
                queries.UPSERT_POOL_UNIT,
                community_id,
                pool_id,
                unit_id,
                account_id,
                terms.grant_max,
                terms.beneficiary_period_max,
                terms.eligible_at_or_below,
            )
        await connection.execute(queries.LOG_POOL_CHARTER, community_id, pool_id)

    async def pools(self, community_id: uuid.UUID, pool_id: uuid.UUID | None = None) -> list[Pool]:
        async def read() -> list[Pool]:
            rows = await self._pool.fetch(queries.SELECT_POOLS, community_id, pool_id)
            units = await self._pool.fetch(
                queries.SELECT_POOL_UNITS, community_id, [row["id"] for row in rows]
            )
            return [
                _pool(row, [unit for unit in units if unit["pool_id"] == row["id"]]) for row in rows
            ]

        return await run_translated(read)

    async def pool(self, community_id: uuid.UUID, pool_id: uuid.UUID) -> Pool:
        found = await self.pools(community_id, pool_id)
        if not found:
            raise UnknownPool(pool_id=str(pool_id))
        return found[0]

    async def is_staff(
        self, community_id: uuid.UUID, pool_id: uuid.UUID, party_id: uuid.UUID, role: StaffRole
    ) -> bool:
        return bool(
            await run_translated(
                lambda: self._pool.fetchval(
                    queries.SELECT_STAFF_ROLE, community_id, pool_id, party_id, role.value
                )
            )
        )

    # Referrals.

    async def refer(
        self,
        community_id: uuid.UUID,
        pool_id: uuid.UUID,
        party_id: uuid.UUID,
        *,
        referred_by: uuid.UUID,
        referred: bool,
    ) -> None:
        """Names (or stops naming) a member the pool may help; logged."""

        async def write(connection: DatabaseConnection) -> None:
            if referred:
                await connection.execute(
                    queries.INSERT_REFERRAL, community_id, pool_id, party_id, referred_by
                )
            else:
                await connection.execute(queries.DELETE_REFERRAL, community_id, pool_id, party_id)

        await self._in_transaction(write)

    # Requests for help and the managers' decisions.

    async def ask(
        self,
        community_id: uuid.UUID,
        request_id: uuid.UUID,
        *,
        pool_id: uuid.UUID,
        beneficiary_id: uuid.UUID,
        unit_code: str,
        amount: int,
        reason: str,
    ) -> tuple[HelpRequest, bool]:
        """Opens a request (True) or finds the same one made before (False)."""
        if isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= AMOUNT_MAX:
            raise ValidationError(f"amount is 1 to {AMOUNT_MAX}", field="amount")
        if len(reason) > REASON_LENGTH_MAX:
            raise ValidationError(
                f"reason is at most {REASON_LENGTH_MAX} characters", field="reason"
            )
        pool = await self.pool(community_id, pool_id)
        unit = pool.unit(unit_code)

        unit_id = unit.unit_id

        async def write(connection: DatabaseConnection) -> bool:
            account = await connection.fetchrow(
                queries.SELECT_BENEFICIARY_ACCOUNT, community_id, beneficiary_id, unit_id
            )
            if account is None:
                raise UnknownAccount(f"the beneficiary has no {unit_code} account", unit=unit_code)
            created = await connection.fetchval(
                queries.INSERT_REQUEST,
                community_id,
                request_id,
                pool_id,
                beneficiary_id,
                unit_id,
                account["id"],
                amount,
                reason,
            )
            return created is not None

        created = await self._in_transaction(write)
        found = await self.request(community_id, request_id)
        if not created and (
            found.pool_id,
            found.beneficiary_id,
            found.unit_code,
            found.amount,
            found.reason,
        ) != (
            pool_id,
            beneficiary_id,
            unit_code,
            amount,
            reason,
        ):
            raise RequestIdConflict(request_id=str(request_id))
        return found, created

    async def request(self, community_id: uuid.UUID, request_id: uuid.UUID) -> HelpRequest:
        row = await run_translated(
            lambda: self._pool.fetchrow(queries.SELECT_REQUEST, community_id, request_id)
        )
        if row is None:
            raise UnknownPool("no such request for help", request_id=str(request_id))
        return _request(row)

    async def requests(
        self,
        community_id: uuid.UUID,
        pool_id: uuid.UUID,
        *,
        state: RequestState | None = None,
        beneficiary_id: uuid.UUID | None = None,
        after: tuple[datetime, uuid.UUID] | None = None,
        limit: int = 50,
    ) -> list[HelpRequest]:
        """Newest first, by keyset: `after` is the last item of the previous page."""
        if not 1 <= limit <= REQUESTS_PAGE_SIZE_MAX:
            raise ValidationError(f"limit is 1 to {REQUESTS_PAGE_SIZE_MAX}", field="limit")
        rows = await run_translated(
            lambda: self._pool.fetch(
                queries.SELECT_REQUESTS,
                community_id,
                pool_id,
                state.value if state is not None else None,
                beneficiary_id,
                after[0] if after else None,
                after[1] if after else None,
                limit,
            )
        )
        return [_request(row) for row in rows]

    async def decide(
        self,
        community_id: uuid.UUID,
        request_id: uuid.UUID,
        *,
        pool_id: uuid.UUID,
        manager_id: uuid.UUID,
        decision: Decision,
        signature: StoredSignature | None = None,
    ) -> HelpRequest:
        """Records a manager's decision (with their signature, when given); the one
        that reaches the threshold pays the
        grant (caps and eligibility judged now) in the same transaction, or fails
        with the reason and records nothing. Deciding the same again answers the
        request as it stands."""

        async def write(connection: DatabaseConnection) -> None:
            current = await _locked_request(connection, community_id, pool_id, request_id)
            earlier = dict(current.decisions).get(manager_id)
            if earlier is not None:
                if earlier is not decision:
                    raise DecisionConflict(decision=earlier.value)
                return
            if current.state is not RequestState.OPEN:
                raise RequestNotOpen(state=current.state.value)
            is_manager = await connection.fetchval(
                queries.SELECT_STAFF_ROLE,
                community_id,
                current.pool_id,
                manager_id,
                StaffRole.MANAGER.value,
            )
            if not is_manager:
                raise Forbidden("only the pool's managers decide on its requests")
            await connection.execute(
                queries.INSERT_DECISION,
                community_id,
                request_id,
                manager_id,
                decision.value,
                signature.signed if signature else None,
                signature.signature if signature else None,
                signature.key_id if signature else None,
            )
            await self._settle(connection, community_id, current, decision)

        await self._in_transaction(write)
        return await self.request(community_id, request_id)

    async def _settle(
        self,
        connection: DatabaseConnection,
        community_id: uuid.UUID,
        request: HelpRequest,
        decision: Decision,
    ) -> None:
        pool_row = await connection.fetchrow(queries.LOCK_POOL, community_id, request.pool_id)
        assert pool_row is not None, "a request's pool exists (foreign key)"
        managers = await connection.fetchval(queries.COUNT_MANAGERS, community_id, request.pool_id)
        decisions = [d for _, d in request.decisions] + [decision]
        approvals = sum(d is Decision.APPROVE for d in decisions)
        outcome = request_outcome(
            approvals,
            len(decisions) - approvals,
            approvals_required=pool_row["approvals_required"],
            managers=max(managers, len(decisions)),
        )
        if outcome is RequestState.OPEN:
            return
        transaction_id = None
        if outcome is RequestState.PAID:
            transaction_id = grant_transaction_id(request.id)
            await self._pay(
                connection,
                community_id,
                pool_id=request.pool_id,
                transaction_id=transaction_id,
                beneficiary_id=request.beneficiary_id,
                unit_code=request.unit_code,
                amount=request.amount,
                request_id=request.id,
                granted_by=None,
                memo="",
            )
        await connection.execute(
            queries.RESOLVE_REQUEST, community_id, request.id, outcome.value, transaction_id
        )

    async def withdraw(
        self,
        community_id: uuid.UUID,
        request_id: uuid.UUID,
        *,
        pool_id: uuid.UUID,
        by: uuid.UUID,
    ) -> HelpRequest:
        """The beneficiary withdraws their open request; again answers it as it is."""

        async def write(connection: DatabaseConnection) -> None:
            current = await _locked_request(connection, community_id, pool_id, request_id)
            if current.beneficiary_id != by:
                raise Forbidden("only who asked withdraws a request")
            if current.state is RequestState.WITHDRAWN:
                return
            if current.state is not RequestState.OPEN:
                raise RequestNotOpen(state=current.state.value)
            await connection.execute(
                queries.RESOLVE_REQUEST, community_id, request_id, "withdrawn", None
            )

        await self._in_transaction(write)
        return await self.request(community_id, request_id)

    # Grants.

    async def grant(
        self,
        community_id: uuid.UUID,
        transaction_id: uuid.UUID,
        *,
        pool_id: uuid.UUID,
        manager_id: uuid.UUID,
        beneficiary_id: uuid.UUID,
        unit_code: str,
        amount: int,
        memo: str = "",
    ) -> uuid.UUID:
        """A manager grants directly, within the pool's caps; the transaction id is
        the client's (a retry pays once)."""
        if isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= AMOUNT_MAX:
            raise ValidationError(f"amount is 1 to {AMOUNT_MAX}", field="amount")
        if not await self.is_staff(community_id, pool_id, manager_id, StaffRole.MANAGER):
            raise Forbidden("only the pool's managers grant from it")

        async def write(connection: DatabaseConnection) -> None:
            await self._pay(
                connection,
                community_id,
                pool_id=pool_id,
                transaction_id=transaction_id,
                beneficiary_id=beneficiary_id,
                unit_code=unit_code,
                amount=amount,
                request_id=None,
                granted_by=manager_id,
                memo=memo,
            )

        await self._in_transaction(write)
        return transaction_id

    async def _pay(
        self,
        connection: DatabaseConnection,
        community_id: uuid.UUID,
        *,
        pool_id: uuid.UUID,
        transaction_id: uuid.UUID,
        beneficiary_id: uuid.UUID,
        unit_code: str,
        amount: int,
        request_id: uuid.UUID | None,
        granted_by: uuid.UUID | None,
        memo: str,
    ) -> None:
        """Pays a grant: caps and eligibility under the pool's lock, then one ledger
        transaction (the pool never goes below zero: its account's limit) and its
        record. A grant already paid under this id is found, not paid again."""
        pool_row = await connection.fetchrow(queries.LOCK_POOL, community_id, pool_id)
        if pool_row is None:
            raise UnknownPool(pool_id=str(pool_id))
        terms_row = await connection.fetchrow(
            queries.SELECT_POOL_UNIT_TERMS, community_id, pool_id, unit_code
        )
        if terms_row is None:
            raise UnknownPool(f"the pool gives nothing in {unit_code!r}", unit=unit_code)
        unit_id = terms_row["unit_id"]
        account = await connection.fetchrow(
            queries.SELECT_BENEFICIARY_ACCOUNT, community_id, beneficiary_id, unit_id
        )
        if account is None:
            raise UnknownAccount(f"the beneficiary has no {unit_code} account", unit=unit_code)
        ledger_request = TransactionRequest.transfer(
            id=transaction_id,
            community_id=community_id,
            unit_code=unit_code,
            from_account=terms_row["account_id"],
            to_account=account["id"],
            amount=amount,
            kind=TransactionKind.GRANT,
            memo=memo,
            category="solidarity",
        )
        already = await connection.fetchval(
            "SELECT fingerprint FROM transactions WHERE community_id = $1 AND id = $2",
            community_id,
            transaction_id,
        )
        if already is None:
            check_grant(
                _terms(terms_row),
                amount=amount,
                granted_in_period=await connection.fetchval(
                    queries.SELECT_GRANTED_IN_PERIOD,
                    community_id,
                    pool_id,
                    beneficiary_id,
                    unit_id,
                    pool_row["period_days"],
                ),
                beneficiary_balance=account["balance"],
                referred=await connection.fetchval(
                    queries.SELECT_IS_REFERRED, community_id, pool_id, beneficiary_id
                ),
                requires_referral=pool_row["requires_referral"],
            )
        await connection.fetchrow(
            ledger_queries.POST_ONE, *self._ledger.post_one_arguments(ledger_request)
        )
        await connection.execute(
            queries.INSERT_GRANT,
            community_id,
            transaction_id,
            pool_id,
            beneficiary_id,
            unit_id,
            amount,
            request_id,
            granted_by,
        )

    # Levies.

    async def levy_rules(
        self, community_id: uuid.UUID, *, fresh: bool = False
    ) -> tuple[LevyRule, ...]:
        """The levies in force (see policies)."""
        return (await self.policies(community_id, fresh=fresh)).levies

    async def policies(self, community_id: uuid.UUID, *, fresh: bool = False) -> PoolPolicies:
        """The levies and overflows in force, from a cache younger than its TTL
        unless `fresh`: they are read on every transfer."""
        now = time.monotonic()
        cached = self._levy_cache.get(community_id)
        if not fresh and cached is not None and now - cached[0] < self._levy_cache_ttl_s:
            return cached[1]

        async def read() -> PoolPolicies:
            levies = await self._pool.fetch(queries.SELECT_LEVY_RULES, community_id)
            overflows = await self._pool.fetch(queries.SELECT_OVERFLOWS, community_id)
            return PoolPolicies(
                levies=tuple(_levy_rule(row) for row in levies),
                overflows=tuple((row["unit_code"], row["account_id"]) for row in overflows),
            )

        policies = await run_translated(read)
        self._levy_cache[community_id] = (now, policies)
        return policies

    async def set_overflow(
        self, community_id: uuid.UUID, *, unit_code: str, pool_id: uuid.UUID | None
    ) -> PoolPolicies:
        """Payments above a payee's maximum overflow to the pool (None: refused
        again, as by default); logged."""
        if pool_id is not None:
            (await self.pool(community_id, pool_id)).unit(unit_code)

        async def write(connection: DatabaseConnection) -> None:
            unit_ids = _pairs(
                await connection.fetch(queries.SELECT_UNITS_BY_CODE, community_id, [unit_code])
            )
            if unit_code not in unit_ids:
                raise UnknownUnit(unit=unit_code)
            if pool_id is None:
                await connection.execute(queries.DELETE_OVERFLOW, community_id, unit_ids[unit_code])
            else:
                await connection.execute(
                    queries.UPSERT_OVERFLOW, community_id, unit_ids[unit_code], pool_id
                )

        await self._in_transaction(write)
        return await self.policies(community_id, fresh=True)

    async def set_levy(
        self,
        community_id: uuid.UUID,
        *,
        pool_id: uuid.UUID,
        unit_code: str,
        category: str | None,
        rate_bps: int,
        fixed_amount: int,
        paid_by: LevyPayer,
    ) -> tuple[LevyRule, ...]:
        """Puts a rule in force for the unit and category, retiring the one it
        replaces; both are logged. rate 0 and fixed 0: no levy any more."""
        pool = await self.pool(community_id, pool_id)
        pool.unit(unit_code)

        async def write(connection: DatabaseConnection) -> None:
            unit_ids = _pairs(
                await connection.fetch(queries.SELECT_UNITS_BY_CODE, community_id, [unit_code])
            )
            unit_id = unit_ids[unit_code]
            await connection.execute(queries.RETIRE_LEVY_RULE, community_id, unit_id, category)
            if rate_bps or fixed_amount:
                await connection.fetchval(
                    queries.INSERT_LEVY_RULE,
                    community_id,
                    pool_id,
                    unit_id,
                    category,
                    rate_bps,
                    fixed_amount,
                    paid_by.value,
                )

        await self._in_transaction(write)
        return await self.levy_rules(community_id, fresh=True)  # refreshes the cache

    async def counterparties(
        self, community_id: uuid.UUID, account_id: uuid.UUID, transaction_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[Counterparty]]:
        """For each transaction, the owners of its other legs."""
        rows = await run_translated(
            lambda: self._pool.fetch(
                queries.SELECT_COUNTERPARTIES, community_id, list(transaction_ids), account_id
            )
        )
        found: dict[uuid.UUID, list[Counterparty]] = {}
        for row in rows:
            found.setdefault(row["transaction_id"], []).append(
                Counterparty(row["owner_id"], row["display_name"], row["kind"])
            )
        return found


async def _locked_request(
    connection: DatabaseConnection,
    community_id: uuid.UUID,
    pool_id: uuid.UUID,
    request_id: uuid.UUID,
) -> HelpRequest:
    """The pool's request, locked: its decisions are taken one at a time."""
    locked = await connection.fetchval(queries.LOCK_REQUEST, community_id, request_id)
    if locked != pool_id:
        raise UnknownPool("the pool has no such request for help", request_id=str(request_id))
    row = await connection.fetchrow(queries.SELECT_REQUEST, community_id, request_id)
    assert row is not None, "a locked request exists"
    return _request(row)


def _pool_row(charter: Charter) -> tuple[object, ...]:
    return (
        charter.purpose,
        charter.approvals_required,
        charter.period_days,
        charter.requires_referral,
        charter.donors_visible,
    )


def _terms(row: asyncpg.Record) -> UnitTerms:
    return UnitTerms(
        unit_code=row["unit_code"],
        grant_max=row["grant_max"],
        beneficiary_period_max=row["beneficiary_period_max"],
        eligible_at_or_below=row["eligible_at_or_below"],
    )


def _pool(row: asyncpg.Record, units: Sequence[asyncpg.Record]) -> Pool:
    return Pool(
        id=row["id"],
        name=row["display_name"],
        charter=Charter(
            purpose=row["purpose"],
            managers=frozenset(row["managers"]),
            approvals_required=row["approvals_required"],
            units=tuple(_terms(unit) for unit in units),
            period_days=row["period_days"],
            referrers=frozenset(row["referrers"]),
            requires_referral=row["requires_referral"],
            donors_visible=row["donors_visible"],
        ),
        units=tuple(
            PoolUnit(
                terms=_terms(unit),
                unit_id=unit["unit_id"],
                account_id=unit["account_id"],
                balance=unit["balance"],
            )
            for unit in units
        ),
        created_at=row["created_at"],
    )


def _request(row: asyncpg.Record) -> HelpRequest:
    return HelpRequest(
        id=row["id"],
        pool_id=row["pool_id"],
        beneficiary_id=row["beneficiary_id"],
        unit_code=row["unit_code"],
        account_id=row["account_id"],
        amount=row["amount"],
        reason=row["reason"],
        state=RequestState(row["state"]),
        created_at=row["created_at"],
        resolved_at=row["resolved_at"],
        transaction_id=row["transaction_id"],
        decisions=tuple(
            (manager, Decision(decision))
            for manager, decision in zip(row["deciders"], row["decisions"], strict=True)
        ),
    )


def _levy_rule(row: asyncpg.Record) -> LevyRule:
    return LevyRule(
        id=row["id"],
        unit_code=row["unit_code"],
        category=row["category"],
        pool_id=row["pool_id"],
        account_id=row["account_id"],
        rate_bps=row["rate_bps"],
        fixed_amount=row["fixed_amount"],
        paid_by=LevyPayer(row["paid_by"]),
        created_at=row["created_at"],
    )


def _pairs(rows: Sequence[asyncpg.Record]) -> dict[Any, Any]:
    """A two-column result as a mapping from the first column to the second."""
    return {row[0]: row[1] for row in rows}
