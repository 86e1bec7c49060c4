"""Periodic policies in PostgreSQL: schedules, their runs, the fees and donations
each run charged or could not, and the runner that makes every ended period run
exactly once, whatever the number of instances or the downtime."""

from __future__ import annotations

import enum
import functools
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import asyncpg
import structlog

from timebank.database import DatabaseConnection
from timebank.ledger import queries as ledger_queries
from timebank.ledger.errors import UnknownAccount, UnknownUnit, ValidationError
from timebank.ledger.models import (
    BATCH_SIZE_MAX,
    Posting,
    TransactionRequest,
    validate_batch,
    validate_limits,
)
from timebank.ledger.store import LedgerStore, run_translated
from timebank.policies import queries
from timebank.policies.models import (
    BASIS_POINTS,
    EXCESS_KINDS,
    TRANSACTION_KINDS,
    Schedule,
    ScheduleKind,
    charge_id,
    validate_schedule,
)
from timebank.policies.periods import Period, due_periods, label

logger = structlog.get_logger(__name__)
# A period's run reads every account of a unit at once (100,000 accounts: ~10 s on
# a loaded 2-core machine): its statements may take longer than a request's.
RUN_STATEMENT_TIMEOUT_S = 600.0


class PeriodLeft(enum.Enum):
    """Why a run left a period: another instance holds the schedule (or it was
    retired), or the period was run already."""

    HELD = "held"
    ALREADY_RUN = "already_run"


@dataclass(frozen=True, slots=True)
class RunSummary:
    schedule_id: uuid.UUID
    period_start: date
    period_end: date
    charged_count: int
    charged_total: int
    unpaid_count: int


@dataclass(frozen=True, slots=True)
class LimitDefaults:
    unit_code: str
    party_kind: str
    min_balance: int
    max_balance: int


@dataclass(frozen=True, slots=True)
class Due:
    """A fee or donation of one period for one account, paid or not (yet)."""

    schedule_id: uuid.UUID
    kind: ScheduleKind
    period_start: date
    account_id: uuid.UUID
    owner_id: uuid.UUID
    amount: int
    state: str
    problem: str | None
    due_on: date
    overdue: bool
    transaction_id: uuid.UUID


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


