"""The ledger's only door to PostgreSQL. It validates what needs no database with
the pure rules, makes each write one call to a ledger function, and turns database
errors into the ledger's named errors (never letting asyncpg's escape)."""

from __future__ import annotations

import asyncio
import functools
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import asyncpg

from timebank.database import DatabaseConnection
from timebank.errors import TimebankError
from timebank.ledger import queries
from timebank.ledger.coalescer import Coalescer
from timebank.ledger.errors import (
    AlreadyReversed,
    DatabaseUnavailable,
    DuplicateName,
    LedgerError,
    NotPending,
    UnknownAccount,
    UnknownCommunity,
    UnknownTransaction,
    UnknownUnit,
    ValidationError,
    error_from_code,
)
from timebank.ledger.models import (
    FLOW_PERIODS_MAX,
    MEMO_LENGTH_MAX,
    NEAR_LIMITS_SHARE_BPS_MAX,
    STATEMENT_PAGE_SIZE_DEFAULT,
    STATEMENT_PAGE_SIZE_MAX,
    Account,
    AccountStatus,
    Community,
    InactiveMember,
    Outcome,
    Party,
    PartyKind,
    StatementLine,
    StatementPage,
    StoredPosting,
    Transaction,
    TransactionKind,
    TransactionRequest,
    TransactionResult,
    TransactionState,
    Unit,
    UnitKind,
    default_reversal_id,
    require_int,
    reversal_fingerprint,
    validate_batch,
    validate_limits,
    validate_transaction,
)
from timebank.settings import Settings
from timebank.signing import intents
from timebank.signing.errors import KeyRevoked

# The kinds of coalesced calls that `LedgerStore`'s `on_call` is told of.
UNSIGNED_CALLS = "unsigned"
SIGNED_CALLS = "signed"

T = TypeVar("T")

LEDGER_ERROR_SQLSTATE = "TB000"
# Lock ordering makes these unexpected, but a bounded retry keeps them from a caller;
# every ledger write is all-or-nothing and idempotent, so a retry is safe.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
RETRY_ATTEMPTS_MAX = 5
RETRY_BACKOFF_S = 0.005
SEQ_AFTER_LAST = 2**63 - 1
# Later than any transaction, for the first page of the journal.
JOURNAL_AFTER_LAST = datetime(9999, 1, 1, tzinfo=UTC)
# The server is unreachable or going away (shutdown, restart, crash recovery). A
# connection lost during a call leaves its outcome unknown (the commit may have
# happened): the caller retries with the same transaction id, which is idempotent.
CONNECTION_SQLSTATE_CLASS = "08"
SERVER_GOING_AWAY_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})
# Text PostgreSQL cannot hold: a NUL character, or one outside the encoding.
UNSTORABLE_TEXT_SQLSTATES = frozenset({"22021", "22P05"})


def _translate(error: asyncpg.PostgresError) -> TimebankError | None:
    """The named ledger error behind a database error, or None if it is a bug."""
    sqlstate = getattr(error, "sqlstate", None) or ""
    if sqlstate.startswith(CONNECTION_SQLSTATE_CLASS) or sqlstate in SERVER_GOING_AWAY_SQLSTATES:
        return DatabaseUnavailable(
            f"the database is unavailable ({error}); the write may or may not have been"
            " made: retry with the same id"
        )
    if sqlstate == LEDGER_ERROR_SQLSTATE:
        detail = getattr(error, "detail", None)
        context: dict[str, Any] = json.loads(detail) if detail else {}
        return _named_error(str(getattr(error, "message", "")), context)
    if isinstance(error, asyncpg.UniqueViolationError):
        if error.constraint_name == "transactions_reversed_once":
            return AlreadyReversed("the transaction was reversed by a concurrent request")
        return DuplicateName(detail=error.detail or "already exists")
    if sqlstate in UNSTORABLE_TEXT_SQLSTATES:
        return ValidationError("the text holds a character that cannot be stored (such as NUL)")
    if isinstance(error, asyncpg.CheckViolationError | asyncpg.StringDataRightTruncationError):
        return ValidationError(f"refused by the ledger's constraints: {error.constraint_name}")
    return None


def _named_error(code: str, context: dict[str, Any]) -> TimebankError:
    """The named error the database gave by its code: a ledger error, or a signed
    write's key revoked before it was written (sql/0023)."""
    if code == KeyRevoked.code:
        return KeyRevoked("the key was revoked", **context)
    return error_from_code(code, context)


