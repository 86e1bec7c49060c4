"""Euro-backed local currency: exchange offices issue it against euros received,
businesses reconvert it to euros less a fee the association keeps, and the euro
reserve moves in the same database transaction as the ledger, so that at every
commit the currency in circulation equals the reserve plus the fees recorded."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import asyncpg

from timebank.auth.errors import Forbidden
from timebank.database import DatabaseConnection
from timebank.ledger import queries as ledger_queries
from timebank.ledger.errors import UnknownUnit, ValidationError
from timebank.ledger.models import (
    AMOUNT_MAX,
    LIMIT_ABSOLUTE_MAX,
    Posting,
    TransactionKind,
    TransactionRequest,
    validate_transaction,
)
from timebank.ledger.store import LedgerStore, in_transaction, run_translated
from timebank.pools.errors import UnknownCurrency

BASIS_POINTS = 10_000


def reconversion_split(amount: int, fee_bps: int) -> tuple[int, int]:
    """(euros paid to the business, fee kept by the association): the fee is
    rounded down, in the business's favour; the two sum to the amount."""
    assert 0 <= fee_bps <= BASIS_POINTS
    fee = amount * fee_bps // BASIS_POINTS
    return amount - fee, fee


@dataclass(frozen=True, slots=True)
class Currency:
    unit_code: str
    issuance_account: uuid.UUID
    fee_account: uuid.UUID
    reconversion_fee_bps: int
    reserve: int
    fees: int
    circulation: int
    offices: tuple[uuid.UUID, ...]


@dataclass(frozen=True, slots=True)
class Movement:
    transaction_id: uuid.UUID
    created: bool
    euros: int
    fee: int
    reserve: int


SELECT_CURRENCY = """
SELECT u.code AS unit_code, r.unit_id, r.issuance_account, r.fee_account,
       r.reconversion_fee_bps, r.reserve, r.fees, -a.balance AS circulation,
       coalesce((SELECT array_agg(o.organization_id ORDER BY o.organization_id)
                   FROM exchange_offices o
                  WHERE o.community_id = r.community_id AND o.unit_id = r.unit_id), '{}')
           AS offices
  FROM currency_reserves r
  JOIN units u ON u.community_id = r.community_id AND u.id = r.unit_id
  JOIN accounts a ON a.community_id = r.community_id AND a.id = r.issuance_account
 WHERE r.community_id = $1 AND u.code = $2
"""
SELECT_BACKED_ACCOUNTS = "SELECT issuance_account FROM currency_reserves WHERE community_id = $1"
SELECT_UNIT = "SELECT id, kind FROM units WHERE community_id = $1 AND code = $2"
SELECT_COMMUNITY_PARTY = "SELECT id FROM parties WHERE community_id = $1 AND kind = 'community'"
UPSERT_SYSTEM_ACCOUNT = """
INSERT INTO accounts (community_id, unit_id, owner_id, purpose, min_balance, max_balance)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (owner_id, unit_id, purpose, community_id) DO UPDATE SET purpose = EXCLUDED.purpose
RETURNING id
"""
UPSERT_RESERVE = """
INSERT INTO currency_reserves (community_id, unit_id, issuance_account, fee_account,
                               reconversion_fee_bps)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (community_id, unit_id) DO UPDATE
   SET reconversion_fee_bps = EXCLUDED.reconversion_fee_bps
"""
DELETE_OFFICES = "DELETE FROM exchange_offices WHERE community_id = $1 AND unit_id = $2"
INSERT_OFFICES = """
INSERT INTO exchange_offices (community_id, unit_id, organization_id)
SELECT $1, $2, o FROM unnest($3::uuid[]) AS o
"""
LOCK_RESERVE = """
SELECT r.unit_id, r.issuance_account, r.fee_account, r.reconversion_fee_bps, r.reserve
  FROM currency_reserves r JOIN units u ON u.community_id = r.community_id AND u.id = r.unit_id
 WHERE r.community_id = $1 AND u.code = $2
   FOR UPDATE OF r
"""
SELECT_IS_OFFICE = """
SELECT EXISTS (SELECT 1 FROM exchange_offices
                WHERE community_id = $1 AND unit_id = $2 AND organization_id = $3)
"""
SELECT_BUSINESS = """
SELECT o.party_id FROM accounts a
  JOIN organizations o ON o.community_id = a.community_id AND o.party_id = a.owner_id
 WHERE a.community_id = $1 AND a.id = $2 AND o.kind = 'business'
"""
INSERT_MOVEMENT = """
INSERT INTO reserve_movements (community_id, transaction_id, unit_id, kind, euros, fee, counterpart)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT DO NOTHING
RETURNING transaction_id
"""
MOVE_RESERVE = """
UPDATE currency_reserves SET reserve = reserve + $3, fees = fees + $4
 WHERE community_id = $1 AND unit_id = $2
RETURNING reserve
"""


