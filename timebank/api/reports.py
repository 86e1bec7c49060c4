"""Treasurers' reports: flows by category over a period and per week or month,
and CSV exports of the journal and of an account's statement (for spreadsheets
and accounting tools)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from aiohttp import web

from timebank.api.accounts import _aware, visible_account
from timebank.api.context import community_actor, path_uuid
from timebank.api.contract import query_of, respond
from timebank.api.registry import api
from timebank.api.schemas import (
    FlowOut,
    FlowPointOut,
    FlowsOut,
    FlowsOverTimeOut,
    FlowsOverTimeQuery,
    FlowsQuery,
    InactiveMemberOut,
    InactiveMembersOut,
    InactiveQuery,
    PeriodQuery,
)
from timebank.keys import LEDGER
from timebank.ledger.models import STATEMENT_PAGE_SIZE_MAX, TransactionKind

TAG = "Audit"
CSV_CONTENT_TYPE = "text/csv"
CSV_ROWS_PER_WRITE = 500
JOURNAL_COLUMNS = (
    "transaction_id",
    "created_at",
    "resolved_at",
    "kind",
    "state",
    "category",
    "memo",
    "reverses",
    "account",
    "unit",
    "amount",
)
STATEMENT_COLUMNS = (
    "seq",
    "posted_at",
    "transaction_id",
    "kind",
    "category",
    "memo",
    "amount",
    "balance_after",
)


@api.operation(
    "GET",
    "/v1/communities/{slug}/members/inactive",
    tag=TAG,
    summary="Members without an exchange lately (treasurers, admins, auditing clients)",
    query=InactiveQuery,
    responses={200: InactiveMembersOut},
)
async def inactive_members(request: web.Request) -> web.Response:
    """Members with no posting on any of their accounts for `days` days (and who
    joined before that), those who never exchanged first, then the longest idle:
    whom a time bank's coordinator calls."""
    community, actor = await community_actor(request, request.match_info["slug"])
    actor.require_audit()
    query = query_of(request, InactiveQuery)
    since = datetime.now(UTC) - timedelta(days=query.days)
    members = await request.app[LEDGER].inactive_members(
        community.id, since=since, limit=query.limit + 1
    )
    items = [
        InactiveMemberOut(
            party_id=member.party_id,
            display_name=member.display_name,
            joined_at=member.joined_at,
            last_exchange_at=member.last_posted_at,
        )
        for member in members[: query.limit]
    ]
    return respond(InactiveMembersOut(items=items, truncated=len(members) > query.limit))


@api.operation(
    "GET",
    "/v1/communities/{slug}/flows",
    tag=TAG,
    summary="Flows by category over a period (treasurers, admins, auditing clients)",
    query=FlowsQuery,
    responses={200: FlowsOut},
)
async def flows(request: web.Request) -> web.Response:
    """Posted transactions per unit, category and kind: how many, and how much
    moved, between `from` (inclusive) and `to` (exclusive)."""
    community, actor = await community_actor(request, request.match_info["slug"])
    actor.require_audit()
    query = query_of(request, FlowsQuery)
    rows = await request.app[LEDGER].flows(
        community.id,
        created_from=_aware(query.from_, "from"),
        created_before=_aware(query.to, "to"),
        unit_code=query.unit,
    )
    return respond(
        FlowsOut(
            community=community.slug,
            items=[
                FlowOut(
                    unit=row["unit"],
                    category=row["category"],
                    kind=TransactionKind(row["kind"]),
                    transactions=row["transactions"],
                    total=row["total"],
                )
                for row in rows
            ],
        )
    )