async def run_translated(operation: Callable[[], Awaitable[T]]) -> T:
    """Runs a database operation, retrying serialization failures and deadlocks a
    few times, and turns database errors into named errors (a bug stays a bug)."""
    for attempt in range(1, RETRY_ATTEMPTS_MAX + 1):
        try:
            return await operation()
        except asyncpg.PostgresError as error:
            if error.sqlstate in RETRYABLE_SQLSTATES and attempt < RETRY_ATTEMPTS_MAX:
                await asyncio.sleep(RETRY_BACKOFF_S * attempt)
                continue
            translated = _translate(error)
            if translated is None:
                raise
            raise translated from error
        except (TimeoutError, OSError, asyncpg.InterfaceError) as error:
            raise DatabaseUnavailable(str(error) or type(error).__name__) from error
    raise AssertionError("unreachable: the last attempt returns or raises")


async def in_transaction(
    pool: asyncpg.Pool, work: Callable[[DatabaseConnection], Awaitable[T]]
) -> T:
    """Runs `work` in one database transaction on a pooled connection, with the
    retries and named errors of run_translated: all of it, or nothing."""

    async def run() -> T:
        async with pool.acquire() as connection, connection.transaction():
            return await work(connection)

    return await run_translated(run)


@dataclass(frozen=True, slots=True)
class StoredSignature:
    """A signed document as received: `intent` (the payer's) or `ack` (the payee's)."""

    purpose: str
    signed: bytes
    signature: bytes
    key_id: str


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """A transaction request with its payer's signed intent, posted together."""

    request: TransactionRequest
    signature: StoredSignature

    @property
    def id(self) -> uuid.UUID:
        return self.request.id

    @property
    def community_id(self) -> uuid.UUID:
        return self.request.community_id