class CurrencyStore:
    def __init__(
        self, pool: asyncpg.Pool, ledger: LedgerStore, *, cache_ttl_s: float = 0.0
    ) -> None:
        self._pool = pool
        self._ledger = ledger
        self._cache_ttl_s = cache_ttl_s
        self._backed: dict[uuid.UUID, tuple[float, frozenset[uuid.UUID]]] = {}

    async def backed_accounts(self, community_id: uuid.UUID) -> frozenset[uuid.UUID]:
        """The issuance accounts of euro-backed currencies, which only issuance
        and reconversion may move (cached for the TTL; refreshed on change)."""
        now = time.monotonic()
        cached = self._backed.get(community_id)
        if cached is not None and now - cached[0] < self._cache_ttl_s:
            return cached[1]
        rows = await run_translated(lambda: self._pool.fetch(SELECT_BACKED_ACCOUNTS, community_id))
        accounts = frozenset(row["issuance_account"] for row in rows)
        self._backed[community_id] = (now, accounts)
        return accounts

    async def currency(self, community_id: uuid.UUID, unit_code: str) -> Currency:
        row = await run_translated(
            lambda: self._pool.fetchrow(SELECT_CURRENCY, community_id, unit_code)
        )
        if row is None:
            raise UnknownCurrency(f"{unit_code!r} is not a euro-backed currency here")
        return Currency(
            unit_code=row["unit_code"],
            issuance_account=row["issuance_account"],
            fee_account=row["fee_account"],
            reconversion_fee_bps=row["reconversion_fee_bps"],
            reserve=row["reserve"],
            fees=row["fees"],
            circulation=row["circulation"],
            offices=tuple(row["offices"]),
        )

    async def set_up(
        self,
        community_id: uuid.UUID,
        unit_code: str,
        *,
        reconversion_fee_bps: int,
        offices: list[uuid.UUID],
    ) -> Currency:
        """Makes a currency unit euro-backed (its issuance and fee accounts are the
        community's), or changes its fee and exchange offices; logged."""
        if not 0 <= reconversion_fee_bps <= BASIS_POINTS:
            raise ValidationError("reconversion_fee_bps is 0 to 10,000", field="fee")

        async def write(connection: DatabaseConnection) -> None:
            unit = await connection.fetchrow(SELECT_UNIT, community_id, unit_code)
            if unit is None:
                raise UnknownUnit(unit=unit_code)
            if unit["kind"] != "currency":
                raise ValidationError("only a currency is backed by euros", field="unit")
            party = await connection.fetchval(SELECT_COMMUNITY_PARTY, community_id)
            issuance = await connection.fetchval(
                UPSERT_SYSTEM_ACCOUNT,
                community_id,
                unit["id"],
                party,
                "euro_issuance",
                -LIMIT_ABSOLUTE_MAX,
                0,
            )
            fees = await connection.fetchval(
                UPSERT_SYSTEM_ACCOUNT,
                community_id,
                unit["id"],
                party,
                "reconversion_fees",
                0,
                LIMIT_ABSOLUTE_MAX,
            )
            await connection.execute(
                UPSERT_RESERVE, community_id, unit["id"], issuance, fees, reconversion_fee_bps
            )
            await connection.execute(DELETE_OFFICES, community_id, unit["id"])
            await connection.execute(INSERT_OFFICES, community_id, unit["id"], offices)

        await in_transaction(self._pool, write)
        self._backed.pop(community_id, None)
        return await self.currency(community_id, unit_code)

    async def issue(
        self,
        community_id: uuid.UUID,
        transaction_id: uuid.UUID,
        *,
        unit_code: str,
        office_id: uuid.UUID,
        to_account: uuid.UUID,
        amount: int,
    ) -> Movement:
        """The office received `amount` euro cents: the same amount of currency is
        issued to the account, and the reserve grows by it. A retry issues once."""
        _require_amount(amount)

        async def write(connection: DatabaseConnection) -> Movement:
            reserve = await self._locked_reserve(connection, community_id, unit_code)
            if not await connection.fetchval(
                SELECT_IS_OFFICE, community_id, reserve["unit_id"], office_id
            ):
                raise Forbidden("only the currency's exchange offices issue it")
            request = TransactionRequest.transfer(
                id=transaction_id,
                community_id=community_id,
                unit_code=unit_code,
                from_account=reserve["issuance_account"],
                to_account=to_account,
                amount=amount,
                kind=TransactionKind.ISSUANCE,
                memo="euros received",
            )
            return await self._write(
                connection, community_id, request, reserve, "issuance", amount, 0, office_id
            )

        return await in_transaction(self._pool, write)

    async def reconvert(
        self,
        community_id: uuid.UUID,
        transaction_id: uuid.UUID,
        *,
        unit_code: str,
        from_account: uuid.UUID,
        amount: int,
    ) -> Movement:
        """A business returns `amount` of currency: it is paid amount less the fee
        in euros; the fee stays with the association in currency (and its euros
        leave the reserve as a recorded fee). A retry reconverts once."""
        _require_amount(amount)

        async def write(connection: DatabaseConnection) -> Movement:
            reserve = await self._locked_reserve(connection, community_id, unit_code)
            business = await connection.fetchval(SELECT_BUSINESS, community_id, from_account)
            if business is None:
                raise Forbidden("only a business's account is reconverted to euros")
            euros, fee = reconversion_split(amount, reserve["reconversion_fee_bps"])
            postings = [Posting(from_account, -amount), Posting(reserve["issuance_account"], euros)]
            if fee:
                postings.append(Posting(reserve["fee_account"], fee))
            request = TransactionRequest(
                id=transaction_id,
                community_id=community_id,
                kind=TransactionKind.RECONVERSION,
                postings=tuple(postings),
                memo="reconverted to euros",
                unit_code=unit_code,
            )
            return await self._write(
                connection, community_id, request, reserve, "reconversion", euros, fee, business
            )

        return await in_transaction(self._pool, write)

    async def _locked_reserve(
        self, connection: DatabaseConnection, community_id: uuid.UUID, unit_code: str
    ) -> asyncpg.Record:
        reserve = await connection.fetchrow(LOCK_RESERVE, community_id, unit_code)
        if reserve is None:
            raise UnknownCurrency(f"{unit_code!r} is not a euro-backed currency here")
        return reserve

    async def _write(
        self,
        connection: DatabaseConnection,
        community_id: uuid.UUID,
        request: TransactionRequest,
        reserve: asyncpg.Record,
        kind: str,
        euros: int,
        fee: int,
        counterpart: uuid.UUID,
    ) -> Movement:
        """The ledger transaction, its reserve movement and the reserve's new
        total, together; a transaction found written changes nothing."""
        validate_transaction(request, expiry_max_s=1)
        row = await connection.fetchrow(
            ledger_queries.POST_ONE, *self._ledger.post_one_arguments(request)
        )
        assert row is not None
        if row["outcome"] != "created":
            return Movement(request.id, False, euros, fee, reserve["reserve"])
        await connection.execute(
            INSERT_MOVEMENT,
            community_id,
            request.id,
            reserve["unit_id"],
            kind,
            euros,
            fee,
            counterpart,
        )
        change = euros if kind == "issuance" else -(euros + fee)
        total = await connection.fetchval(
            MOVE_RESERVE, community_id, reserve["unit_id"], change, fee
        )
        return Movement(request.id, True, euros, fee, total)


def _require_amount(amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= AMOUNT_MAX:
        raise ValidationError(f"amount is 1 to {AMOUNT_MAX}", field="amount")