class PolicyStore:
    def __init__(self, pool: asyncpg.Pool, ledger: LedgerStore) -> None:
        self._pool = pool
        self._ledger = ledger

    # Schedules.

    async def create_schedule(self, schedule: Schedule) -> Schedule:
        """Validates and stores a schedule (logged); its first period is the one
        that starts on `starts_on`."""
        validate_schedule(schedule)
        rate_bps = BASIS_POINTS if schedule.kind is ScheduleKind.HOURS_EXPIRY else schedule.rate_bps

        async def create() -> uuid.UUID:
            async with self._pool.acquire() as connection, connection.transaction():
                unit_id = await connection.fetchval(
                    queries.SELECT_UNIT_ID, schedule.community_id, schedule.unit_code
                )
                if unit_id is None:
                    raise UnknownUnit(unit=schedule.unit_code)
                await self._require_accounts_in_unit(connection, schedule, unit_id)
                schedule_id: uuid.UUID = await connection.fetchval(
                    queries.INSERT_SCHEDULE,
                    schedule.community_id,
                    schedule.kind.value,
                    unit_id,
                    schedule.period.value,
                    schedule.starts_on,
                    rate_bps,
                    schedule.threshold,
                    schedule.amount,
                    schedule.payer_kind,
                    schedule.source_account,
                    schedule.target_account,
                    schedule.grace_days,
                )
                return schedule_id

        schedule_id = await run_translated(create)
        return await self.schedule(schedule.community_id, schedule_id)

    async def _require_accounts_in_unit(
        self, connection: DatabaseConnection, schedule: Schedule, unit_id: uuid.UUID
    ) -> None:
        for field, account_id in (
            ("target", schedule.target_account),
            ("source", schedule.source_account),
        ):
            if account_id is None:
                continue
            found = await connection.fetchval(
                queries.SELECT_ACCOUNT_UNIT, schedule.community_id, account_id
            )
            if found is None:
                raise UnknownAccount(account_id=str(account_id), field=field)
            if found != unit_id:
                raise ValidationError(
                    f"the {field} account is not in {schedule.unit_code}", field=field
                )

    async def schedules(
        self, community_id: uuid.UUID, schedule_id: uuid.UUID | None = None
    ) -> list[Schedule]:
        rows = await run_translated(
            lambda: self._pool.fetch(queries.SELECT_SCHEDULES, community_id, schedule_id)
        )
        return [_schedule(row) for row in rows]

    async def schedule(self, community_id: uuid.UUID, schedule_id: uuid.UUID) -> Schedule:
        found = await self.schedules(community_id, schedule_id)
        if not found:
            raise ValidationError("no such schedule", schedule_id=str(schedule_id))
        return found[0]

    async def retire(self, community_id: uuid.UUID, schedule_id: uuid.UUID) -> Schedule:
        """No period after this one's last run is charged; logged."""
        await run_translated(
            lambda: self._pool.execute(queries.RETIRE_SCHEDULE, community_id, schedule_id)
        )
        return await self.schedule(community_id, schedule_id)

    async def runs(self, community_id: uuid.UUID, schedule_id: uuid.UUID) -> list[RunSummary]:
        rows = await run_translated(
            lambda: self._pool.fetch(queries.SELECT_RUNS, community_id, schedule_id)
        )
        return [_summary(row) for row in rows]

    async def dues(
        self,
        community_id: uuid.UUID,
        *,
        owner_ids: list[uuid.UUID] | None,
        unpaid_only: bool,
    ) -> list[Due]:
        """Charges of fees and donations, newest first: of these owners, or all."""
        arguments: tuple[object, ...]
        if owner_ids is None:
            query, arguments = queries.SELECT_DUES, (community_id, unpaid_only)
        else:
            query, arguments = queries.SELECT_DUES_OF_OWNERS, (community_id, unpaid_only, owner_ids)
        rows = await run_translated(lambda: self._pool.fetch(query, *arguments))
        return [
            Due(
                schedule_id=row["schedule_id"],
                kind=ScheduleKind(row["kind"]),
                period_start=row["period_start"],
                account_id=row["account_id"],
                owner_id=row["owner_id"],
                amount=row["amount"],
                state=row["state"],
                problem=row["problem"],
                due_on=row["due_on"],
                overdue=row["overdue"],
                transaction_id=row["transaction_id"],
            )
            for row in rows
        ]

    # Limits per kind of account.

    async def set_limit_defaults(
        self,
        community_id: uuid.UUID,
        *,
        unit_code: str,
        party_kind: str,
        min_balance: int,
        max_balance: int,
    ) -> list[LimitDefaults]:
        """The limits accounts of this kind get when opened in the unit from now on
        (accounts already open keep theirs: change them one by one); logged."""
        validate_limits(min_balance, max_balance)
        found = await run_translated(
            lambda: self._pool.fetchval(
                queries.UPSERT_LIMIT_DEFAULTS,
                community_id,
                unit_code,
                party_kind,
                min_balance,
                max_balance,
            )
        )
        if found is None:
            raise UnknownUnit(unit=unit_code)
        return await self.limit_defaults(community_id)

    async def limit_defaults(self, community_id: uuid.UUID) -> list[LimitDefaults]:
        rows = await run_translated(
            lambda: self._pool.fetch(queries.SELECT_LIMIT_DEFAULTS, community_id)
        )
        return [
            LimitDefaults(
                row["unit_code"], row["party_kind"], row["min_balance"], row["max_balance"]
            )
            for row in rows
        ]

    # Running.

    async def run_due(
        self, *, today: date | None = None, community_id: uuid.UUID | None = None
    ) -> list[RunSummary]:
        """Runs every ended period not yet run, oldest first, each in a database
        transaction of its own. Another instance running the same schedule makes
        this one leave it (that instance goes on to the last period); a period
        already run is never run again, and this one goes on past it."""
        today = today or datetime.now(UTC).date()
        schedules = await run_translated(
            lambda: self._pool.fetch(queries.SELECT_ACTIVE_SCHEDULES, community_id)
        )
        summaries: list[RunSummary] = []
        for row in schedules:
            schedule = _schedule(row)
            for start, end in due_periods(
                schedule.period, schedule.starts_on, today, last_run_start=row["last_run_start"]
            ):
                summary = await run_translated(
                    functools.partial(self._run_period, schedule, start, end)
                )
                if summary is PeriodLeft.HELD:
                    break
                if summary is PeriodLeft.ALREADY_RUN:
                    # Run by an instance that may itself have stopped on finding this
                    # one holding the schedule: the later periods are ours to run.
                    continue
                summaries.append(summary)
        return summaries

    async def _run_period(
        self, schedule: Schedule, start: date, end: date
    ) -> RunSummary | PeriodLeft:
        """One period, all or nothing; or why it was left: another instance holds
        the schedule (or it was retired), or the period has been run already."""
        async with self._pool.acquire() as connection, connection.transaction():
            locked = await connection.fetchval(
                queries.LOCK_SCHEDULE, schedule.community_id, schedule.id
            )
            if locked is None:
                return PeriodLeft.HELD
            claimed = await connection.fetchval(
                queries.INSERT_RUN, schedule.community_id, schedule.id, start, end
            )
            if claimed is None:
                return PeriodLeft.ALREADY_RUN
            unpaid = 0
            if schedule.kind is ScheduleKind.CREDIT_GROWTH:
                counts = await self._grow_credit(connection, schedule, end)
            elif schedule.kind in EXCESS_KINDS:
                counts = await self._charge_excess(connection, schedule, start, end)
            else:
                counts, unpaid = await self._charge_fixed(connection, schedule, start, end)
            await connection.execute(
                queries.FINISH_RUN, schedule.community_id, schedule.id, start, *counts, unpaid
            )
        summary = RunSummary(schedule.id, start, end, counts[0], counts[1], unpaid)
        logger.info(
            "policy_period_run",
            schedule=str(schedule.id),
            kind=schedule.kind.value,
            period=label(schedule.period, start),
            charged=summary.charged_count,
            total=summary.charged_total,
            unpaid=unpaid,
        )
        return summary

    async def _charge_excess(
        self, connection: DatabaseConnection, schedule: Schedule, start: date, end: date
    ) -> tuple[int, int]:
        """Demurrage or expiry: one transaction per account charged, posted in
        atomic batches inside the period's database transaction."""
        rows = await connection.fetch(
            queries.SELECT_EXCESS_CHARGES,
            schedule.community_id,
            schedule.unit_code,
            schedule.threshold,
            schedule.rate_bps,
            midnight(end),
            schedule.target_account,
            timeout=RUN_STATEMENT_TIMEOUT_S,
        )
        memo = _memo(schedule, start)
        requests = [
            self._charge(schedule, start, row["account_id"], row["charge"], memo) for row in rows
        ]
        for offset in range(0, len(requests), BATCH_SIZE_MAX):
            chunk = requests[offset : offset + BATCH_SIZE_MAX]
            validate_batch(chunk, expiry_max_s=1)
            await connection.fetch(
                ledger_queries.POST_ATOMIC,
                *self._ledger.batch_arguments(chunk),
                timeout=RUN_STATEMENT_TIMEOUT_S,
            )
        return len(requests), sum(row["charge"] for row in rows)

    async def _grow_credit(
        self, connection: DatabaseConnection, schedule: Schedule, end: date
    ) -> tuple[int, int]:
        """Lowers members' minimums by what they earned (bounded); the accounts'
        log entries record each new limit. Lowering a minimum breaks nothing."""
        rows = await connection.fetch(
            queries.SELECT_CREDIT_GROWTH,
            schedule.community_id,
            schedule.unit_code,
            schedule.rate_bps,
            schedule.threshold,
            midnight(end),
            timeout=RUN_STATEMENT_TIMEOUT_S,
        )
        if rows:
            await connection.execute(
                queries.LOWER_MINIMUMS,
                schedule.community_id,
                [row["account_id"] for row in rows],
                [row["min_balance"] for row in rows],
            )
        return len(rows), sum(row["previous"] - row["min_balance"] for row in rows)

    async def _charge_fixed(
        self, connection: DatabaseConnection, schedule: Schedule, start: date, end: date
    ) -> tuple[tuple[int, int], int]:
        """Fees, donations and welcome grants: each account pays (or, for a welcome
        grant, is paid) on its own; what cannot be paid is recorded unpaid and tried
        again (same transaction id) by later runs."""
        assert schedule.amount is not None
        accounts = await self._fixed_accounts(connection, schedule)
        due_on = end + timedelta(days=schedule.grace_days)
        memo = _memo(schedule, start)
        fresh = [
            (start, account, self._charge(schedule, start, account, schedule.amount, memo))
            for account in accounts
        ]
        earlier = [
            (
                row["period_start"],
                row["account_id"],
                self._charge(
                    schedule,
                    row["period_start"],
                    row["account_id"],
                    row["amount"],
                    _memo(schedule, row["period_start"]),
                ),
            )
            for row in await connection.fetch(
                queries.SELECT_UNPAID, schedule.community_id, schedule.id
            )
        ]
        paid_count, paid_total, unpaid = 0, 0, 0
        for offset in range(0, len(earlier) + len(fresh), BATCH_SIZE_MAX):
            chunk = (earlier + fresh)[offset : offset + BATCH_SIZE_MAX]
            validate_batch([request for _, _, request in chunk], expiry_max_s=1)
            results = await connection.fetch(
                ledger_queries.POST_EACH,
                *self._ledger.batch_arguments([request for _, _, request in chunk]),
            )
            outcomes = {row["tx_index"]: row for row in results}
            for index, (period_start, account, request) in enumerate(chunk, start=1):
                row = outcomes[index]
                paid = row["outcome"] in ("created", "exists")
                amount = request.postings[1].amount
                await connection.execute(
                    queries.UPSERT_CHARGE,
                    schedule.community_id,
                    schedule.id,
                    period_start,
                    account,
                    amount,
                    request.id,
                    "paid" if paid else "unpaid",
                    None if paid else row["outcome"],
                    due_on if period_start == start else None,
                )
                if paid and period_start == start:
                    paid_count += 1
                    paid_total += amount
                unpaid += 0 if paid else 1
        return (paid_count, paid_total), unpaid

    async def _fixed_accounts(
        self, connection: DatabaseConnection, schedule: Schedule
    ) -> list[uuid.UUID]:
        """Who this period's fixed amounts concern: each fee payer, the donor, or
        each member not yet welcomed."""
        if schedule.kind is ScheduleKind.MEMBERSHIP_FEE:
            rows = await connection.fetch(
                queries.SELECT_FEE_PAYERS,
                schedule.community_id,
                schedule.unit_code,
                schedule.payer_kind,
                schedule.target_account,
            )
            return [row["id"] for row in rows]
        if schedule.kind is ScheduleKind.WELCOME_GRANT:
            rows = await connection.fetch(
                queries.SELECT_UNWELCOMED,
                schedule.community_id,
                schedule.unit_code,
                schedule.id,
                schedule.source_account,
            )
            return [row["id"] for row in rows]
        assert schedule.source_account is not None
        return [schedule.source_account]

    def _charge(
        self, schedule: Schedule, start: date, account_id: uuid.UUID, amount: int, memo: str
    ) -> TransactionRequest:
        """The transaction of one account's fixed amount or share: from the account
        to the target, or, for a welcome grant, from the source to the account."""
        if schedule.kind is ScheduleKind.WELCOME_GRANT:
            assert schedule.source_account is not None
            postings = (Posting(schedule.source_account, -amount), Posting(account_id, amount))
        else:
            assert schedule.target_account is not None, "a charge credits its target"
            postings = (Posting(account_id, -amount), Posting(schedule.target_account, amount))
        return TransactionRequest(
            id=charge_id(schedule.id, start, account_id),
            community_id=schedule.community_id,
            kind=TRANSACTION_KINDS[schedule.kind],
            postings=postings,
            memo=memo,
            unit_code=schedule.unit_code,
        )


def _memo(schedule: Schedule, start: date) -> str:
    return f"{schedule.kind.value.replace('_', ' ')} {label(schedule.period, start)}"


def _schedule(row: asyncpg.Record) -> Schedule:
    return Schedule(
        id=row["id"],
        community_id=row["community_id"],
        kind=ScheduleKind(row["kind"]),
        unit_code=row["unit_code"],
        period=Period(row["period"]),
        starts_on=row["starts_on"],
        target_account=row["target_account"],
        rate_bps=row["rate_bps"],
        threshold=row["threshold"],
        amount=row["amount"],
        payer_kind=row["payer_kind"],
        source_account=row["source_account"],
        grace_days=row["grace_days"],
        created_at=row["created_at"],
        retired_at=row["retired_at"],
    )


def _summary(row: asyncpg.Record) -> RunSummary:
    return RunSummary(
        schedule_id=row["schedule_id"],
        period_start=row["period_start"],
        period_end=row["period_end"],
        charged_count=row["charged_count"],
        charged_total=row["charged_total"],
        unpaid_count=row["unpaid_count"],
    )