class LedgerStore:
    """Ledger operations on a connection pool."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: Settings,
        *,
        on_call: Callable[[str, int, float], None] | None = None,
    ) -> None:
        """`on_call(kind, transactions, seconds)` is told of each call that posted
        single transactions gathered together (kind `unsigned` or `signed`)."""
        self._pool = pool
        self._settings = settings
        self._coalescer: Coalescer[TransactionRequest] = Coalescer(
            self._post_gathered,
            batch_size_max=settings.coalesce_batch_size_max,
            in_flight_max=settings.coalesce_in_flight_max,
            on_call=None if on_call is None else functools.partial(on_call, UNSIGNED_CALLS),
        )
        # Signed transfers are gathered apart: their signatures go with them.
        self._signed_coalescer: Coalescer[SignedRequest] = Coalescer(
            self._post_signed_gathered,
            batch_size_max=settings.coalesce_batch_size_max,
            in_flight_max=settings.coalesce_in_flight_max,
            on_call=None if on_call is None else functools.partial(on_call, SIGNED_CALLS),
        )

    async def drain(self) -> None:
        """Waits until every transaction handed to the store is written or refused."""
        await self._signed_coalescer.drain()
        await self._coalescer.drain()

    async def _run(self, operation: Callable[[], Awaitable[T]]) -> T:
        return await run_translated(operation)

    async def _fetch(self, query: str, *args: object) -> list[asyncpg.Record]:
        return await self._run(lambda: self._pool.fetch(query, *args))

    async def _fetchrow(self, query: str, *args: object) -> asyncpg.Record | None:
        return await self._run(lambda: self._pool.fetchrow(query, *args))

    async def _execute(self, query: str, *args: object) -> None:
        await self._run(lambda: self._pool.execute(query, *args))

    # Communities, units, parties, accounts.

    async def create_community(self, slug: str, name: str) -> Community:
        async def create() -> Community:
            async with self._pool.acquire() as connection, connection.transaction():
                row = await connection.fetchrow(queries.INSERT_COMMUNITY, slug, name)
                assert row is not None
                await connection.execute(queries.INSERT_COMMUNITY_PARTY, row["id"], name)
                return Community(**dict(row))

        return await self._run(create)

    async def community_by_slug(self, slug: str) -> Community:
        row = await self._fetchrow(queries.SELECT_COMMUNITY_BY_SLUG, slug)
        if row is None:
            raise UnknownCommunity(f"no community with slug {slug!r}", slug=slug)
        return Community(**dict(row))

    async def community_party(self, community_id: uuid.UUID) -> Party:
        row = await self._fetchrow(queries.SELECT_COMMUNITY_PARTY, community_id)
        if row is None:
            raise UnknownCommunity(community_id=str(community_id))
        return Party(**{**dict(row), "kind": PartyKind(row["kind"])})

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
        row = await self._fetchrow(
            queries.INSERT_UNIT,
            community_id,
            code,
            name,
            kind.value,
            require_int(decimals, "decimals"),
            default_min_balance,
            default_max_balance,
        )
        assert row is not None
        return _unit(row)

    async def units(self, community_id: uuid.UUID) -> list[Unit]:
        return [_unit(row) for row in await self._fetch(queries.SELECT_UNITS, community_id)]

    async def create_party(
        self, community_id: uuid.UUID, kind: PartyKind, display_name: str
    ) -> Party:
        if kind is PartyKind.COMMUNITY:
            raise ValidationError("the community's own party is made with the community")
        row = await self._fetchrow(queries.INSERT_PARTY, community_id, kind.value, display_name)
        assert row is not None
        return Party(**{**dict(row), "kind": PartyKind(row["kind"])})

    async def open_account(
        self,
        community_id: uuid.UUID,
        *,
        owner_id: uuid.UUID,
        unit_id: uuid.UUID,
        purpose: str = "main",
        min_balance: int | None = None,
        max_balance: int | None = None,
    ) -> Account:
        if min_balance is not None or max_balance is not None:
            validate_limits(
                min_balance if min_balance is not None else 0,
                max_balance if max_balance is not None else 0,
            )
        account_id = await self._run(
            lambda: self._pool.fetchval(
                queries.INSERT_ACCOUNT,
                community_id,
                unit_id,
                owner_id,
                purpose,
                min_balance,
                max_balance,
            )
        )
        if account_id is None:
            raise UnknownUnit(
                "the unit or the owner is not in this community",
                unit_id=str(unit_id),
                owner_id=str(owner_id),
            )
        return await self.account(account_id)

    async def account(self, account_id: uuid.UUID) -> Account:
        row = await self._fetchrow(queries.SELECT_ACCOUNT, account_id)
        if row is None:
            raise UnknownAccount(account_id=str(account_id))
        return _account(row)

    async def near_limits(
        self, community_id: uuid.UUID, *, share_bps: int, limit: int
    ) -> list[Account]:
        """Members' and organizations' open accounts within `share_bps` (per 10,000)
        of their floor or their ceiling, reservations counted; at most `limit`."""
        assert 0 < share_bps <= NEAR_LIMITS_SHARE_BPS_MAX
        assert limit > 0
        rows = await self._fetch(queries.SELECT_NEAR_LIMITS, community_id, share_bps, limit)
        return [_account(row) for row in rows]

    async def inactive_members(
        self, community_id: uuid.UUID, *, since: datetime, limit: int
    ) -> list[InactiveMember]:
        """Members with no posting since `since` (nor joined since), at most `limit`."""
        assert since.tzinfo is not None
        assert limit > 0
        rows = await self._fetch(queries.SELECT_INACTIVE_MEMBERS, community_id, since, limit)
        return [
            InactiveMember(
                party_id=row["id"],
                display_name=row["display_name"],
                joined_at=row["created_at"],
                last_posted_at=row["last_posted_at"],
            )
            for row in rows
        ]

    async def set_limits(
        self, community_id: uuid.UUID, account_id: uuid.UUID, min_balance: int, max_balance: int
    ) -> Account:
        validate_limits(min_balance, max_balance)
        await self._execute(queries.SET_LIMITS, community_id, account_id, min_balance, max_balance)
        return await self.account(account_id)

    async def set_status(
        self, community_id: uuid.UUID, account_id: uuid.UUID, status: AccountStatus
    ) -> Account:
        await self._execute(queries.SET_STATUS, community_id, account_id, status.value)
        return await self.account(account_id)

    async def update_account(
        self,
        community_id: uuid.UUID,
        account_id: uuid.UUID,
        *,
        min_balance: int | None = None,
        max_balance: int | None = None,
        status: AccountStatus | None = None,
    ) -> Account:
        """Changes limits (a missing one stays) and status together, or nothing."""
        current = await self.account(account_id)
        if current.community_id != community_id:
            raise UnknownAccount(account_id=str(account_id))
        new_min = current.min_balance if min_balance is None else min_balance
        new_max = current.max_balance if max_balance is None else max_balance
        validate_limits(new_min, new_max)

        async def update() -> None:
            async with self._pool.acquire() as connection, connection.transaction():
                if min_balance is not None or max_balance is not None:
                    await connection.execute(
                        queries.SET_LIMITS, community_id, account_id, new_min, new_max
                    )
                if status is not None:
                    await connection.execute(
                        queries.SET_STATUS, community_id, account_id, status.value
                    )

        await self._run(update)
        return await self.account(account_id)

    async def accounts_of(
        self, community_id: uuid.UUID, owner_ids: Sequence[uuid.UUID]
    ) -> list[Account]:
        """The accounts of these owners, as they stand."""
        rows = await self._fetch(queries.SELECT_ACCOUNTS_OF_OWNERS, community_id, list(owner_ids))
        return [_account(row) for row in rows]

    # Transactions.

    async def post(self, request: TransactionRequest) -> TransactionResult:
        """Writes one transaction, or finds it written by an earlier call. Posts
        made at the same time share database calls (see coalescer)."""
        validate_transaction(request, expiry_max_s=self._settings.pending_expiry_max_s)
        return await self._coalescer.post(request)

    async def _post_gathered(
        self, requests: Sequence[TransactionRequest]
    ) -> list[TransactionResult | TimebankError]:
        # Each was validated by post(); the coalescer makes a valid batch of them
        # (one community, distinct ids, at most coalesce_batch_size_max).
        if len(requests) > 1:
            return await self._post_each(requests)
        try:
            return [await self._post_one(requests[0])]
        except LedgerError as error:
            return [error]

    async def _post_one(self, request: TransactionRequest) -> TransactionResult:
        row = await self._fetchrow(queries.POST_ONE, *self.post_one_arguments(request))
        assert row is not None
        return _result(request, row)

    def post_one_arguments(self, request: TransactionRequest) -> tuple[object, ...]:
        """The arguments of queries.POST_ONE for a request already validated, for
        callers that post within a database transaction of their own."""
        return (
            request.community_id,
            request.id,
            request.kind.value,
            request.memo,
            request.category,
            request.fingerprint(),
            request.unit_code,
            request.pending,
            self._expires_in_s(request),
            None,
            [posting.account_id for posting in request.postings],
            [posting.amount for posting in request.postings],
        )

    def _expires_in_s(self, request: TransactionRequest) -> int | None:
        if not request.pending:
            return None
        return request.expires_in_s or self._settings.pending_expiry_default_s

    async def post_atomic(self, requests: Sequence[TransactionRequest]) -> list[TransactionResult]:
        """Writes all the transactions or, on the first error, none of them."""
        validate_batch(requests, expiry_max_s=self._settings.pending_expiry_max_s)
        query, arguments = self._atomic_call(requests)
        rows = await self._fetch(query, *arguments)
        results: list[TransactionResult | None] = [None] * len(requests)
        for row in rows:
            for tx_index in row["tx_indexes"]:
                assert results[tx_index - 1] is None, f"transaction {tx_index} has one result"
                results[tx_index - 1] = _result(requests[tx_index - 1], row)
        written = [result for result in results if result is not None]
        assert len(written) == len(requests), "every transaction of the batch has a result"
        return written

    async def post_independent(
        self, requests: Sequence[TransactionRequest]
    ) -> list[TransactionResult | TimebankError]:
        """Writes each transaction on its own; one result or named error per item."""
        validate_batch(requests, expiry_max_s=self._settings.pending_expiry_max_s)
        return await self._post_each(requests)

    async def _post_each(
        self, requests: Sequence[TransactionRequest]
    ) -> list[TransactionResult | TimebankError]:
        """post_independent for requests already validated (each, and as a batch)."""
        rows = await self._fetch(queries.POST_EACH, *self.batch_arguments(requests))
        return self._results(requests, rows)

    def _results(
        self, requests: Sequence[TransactionRequest], rows: list[asyncpg.Record]
    ) -> list[TransactionResult | TimebankError]:
        """Each request's result or named error, from an independent batch's rows
        (a signed batch may also name a revoked key)."""
        rows.sort(key=lambda row: row["tx_index"])
        assert len(rows) == len(requests), "every transaction of the batch has a result"
        results: list[TransactionResult | TimebankError] = []
        for request, row in zip(requests, rows, strict=True):
            if row["outcome"] in (Outcome.CREATED, Outcome.EXISTS):
                results.append(_result(request, row))
            else:
                context = json.loads(row["error_detail"]) if row["error_detail"] else {}
                context.pop("index", None)
                results.append(_named_error(row["outcome"], context))
        return results

    def _atomic_call(
        self, requests: Sequence[TransactionRequest]
    ) -> tuple[str, tuple[object, ...]]:
        """POST_ATOMIC_GROUPED and its arguments for validated requests, or the
        uniform form when they share every value but their ids and postings."""
        first = requests[0]
        shared = _shared_values(first)
        if any(_shared_values(request) != shared for request in requests):
            return queries.POST_ATOMIC_GROUPED, self.batch_arguments(requests)
        return queries.POST_ATOMIC_UNIFORM_GROUPED, (
            first.community_id,
            [request.id for request in requests],
            first.kind.value,
            first.memo,
            first.category,
            [request.fingerprint() for request in requests],
            first.unit_code,
            first.pending,
            self._expires_in_s(first),
            *_legs(requests),
        )

    def batch_arguments(self, requests: Sequence[TransactionRequest]) -> tuple[object, ...]:
        """The arguments of queries.POST_ATOMIC and POST_EACH for validated
        requests, for callers that post within a database transaction of their own."""
        return (
            requests[0].community_id,
            [request.id for request in requests],
            [request.kind.value for request in requests],
            [request.memo for request in requests],
            [request.category for request in requests],
            [request.fingerprint() for request in requests],
            [request.unit_code for request in requests],
            [request.pending for request in requests],
            [self._expires_in_s(request) for request in requests],
            [None] * len(requests),
            *_legs(requests),
        )

    async def confirm(
        self, community_id: uuid.UUID, transaction_id: uuid.UUID
    ) -> TransactionResult:
        """Posts a pending transaction; confirming it again answers `exists`."""
        return await self._resolve(queries.CONFIRM, community_id, transaction_id)

    async def void(self, community_id: uuid.UUID, transaction_id: uuid.UUID) -> TransactionResult:
        """Voids a pending transaction, releasing its holds; again answers `exists`."""
        return await self._resolve(queries.VOID, community_id, transaction_id)

    async def _resolve(
        self, query: str, community_id: uuid.UUID, transaction_id: uuid.UUID
    ) -> TransactionResult:
        row = await self._fetchrow(query, community_id, transaction_id)
        assert row is not None
        return _resolution_result(transaction_id, row)

    # Signed writes: the signature is stored and logged with the write, in its
    # database transaction; a write that only finds an earlier one keeps nothing.

    async def post_signed(
        self, request: TransactionRequest, signature: StoredSignature
    ) -> TransactionResult:
        """Posts one transaction with its payer's signed intent, stored and logged
        with it only if this call writes it. Signed posts made at the same time
        share database calls, as unsigned ones do."""
        validate_transaction(request, expiry_max_s=self._settings.pending_expiry_max_s)
        assert signature.purpose == "intent", "a posted transaction carries its intent"
        return await self._signed_coalescer.post(SignedRequest(request, signature))

    async def _post_signed_gathered(
        self, signed: Sequence[SignedRequest]
    ) -> list[TransactionResult | TimebankError]:
        requests = [item.request for item in signed]
        rows = await self._fetch(
            queries.POST_SIGNED_EACH,
            *self.batch_arguments(requests),
            # Spelled as the log writes them (sql/0034).
            [intents.b64url_encode(item.signature.signed) for item in signed],
            [intents.b64url_encode(item.signature.signature) for item in signed],
            [item.signature.key_id for item in signed],
        )
        return self._results(requests, rows)

    async def confirm_signed(
        self, community_id: uuid.UUID, transaction_id: uuid.UUID, signature: StoredSignature
    ) -> TransactionResult:
        """Confirms a pending transaction with its payee's signed acknowledgement."""
        row = await self._signed_write(
            community_id, transaction_id, signature, queries.CONFIRM, (community_id, transaction_id)
        )
        return _resolution_result(transaction_id, row)

    async def void_signed(
        self, community_id: uuid.UUID, transaction_id: uuid.UUID, signature: StoredSignature
    ) -> TransactionResult:
        """Voids a pending transaction with its payee's signed refusal."""
        row = await self._signed_write(
            community_id, transaction_id, signature, queries.VOID, (community_id, transaction_id)
        )
        return _resolution_result(transaction_id, row)

    async def _signed_write(
        self,
        community_id: uuid.UUID,
        transaction_id: uuid.UUID,
        signature: StoredSignature,
        query: str,
        arguments: Sequence[object],
    ) -> asyncpg.Record:
        async def write() -> asyncpg.Record:
            async with self._pool.acquire() as connection:
                transaction = connection.transaction()
                await transaction.start()
                try:
                    await connection.execute(
                        queries.STAGE_RESOLUTION_SIGNATURE,
                        community_id,
                        transaction_id,
                        signature.purpose,
                        signature.signed,
                        signature.signature,
                        signature.key_id,
                    )
                    row = await connection.fetchrow(query, *arguments)
                    assert row is not None
                except BaseException:
                    await transaction.rollback()
                    raise
                if row["outcome"] == Outcome.CREATED:
                    await transaction.commit()
                else:
                    # Found, not written: keep nothing of this call.
                    await transaction.rollback()
                return row

        return await self._run(write)

    async def signatures(
        self, community_id: uuid.UUID, transaction_id: uuid.UUID
    ) -> list[StoredSignature]:
        rows = await self._fetch(
            queries.SELECT_TRANSACTION_LOG_ENTRIES, community_id, transaction_id
        )
        return [
            signature for row in rows for signature in _signatures_of_entry(bytes(row["entry"]))
        ]

    async def record_proposal_amount(
        self, community_id: uuid.UUID, transaction_id: uuid.UUID, amount: int
    ) -> None:
        """Keeps the amount a pending transfer was proposed for (before any levy),
        which its payer's confirmation must sign; the first one written stays."""
        assert amount > 0
        await self._execute(queries.INSERT_PROPOSAL_AMOUNT, community_id, transaction_id, amount)

    async def proposal_amount(
        self, community_id: uuid.UUID, transaction_id: uuid.UUID
    ) -> int | None:
        """The amount a pending transfer was proposed for; None for a transaction
        proposed before it was kept, or not proposed as a transfer."""
        row = await self._fetchrow(queries.SELECT_PROPOSAL_AMOUNT, community_id, transaction_id)
        if row is None:
            return None
        amount = row["amount"]
        assert isinstance(amount, int)
        assert amount > 0
        return amount

    async def reverse(
        self,
        community_id: uuid.UUID,
        transaction_id: uuid.UUID,
        *,
        reversal_id: uuid.UUID | None = None,
        memo: str = "",
    ) -> TransactionResult:
        """Posts the reversal of a posted transaction (at most one per transaction)."""
        if len(memo) > MEMO_LENGTH_MAX:
            raise ValidationError(f"memo is longer than {MEMO_LENGTH_MAX} characters", field="memo")
        reversal_id = reversal_id or default_reversal_id(transaction_id)
        row = await self._fetchrow(
            queries.REVERSE,
            community_id,
            transaction_id,
            reversal_id,
            memo,
            reversal_fingerprint(transaction_id, memo),
        )
        assert row is not None
        return _row_result(reversal_id, row)

    async def expire_overdue(self, limit: int = 1_000) -> int:
        """Expires overdue pending transactions; returns how many it expired."""
        count = await self._run(lambda: self._pool.fetchval(queries.EXPIRE_OVERDUE, limit))
        assert isinstance(count, int)
        return count

    # Reads.

    async def transaction(self, community_id: uuid.UUID, transaction_id: uuid.UUID) -> Transaction:
        """A transaction with its postings (and, once posted, the balance each left)."""
        row = await self._fetchrow(queries.SELECT_TRANSACTION, community_id, transaction_id)
        if row is None:
            raise UnknownTransaction(transaction_id=str(transaction_id))
        return _transaction(row)

    async def statement(
        self,
        community_id: uuid.UUID,
        account_id: uuid.UUID,
        *,
        limit: int = STATEMENT_PAGE_SIZE_DEFAULT,
        before_seq: int | None = None,
        posted_from: datetime | None = None,
        posted_before: datetime | None = None,
    ) -> StatementPage:
        """The account as it stands and its postings, newest first, with the balance
        each left: one round trip."""
        if not 1 <= require_int(limit, "limit") <= STATEMENT_PAGE_SIZE_MAX:
            raise ValidationError(f"limit must be between 1 and {STATEMENT_PAGE_SIZE_MAX}")
        row = await self._fetchrow(
            queries.SELECT_STATEMENT,
            community_id,
            account_id,
            SEQ_AFTER_LAST if before_seq is None else before_seq,
            posted_from,
            posted_before,
            limit + 1,
        )
        if row is None:
            raise UnknownAccount(account_id=str(account_id))
        account = _account(row)
        seqs: list[int] = row["seqs"] or []
        # The postings come as one array per column (fewer values to decode than a
        # row per posting repeating the account), newest first.
        lines = tuple(
            map(
                StatementLine,
                seqs[:limit],
                row["transaction_ids"] or (),
                map(KINDS.__getitem__, row["kinds"] or ()),
                row["memos"] or (),
                row["categories"] or (),
                row["amounts"] or (),
                row["balances_after"] or (),
                row["posted_ats"] or (),
            )
        )
        next_before_seq = lines[-1].account_seq if len(seqs) > limit else None
        return StatementPage(account=account, lines=lines, next_before_seq=next_before_seq)

    async def journal(
        self,
        community_id: uuid.UUID,
        *,
        limit: int,
        account_id: uuid.UUID | None = None,
        kind: TransactionKind | None = None,
        state: TransactionState | None = None,
        created_from: datetime | None = None,
        created_before: datetime | None = None,
        after: tuple[datetime, uuid.UUID] | None = None,
    ) -> list[Transaction]:
        """A page of the community's transactions, newest first, after the
        (created_at, id) of the previous page's last one."""
        if not 1 <= require_int(limit, "limit") <= STATEMENT_PAGE_SIZE_MAX + 1:
            raise ValidationError(f"limit must be between 1 and {STATEMENT_PAGE_SIZE_MAX}")
        after_at, after_id = after if after is not None else (JOURNAL_AFTER_LAST, uuid.UUID(int=0))
        pending_of_account = account_id is not None and state is TransactionState.PENDING
        given: dict[str, object] = {
            "account": None if pending_of_account else account_id,
            "kind": None if kind is None else kind.value,
            "state": None if pending_of_account or state is None else state.value,
            "created_from": created_from,
            "created_before": created_before,
        }
        filters = {name: value for name, value in given.items() if value is not None}
        query = queries.journal_query(list(filters), pending_of_account=pending_of_account)
        first = (community_id, account_id) if pending_of_account else (community_id,)
        rows = await self._fetch(query, *first, *filters.values(), after_at, after_id, limit)
        return [_transaction(row) for row in rows]

    async def flows(
        self,
        community_id: uuid.UUID,
        *,
        created_from: datetime | None,
        created_before: datetime | None,
        unit_code: str | None,
    ) -> list[asyncpg.Record]:
        """Posted transactions by unit, category and kind: how many, how much."""
        return await self._fetch(
            queries.SELECT_FLOWS, community_id, created_from, created_before, unit_code
        )

    async def flows_over_time(
        self,
        community_id: uuid.UUID,
        *,
        period: Literal["week", "month"],
        periods: int,
        unit_code: str | None,
    ) -> list[asyncpg.Record]:
        """Posted transactions per unit and period (UTC weeks from Monday, or
        months), the last `periods` up to the current one: how many, how much."""
        assert period in ("week", "month")
        assert 1 <= periods <= FLOW_PERIODS_MAX
        rows = await self._fetch(
            queries.SELECT_FLOWS_OVER_TIME, community_id, period, periods, unit_code
        )
        assert all(row["transactions"] >= 0 and row["total"] >= 0 for row in rows)
        return rows

    async def journal_legs(
        self,
        community_id: uuid.UUID,
        *,
        created_from: datetime | None,
        created_before: datetime | None,
    ) -> AsyncIterator[asyncpg.Record]:
        """Every leg of the period's transactions, oldest first, streamed from a
        cursor (an export of years must not sit in memory)."""
        async with self._pool.acquire() as connection, connection.transaction(readonly=True):
            async for row in connection.cursor(
                queries.SELECT_JOURNAL_LEGS, community_id, created_from, created_before
            ):
                yield row

    async def trial_balance(self, community_id: uuid.UUID) -> list[asyncpg.Record]:
        """Per unit: account count, the sum of balances (zero) and each side's total."""
        # No assertion here: an auditor must see an imbalance, not an error.
        return await self._fetch(queries.SELECT_TRIAL_BALANCE, community_id)

    async def balance_at(
        self, community_id: uuid.UUID, account_id: uuid.UUID, instant: datetime
    ) -> int:
        """The account's posted balance as it stood at `instant`."""
        balance = await self._run(
            lambda: self._pool.fetchval(
                queries.SELECT_BALANCE_AT, community_id, account_id, instant
            )
        )
        assert isinstance(balance, int)
        return balance


