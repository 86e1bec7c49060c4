"""Scheduled jobs (a community's periodic policies) whose missed periods are being
run when the service is killed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TypeAlias

import aiohttp
import asyncpg
import pytest

from tests.faults.harness import (
    HOURS,
    Community,
    Service,
    assert_ledger_checks,
    eventually,
    set_up_community,
    soak_share_s,
    staged,
)
from tests.faults.records import Figures, Load, open_connection, verify

pytestmark = pytest.mark.slow

SHORT_CRASHES = 1
# Daily periods due at once when the schedule is made: enough to take the runner a
# few seconds, so that it is killed in the middle of them.
MISSED_DAYS = 400
FEE_MINUTES = 1
RUNS_BEFORE_THE_KILL = 25
CATCH_UP_TIMEOUT_S = 180.0
SETTINGS = {"TIMEBANK_POLICY_RUN_INTERVAL_S": "0.2"}

# A test-side connection to the scenario's database.
Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record]"


def today() -> date:
    """The day in UTC, as the service's policy runner counts them."""
    return datetime.now(UTC).date()


async def _runs(connection: Connection, community: Community, schedule: Scheduled) -> int:
    runs = await connection.fetchval(
        "SELECT count(*) FROM policy_runs WHERE community_id = $1 AND schedule_id = $2",
        community.id,
        schedule.id,
    )
    assert isinstance(runs, int)
    return runs


@dataclass(frozen=True)
class Scheduled:
    id: uuid.UUID
    starts_on: date

    def due(self) -> int:
        """The periods ended by now: every day from the first to yesterday."""
        return (today() - self.starts_on).days


async def _schedule_fees(
    session: aiohttp.ClientSession, url: str, community: Community
) -> Scheduled:
    """A daily fee of every member but the first (the admin), paid to the first,
    starting MISSED_DAYS ago: that many periods are due at once."""
    starts_on = today() - timedelta(days=MISSED_DAYS)
    body = {
        "kind": "membership_fee",
        "unit": HOURS,
        "period": "day",
        "starts_on": starts_on.isoformat(),
        "target": str(community.members[0].account_id),
        "amount": FEE_MINUTES,
        "payer_kind": "member",
    }
    async with session.post(
        f"{url}/v1/communities/{community.slug}/policies/schedules",
        json=body,
        headers=community.members[0].headers,
    ) as response:
        assert response.status == 201, await response.text()
        return Scheduled(uuid.UUID((await response.json())["id"]), starts_on)


async def _kill_while_catching_up(
    session: aiohttp.ClientSession,
    service: Service,
    connection: Connection,
    community: Community,
) -> tuple[Scheduled, int]:
    """A new schedule with MISSED_DAYS periods due; the service killed once it has
    run some and not all, then started again. The schedule, and its runs at the kill."""
    schedule = await _schedule_fees(session, service.url, community)

    async def some_run() -> bool:
        return await _runs(connection, community, schedule) >= RUNS_BEFORE_THE_KILL

    await eventually(some_run, f"{RUNS_BEFORE_THE_KILL} periods run")
    await service.kill()
    at_the_kill = await _runs(connection, community, schedule)
    assert at_the_kill < MISSED_DAYS, "all the periods ran before the kill: raise MISSED_DAYS"
    await service.start()

    async def caught_up() -> bool:
        return await _runs(connection, community, schedule) >= schedule.due()

    await eventually(caught_up, "every missed period run after the restart", CATCH_UP_TIMEOUT_S)
    return schedule, at_the_kill


