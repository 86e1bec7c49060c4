"""Accounts: how one stands, its limits and status, and its statement."""

from __future__ import annotations

import uuid
from datetime import datetime

from aiohttp import web

from timebank.api.context import (
    actor_by_id,
    community_actor,
    decode_cursor,
    encode_cursor,
    owners_out,
    path_uuid,
)
from timebank.api.contract import body_of, query_of, respond
from timebank.api.registry import api
from timebank.api.schemas import (
    AccountOut,
    AccountPatch,
    EntriesPage,
    EntriesQuery,
    EntryOut,
    NearLimitsOut,
    NearLimitsQuery,
    OwnerOut,
)
from timebank.auth.access import Actor, Scope
from timebank.auth.errors import Forbidden
from timebank.errors import NotFound
from timebank.keys import DIRECTORY, LEDGER
from timebank.ledger.errors import UnknownAccount, ValidationError
from timebank.ledger.models import Account, Community

TAG = "Accounts"


async def owner_out(request: web.Request, community_id: uuid.UUID, owner_id: uuid.UUID) -> OwnerOut:
    return (await owners_out(request, community_id, [owner_id]))[owner_id]


def account_out(account: Account, community: Community, owner: OwnerOut) -> AccountOut:
    return AccountOut(
        id=account.id,
        community=community.slug,
        unit=account.unit_code,
        owner=owner,
        purpose=account.purpose,
        status=account.status,
        balance=account.balance,
        available=account.available,
        pending_debits=account.pending_debits,
        pending_credits=account.pending_credits,
        min_balance=account.min_balance,
        max_balance=account.max_balance,
    )


async def visible_account(
    request: web.Request, account_id: uuid.UUID
) -> tuple[Account, Community, Actor]:
    """The account and the caller's standing in its community; an account of a
    community the caller is not in does not exist for them (404)."""
    try:
        account = await request.app[LEDGER].account(account_id)
        community, actor = await actor_by_id(request, account.community_id)
    except (UnknownAccount, Forbidden):
        raise NotFound(f"no account {account_id} that you can see") from None
    return account, community, actor


@api.operation(
    "GET",
    "/v1/accounts/{id}",
    tag=TAG,
    summary="An account as it stands",
    responses={200: AccountOut},
)
async def get_account(request: web.Request) -> web.Response:
    """Balance, what is still available, pending reservations and limits. Members
    read their own (and their organizations'); treasurers and admins read all."""
    account, community, actor = await visible_account(request, path_uuid(request))
    actor.require_account_read(account.owner_id)
    owner = await owner_out(request, community.id, account.owner_id)
    return respond(account_out(account, community, owner))


@api.operation(
    "GET",
    "/v1/communities/{slug}/accounts/near-limits",
    tag=TAG,
    summary="Accounts near their limits (treasurers, admins, auditing clients)",
    query=NearLimitsQuery,
    responses={200: NearLimitsOut},
)
async def near_limits(request: web.Request) -> web.Response:
    """Members' and organizations' open accounts within `share_bps` (per 10,000)
    of a limit: what they may still spend, reservations counted, against what they
    may owe, or what they may still receive against their ceiling."""
    community, actor = await community_actor(request, request.match_info["slug"])
    actor.require_audit()
    query = query_of(request, NearLimitsQuery)
    accounts = await request.app[LEDGER].near_limits(
        community.id, share_bps=query.share_bps, limit=query.limit + 1
    )
    listed = accounts[: query.limit]
    owners = await owners_out(request, community.id, (account.owner_id for account in listed))
    items = [account_out(account, community, owners[account.owner_id]) for account in listed]
    return respond(NearLimitsOut(items=items, truncated=len(accounts) > query.limit))


@api.operation(
    "GET",
    "/v1/communities/{slug}/accounts/{id}/owner",
    tag=TAG,
    summary="Who holds an account",
    responses={200: OwnerOut},
)
async def account_owner(request: web.Request) -> web.Response:
    """The kind and name of whoever holds an account of the community: what a
    member reads before paying a code they scanned, or beside an exchange, without
    going through the directory. Members see as much in the directory already;
    API clients need members:read."""
    community, actor = await community_actor(request, request.match_info["slug"])
    if actor.is_client:
        actor.require_scope(Scope.MEMBERS_READ)
    elif not actor.is_operator:
        actor.require_member()
    account_id = path_uuid(request)
    owners = await request.app[DIRECTORY].account_owners(community.id, [account_id])
    if account_id not in owners:
        raise NotFound(f"no account {account_id} in this community")
    owner_id = owners[account_id]
    return respond((await owners_out(request, community.id, [owner_id]))[owner_id])


@api.operation(
    "PATCH",
    "/v1/accounts/{id}",
    tag=TAG,
    summary="Change an account's limits or status (admins)",
    body=AccountPatch,
    responses={200: AccountOut},
    errors=("limits_conflict_with_balance", "account_closed", "account_not_empty"),
)
async def patch_account(request: web.Request) -> web.Response:
    """Limits can never be set so that the balance (with its reservations) falls
    outside them; closing needs an empty account with nothing pending; a closed
    account stays closed. All the changes apply together or none."""
    account, community, actor = await visible_account(request, path_uuid(request))
    actor.require_admin()
    body = body_of(request, AccountPatch)
    updated = await request.app[LEDGER].update_account(
        community.id,
        account.id,
        min_balance=body.min_balance,
        max_balance=body.max_balance,
        status=body.status,
    )
    owner = await owner_out(request, community.id, updated.owner_id)
    return respond(account_out(updated, community, owner))


@api.operation(
    "GET",
    "/v1/accounts/{id}/entries",
    tag=TAG,
    summary="An account's statement",
    query=EntriesQuery,
    responses={200: EntriesPage},
)
async def list_entries(request: web.Request) -> web.Response:
    """Postings newest first, each with the balance it left; `from` and `to` bound
    the posting time; `next_cursor` gives the next (older) page."""
    account, community, actor = await visible_account(request, path_uuid(request))
    actor.require_account_read(account.owner_id)
    query = query_of(request, EntriesQuery)
    before_seq = None
    if query.cursor is not None:
        (value,) = decode_cursor(query.cursor, 1)
        before_seq = int(value) if value.isdigit() else _bad_cursor()
    page = await request.app[LEDGER].statement(
        community.id,
        account.id,
        limit=query.limit,
        before_seq=before_seq,
        posted_from=_aware(query.from_, "from"),
        posted_before=_aware(query.to, "to"),
    )
    owner = await owner_out(request, community.id, account.owner_id)
    return respond(
        EntriesPage(
            account=account_out(page.account, community, owner),
            items=[
                EntryOut(
                    seq=line.account_seq,
                    transaction_id=line.transaction_id,
                    kind=line.kind,
                    memo=line.memo,
                    category=line.category,
                    amount=line.amount,
                    balance_after=line.balance_after,
                    posted_at=line.posted_at,
                )
                for line in page.lines
            ],
            next_cursor=None
            if page.next_before_seq is None
            else encode_cursor(page.next_before_seq),
        )
    )


def _bad_cursor() -> int:
    raise ValidationError("the cursor is not one this service gave", field="cursor")


def _aware(instant: datetime | None, name: str) -> datetime | None:
    """Instants must say their offset: a bare local time means nothing here."""
    if instant is not None and instant.tzinfo is None:
        raise ValidationError(f"{name} needs a time zone offset, e.g. 2026-01-31T12:00:00Z")
    return instant