def _account(row: asyncpg.Record) -> Account:
    return Account(
        id=row["id"],
        community_id=row["community_id"],
        unit_code=row["unit_code"],
        owner_id=row["owner_id"],
        purpose=row["purpose"],
        status=AccountStatus(row["status"]),
        min_balance=row["min_balance"],
        max_balance=row["max_balance"],
        balance=row["balance"],
        pending_debits=row["pending_debits"],
        pending_credits=row["pending_credits"],
        posting_count=row["posting_count"],
    )


def _unit(row: asyncpg.Record) -> Unit:
    return Unit(**{**dict(row), "kind": UnitKind(row["kind"])})


# Enum lookups by value, without the enum call's overhead (a thousand per batch).
OUTCOMES = {outcome.value: outcome for outcome in Outcome}
STATES = {state.value: state for state in TransactionState}
KINDS = {kind.value: kind for kind in TransactionKind}


def _signatures_of_entry(entry: bytes) -> list[StoredSignature]:
    """The signatures a log entry carries (the log is where they are kept)."""
    document = json.loads(entry)
    assert isinstance(document, dict), "a log entry is a JSON object"
    return [
        StoredSignature(
            item["purpose"],
            intents.b64url_decode(item["signed"]),
            intents.b64url_decode(item["signature"]),
            item["key_id"],
        )
        for item in document.get("signatures") or ()
    ]


