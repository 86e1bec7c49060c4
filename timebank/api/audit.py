"""Audit reads of a whole community: its journal and its trial balance."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from aiohttp import web

from timebank.api.accounts import _aware
from timebank.api.context import community_actor, cursor_uuid, decode_cursor, encode_cursor
from timebank.api.contract import query_of, respond
from timebank.api.registry import api
from timebank.api.schemas import (
    JournalPage,
    JournalQuery,
    TrialBalanceOut,
    UnitBalanceOut,
)
from timebank.api.transactions import stored_out
from timebank.auth.access import Actor
from timebank.auth.errors import Forbidden
from timebank.keys import LEDGER
from timebank.ledger.errors import UnknownAccount, ValidationError

TAG = "Audit"


def _cursor_instant(value: str) -> datetime:
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError("the cursor is not one this service gave", field="cursor") from None
    if instant.tzinfo is None:
        raise ValidationError("the cursor is not one this service gave", field="cursor")
    return instant


@api.operation(
    "GET",
    "/v1/communities/{slug}/transactions",
    tag=TAG,
    summary="The community's journal (treasurers, admins, auditing clients; members by account)",
    query=JournalQuery,
    responses={200: JournalPage},
)
async def journal(request: web.Request) -> web.Response:
    """Every transaction, newest first, filterable by account, kind, state and
    creation time (`from` inclusive, `to` exclusive); `next_cursor` gives the next
    (older) page. A member may read it filtered by an account they may read (how
    they find the pending exchanges waiting for them)."""
    community, actor = await community_actor(request, request.match_info["slug"])
    query = query_of(request, JournalQuery)
    if query.account is None or actor.reads_all:
        actor.require_audit()
    else:
        await _require_account_read(request, community.id, actor, query.account)
    after: tuple[datetime, uuid.UUID] | None = None
    if query.cursor is not None:
        at, transaction_id = decode_cursor(query.cursor, 2)
        after = (_cursor_instant(at), cursor_uuid(transaction_id))
    transactions = await request.app[LEDGER].journal(
        community.id,
        limit=query.limit + 1,
        account_id=query.account,
        kind=query.kind,
        state=query.state,
        created_from=_aware(query.from_, "from"),
        created_before=_aware(query.to, "to"),
        after=after,
    )
    page = transactions[: query.limit]
    next_cursor = (
        encode_cursor(page[-1].created_at.isoformat(), page[-1].id)
        if len(transactions) > query.limit
        else None
    )
    return respond(
        JournalPage(items=[stored_out(item, community) for item in page], next_cursor=next_cursor)
    )


async def _require_account_read(
    request: web.Request, community_id: uuid.UUID, actor: Actor, account_id: uuid.UUID
) -> None:
    """Forbidden unless the account is in this community and the actor may read it."""
    try:
        account = await request.app[LEDGER].account(account_id)
    except UnknownAccount:
        raise Forbidden("this account is not yours to read") from None
    if account.community_id != community_id:
        raise Forbidden("this account is not yours to read")
    actor.require_account_read(account.owner_id)


@api.operation(
    "GET",
    "/v1/communities/{slug}/trial-balance",
    tag=TAG,
    summary="Per unit, the sum of all balances (zero) and each side's total",
    responses={200: TrialBalanceOut},
)
async def trial_balance(request: web.Request) -> web.Response:
    """Double entry means every unit's balances sum to zero; `balanced` says
    whether they do."""
    community, actor = await community_actor(request, request.match_info["slug"])
    actor.require_audit()
    rows = await request.app[LEDGER].trial_balance(community.id)
    units = [
        UnitBalanceOut(
            unit=row["code"],
            kind=row["kind"],
            account_count=row["account_count"],
            sum_of_balances=row["sum_of_balances"],
            total_positive_balances=row["total_positive"],
            total_negative_balances=row["total_negative"],
            pending_transactions=row["pending_transactions"],
        )
        for row in rows
    ]
    return respond(
        TrialBalanceOut(
            community=community.slug,
            as_of=datetime.now(UTC),
            units=units,
            balanced=all(unit.sum_of_balances == 0 for unit in units),
        )
    )