async def _each_period_charged_once(
    connection: Connection, community: Community, schedules: list[Scheduled]
) -> int:
    """Every day from each schedule's start to yesterday has exactly one run, in
    which every payer was charged (no run half done), each charge a transaction
    of its own logged once; the balances are exactly the fees. The charges."""
    payers = len(community.members) - 1
    for schedule in schedules:
        row = await connection.fetchrow(
            "SELECT count(*) AS runs, count(DISTINCT period_start) AS days,"
            "       max(period_start) - min(period_start) + 1 AS span,"
            "       min(period_start) AS first,"
            "       bool_and(charged_count = $3 AND unpaid_count = 0) AS whole"
            "  FROM policy_runs WHERE community_id = $1 AND schedule_id = $2",
            community.id,
            schedule.id,
            payers,
        )
        assert row is not None
        due = schedule.due()
        assert (row["runs"], row["days"], row["span"], row["first"], row["whole"]) == (
            due,
            due,
            due,
            schedule.starts_on,
            True,
        ), dict(row)
    charges = await connection.fetchrow(
        "SELECT count(*) AS charges, count(DISTINCT transaction_id) AS transactions,"
        "       count(*) FILTER (WHERE state = 'paid') AS paid,"
        "       (SELECT sum(charged_count) FROM policy_runs WHERE community_id = $1) AS counted"
        "  FROM policy_charges WHERE community_id = $1",
        community.id,
    )
    assert charges is not None
    total = charges["charges"]
    assert (charges["transactions"], charges["paid"], charges["counted"]) == (total, total, total)
    logged = await connection.fetchval(
        "SELECT count(*) FROM transactions t WHERE t.community_id = $1 AND 1 <>"
        " (SELECT count(*) FROM log_entries e WHERE e.community_id = t.community_id"
        "    AND e.transaction_id = t.id"
        "    AND convert_from(e.entry, 'UTF8')::jsonb ->> 'type' = 'transaction')",
        community.id,
    )
    assert logged == 0, "a fee's transaction is not logged exactly once"
    balances = {
        row["id"]: row["balance"]
        for row in await connection.fetch(
            "SELECT id, balance FROM accounts WHERE community_id = $1", community.id
        )
    }
    per_payer = total // payers * FEE_MINUTES
    expected = {member.account_id: -per_payer for member in community.members[1:]}
    expected[community.members[0].account_id] = per_payer * payers
    assert {account: balances[account] for account in expected} == expected
    return int(total)


async def test_missed_periods_run_across_a_kill_9_each_charge_once(
    fault_database: str, tmp_path: Path, report_figures: Callable[[Figures], None]
) -> None:
    """A daily membership fee whose schedule starts MISSED_DAYS ago, made in a
    community of its own while a load of transfers runs in another: the service
    catches up on the missed days, oldest first, and is killed (SIGKILL) in the
    middle; started again, it carries on. Then every ended day has run exactly
    once, from the schedule's first (nothing skipped), every payer charged once a
    day (nothing charged twice, no day half charged), each fee logged once, the
    balances exactly the fees; the load's transfers are all there once; `timebank
    check` and `audit verify` pass."""
    loop = asyncio.get_running_loop()
    crashes = 0
    killed_at: list[int] = []
    schedules: list[Scheduled] = []
    async with staged(fault_database, tmp_path, SETTINGS) as stage:
        service = stage.service
        fees = await set_up_community(service.url, stage.operator_email)
        connection = await open_connection(fault_database)
        try:
            async with (
                Load(
                    stage.community, service.url, generation=lambda: service.generation, seed=5
                ) as load,
                aiohttp.ClientSession() as session,
            ):
                load.start(singles=2, batches=1)
                deadline = loop.time() + soak_share_s()
                while crashes < SHORT_CRASHES or loop.time() < deadline:
                    schedule, runs = await _kill_while_catching_up(
                        session, service, connection, fees
                    )
                    schedules.append(schedule)
                    killed_at.append(runs)
                    crashes += 1
                await load.more_acknowledged(20, "after the catching up")
                await load.stop()
                figures = await verify(
                    load, connection, Figures("scheduled jobs across a crash", crashes)
                )
                charged = await _each_period_charged_once(connection, fees, schedules)
                unexpected = load.unexpected
        finally:
            await connection.close()
        assert await service.stop() == 0, service.log_tail()
    await assert_ledger_checks(service.environment, stage.community.slug, fees.slug)
    figures.notes.append(
        f"{len(schedules)} schedules of {MISSED_DAYS} missed days, killed after"
        f" {killed_at} days run; {charged} fees charged, each day once"
    )
    report_figures(figures)
    assert unexpected == []
    figures.assert_nothing_lost_or_doubled()