def _shared_values(request: TransactionRequest) -> tuple[object, ...]:
    """What a uniform batch's transactions must have in common (POST_ATOMIC_UNIFORM_GROUPED)."""
    return (
        request.kind,
        request.memo,
        request.category,
        request.unit_code,
        request.pending,
        request.expires_in_s,
    )


def _legs(
    requests: Sequence[TransactionRequest],
) -> tuple[list[int], list[uuid.UUID], list[int]]:
    """A batch's postings as the ledger functions take them: each leg's transaction
    (its 1-based index in the batch), account and amount."""
    leg_tx: list[int] = []
    leg_accounts: list[uuid.UUID] = []
    leg_amounts: list[int] = []
    for index, request in enumerate(requests, start=1):
        for posting in request.postings:
            leg_tx.append(index)
            leg_accounts.append(posting.account_id)
            leg_amounts.append(posting.amount)
    return leg_tx, leg_accounts, leg_amounts


def _row_result(transaction_id: uuid.UUID, row: asyncpg.Record) -> TransactionResult:
    return TransactionResult(
        id=transaction_id,
        outcome=OUTCOMES[row["outcome"]],
        state=STATES[row["state"]],
        created_at=row["created_at"],
        resolved_at=row["resolved_at"],
        expires_at=row["expires_at"],
    )