@api.operation(
    "GET",
    "/v1/communities/{slug}/flows/over-time",
    tag=TAG,
    summary="Flows per week or month (treasurers, admins, auditing clients)",
    query=FlowsOverTimeQuery,
    responses={200: FlowsOverTimeOut},
)
async def flows_over_time(request: web.Request) -> web.Response:
    """Posted transactions per unit and period, the last `periods` weeks (UTC, from
    Monday) or months up to the current one: how many, and how much moved. Every
    period is listed, an empty one as zero, for a chart."""
    community, actor = await community_actor(request, request.match_info["slug"])
    actor.require_audit()
    query = query_of(request, FlowsOverTimeQuery)
    rows = await request.app[LEDGER].flows_over_time(
        community.id, period=query.period, periods=query.periods, unit_code=query.unit
    )
    items = [
        FlowPointOut(
            unit=row["unit"],
            starts_at=row["starts_at"],
            transactions=row["transactions"],
            total=row["total"],
        )
        for row in rows
    ]
    return respond(FlowsOverTimeOut(community=community.slug, period=query.period, items=items))


def _csv_lines(rows: Iterable[Iterable[object]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow(["" if value is None else _cell(value) for value in row])
    return buffer.getvalue().encode()


def _cell(value: object) -> str:
    """A cell as text; a text a spreadsheet would run as a formula is defused."""
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    if isinstance(value, str) and text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


async def _start_csv(request: web.Request, filename: str) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            "Content-Type": f"{CSV_CONTENT_TYPE}; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{filename}"',
        }
    )
    await response.prepare(request)
    return response


@api.operation(
    "GET",
    "/v1/communities/{slug}/transactions.csv",
    tag=TAG,
    summary="The journal as CSV (treasurers, admins, auditing clients)",
    query=PeriodQuery,
    responses={200: None},
    text_responses={200: CSV_CONTENT_TYPE},
)
async def journal_csv(request: web.Request) -> web.StreamResponse:
    """One row per leg (account and signed amount) of every transaction created
    between `from` and `to`, oldest first, streamed."""
    community, actor = await community_actor(request, request.match_info["slug"])
    actor.require_audit()
    query = query_of(request, PeriodQuery)
    legs = request.app[LEDGER].journal_legs(
        community.id,
        created_from=_aware(query.from_, "from"),
        created_before=_aware(query.to, "to"),
    )
    response = await _start_csv(request, f"{community.slug}-journal.csv")
    await response.write(_csv_lines([JOURNAL_COLUMNS]))
    batch: list[list[object]] = []
    async for row in legs:
        batch.append(
            [
                row[0],
                *(row[name] for name in JOURNAL_COLUMNS[1:7]),
                row["reverses_id"],
                row["account"],
                row["unit"],
                row["amount"],
            ]
        )
        if len(batch) >= CSV_ROWS_PER_WRITE:
            await response.write(_csv_lines(batch))
            batch.clear()
    await response.write(_csv_lines(batch))
    await response.write_eof()
    return response


@api.operation(
    "GET",
    "/v1/accounts/{id}/entries.csv",
    tag=TAG,
    summary="An account's statement as CSV",
    query=PeriodQuery,
    responses={200: None},
    text_responses={200: CSV_CONTENT_TYPE},
)
async def statement_csv(request: web.Request) -> web.StreamResponse:
    """Every posting of the account between `from` and `to`, newest first, with
    the balance each left. Who may read the account may export it."""
    account, community, actor = await visible_account(request, path_uuid(request))
    actor.require_account_read(account.owner_id)
    query = query_of(request, PeriodQuery)
    store = request.app[LEDGER]
    response = await _start_csv(request, f"{account.id}-statement.csv")
    await response.write(_csv_lines([STATEMENT_COLUMNS]))
    before_seq: int | None = None
    while True:
        page = await store.statement(
            community.id,
            account.id,
            limit=STATEMENT_PAGE_SIZE_MAX,
            before_seq=before_seq,
            posted_from=_aware(query.from_, "from"),
            posted_before=_aware(query.to, "to"),
        )
        await response.write(
            _csv_lines(
                [
                    line.account_seq,
                    line.posted_at,
                    line.transaction_id,
                    line.kind.value,
                    line.category,
                    line.memo,
                    line.amount,
                    line.balance_after,
                ]
                for line in page.lines
            )
        )
        if page.next_before_seq is None:
            break
        before_seq = page.next_before_seq
    await response.write_eof()
    return response