def _resolution_result(transaction_id: uuid.UUID, row: asyncpg.Record) -> TransactionResult:
    """What confirming or voiding answered; a transaction past its expiry is not
    pending any more, swept or not."""
    if row["outcome"] == "expired":
        raise NotPending(transaction_id=str(transaction_id), state="expired")
    return _row_result(transaction_id, row)


def _result(request: TransactionRequest, row: asyncpg.Record) -> TransactionResult:
    result = _row_result(request.id, row)
    if result.outcome is Outcome.CREATED:
        expected = TransactionState.PENDING if request.pending else TransactionState.POSTED
        assert result.state is expected, f"new transaction {request.id} is {result.state}"
    return result


def _transaction(row: asyncpg.Record) -> Transaction:
    balances_after = row["balances_after"] or [None] * len(row["leg_accounts"])
    assert len(balances_after) == len(row["leg_accounts"]), "a posted leg has one posting"
    postings = tuple(
        StoredPosting(account_id, amount, balance_after)
        for account_id, amount, balance_after in zip(
            row["leg_accounts"], row["leg_amounts"], balances_after, strict=True
        )
    )
    assert sum(posting.amount for posting in postings) == 0, "a stored transaction balances"
    return Transaction(
        id=row["id"],
        community_id=row["community_id"],
        kind=TransactionKind(row["kind"]),
        state=TransactionState(row["state"]),
        memo=row["memo"],
        category=row["category"],
        reverses_id=row["reverses_id"],
        reversed_by_id=row["reversed_by_id"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        resolved_at=row["resolved_at"],
        postings=postings,
    )
