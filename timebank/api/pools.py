"""Solidarity pools: charters, donations, requests for help and the managers'
decisions, direct grants, referrals, the pool's public statement; and the
community's levies, which feed pools from exchanges."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from aiohttp import web

from timebank.api.context import (
    community_actor,
    cursor_uuid,
    decode_cursor,
    encode_cursor,
    owners_out,
    path_uuid,
)
from timebank.api.contract import body_of, query_of, respond
from timebank.api.registry import api
from timebank.api.schemas import (
    CharterIn,
    DecisionIn,
    DecisionOut,
    DonationIn,
    GrantIn,
    GrantOut,
    HelpRequestIn,
    HelpRequestOut,
    HelpRequestsPage,
    HelpRequestsQuery,
    LevyIn,
    LevyList,
    LevyOut,
    OverflowIn,
    OverflowList,
    OverflowOut,
    PoolCreate,
    PoolDecisionSummaryOut,
    PoolLineOut,
    PoolList,
    PoolOut,
    PoolStatementOut,
    PoolStatementQuery,
    PoolUnitOut,
    ReferralIn,
    TransactionOut,
)
from timebank.api.transactions import account_owners, written_out
from timebank.auth.access import Actor
from timebank.auth.errors import Forbidden
from timebank.keys import KEYS, LEDGER, LOG, POOLS, VERIFIER
from timebank.ledger.errors import ValidationError
from timebank.ledger.models import Community, Outcome, TransactionKind, TransactionRequest
from timebank.pools.models import Charter, Decision, LevyPayer, LevyRule, RequestState
from timebank.pools.models import UnitTerms as PoolTerms
from timebank.pools.store import HelpRequest, Pool, PoolPolicies
from timebank.signing.errors import SignatureRequired
from timebank.signing.service import decode, verified_pool_decision

TAG = "Pools"
# The statement shows this many of the latest decided requests.
DECISIONS_SHOWN = 20
P = "/v1/communities/{slug}/pools"
POOL_ERRORS = ("unknown_pool", "charter_invalid", "unknown_unit")
GRANT_ERRORS = (
    "unknown_pool",
    "not_eligible",
    "pool_cap_exceeded",
    "limit_exceeded",
    "unknown_account",
    "account_frozen",
    "account_closed",
    "transaction_id_conflict",
)


def _charter(body: CharterIn) -> Charter:
    return Charter(
        purpose=body.purpose,
        managers=frozenset(body.managers),
        approvals_required=body.approvals_required,
        units=tuple(
            PoolTerms(
                unit_code=unit.unit,
                grant_max=unit.grant_max,
                beneficiary_period_max=unit.beneficiary_period_max,
                eligible_at_or_below=unit.eligible_at_or_below,
            )
            for unit in body.units
        ),
        period_days=body.period_days,
        referrers=frozenset(body.referrers),
        requires_referral=body.requires_referral,
        donors_visible=body.donors_visible,
    )


def pool_out(pool: Pool) -> PoolOut:
    charter = pool.charter
    return PoolOut(
        id=pool.id,
        name=pool.name,
        purpose=charter.purpose,
        managers=sorted(charter.managers),
        approvals_required=charter.approvals_required,
        period_days=charter.period_days,
        referrers=sorted(charter.referrers),
        requires_referral=charter.requires_referral,
        donors_visible=charter.donors_visible,
        units=[
            PoolUnitOut(
                unit=unit.terms.unit_code,
                account=unit.account_id,
                balance=unit.balance,
                grant_max=unit.terms.grant_max,
                beneficiary_period_max=unit.terms.beneficiary_period_max,
                eligible_at_or_below=unit.terms.eligible_at_or_below,
            )
            for unit in pool.units
        ],
        created_at=pool.created_at,
    )


async def requests_out(
    request: web.Request, community_id: uuid.UUID, help_requests: Sequence[HelpRequest]
) -> list[HelpRequestOut]:
    """The requests with their beneficiaries' names, which the managers deciding
    read (the directory's first page need not show them)."""
    beneficiaries = await owners_out(
        request, community_id, (help_request.beneficiary_id for help_request in help_requests)
    )
    return [
        request_out(help_request, beneficiaries[help_request.beneficiary_id].display_name)
        for help_request in help_requests
    ]


def request_out(help_request: HelpRequest, beneficiary_name: str) -> HelpRequestOut:
    return HelpRequestOut(
        id=help_request.id,
        pool=help_request.pool_id,
        beneficiary=help_request.beneficiary_id,
        beneficiary_name=beneficiary_name,
        unit=help_request.unit_code,
        amount=help_request.amount,
        reason=help_request.reason,
        state=help_request.state.value,
        decisions=[
            DecisionOut(manager=manager, decision=decision.value)
            for manager, decision in help_request.decisions
        ],
        transaction=help_request.transaction_id,
        created_at=help_request.created_at,
        resolved_at=help_request.resolved_at,
    )


def _person(actor: Actor) -> uuid.UUID:
    """The member's own party: asking, deciding and referring are people's acts."""
    if actor.is_client or actor.role is None or actor.party_id is None:
        raise Forbidden("only the community's members do this, in their own name")
    return actor.party_id


async def _pool_of(request: web.Request) -> tuple[Community, Actor, Pool]:
    community, actor = await community_actor(request, request.match_info["slug"])
    actor.require_member()
    return community, actor, await request.app[POOLS].pool(community.id, path_uuid(request))


def _is_staff(pool: Pool, actor: Actor) -> bool:
    """Managers and referrers of the pool, and those who read the whole ledger."""
    if actor.reads_all:
        return True
    return actor.party_id is not None and (
        actor.party_id in pool.charter.managers or actor.party_id in pool.charter.referrers
    )


@api.operation(
    "POST",
    P,
    tag=TAG,
    summary="Create a solidarity pool (admins)",
    body=PoolCreate,
    responses={201: PoolOut},
    errors=POOL_ERRORS,
)
async def create_pool(request: web.Request) -> web.Response:
    """A pool with its charter: purpose, managers and how many must approve a
    request (k of n), caps per unit, eligibility, and whether donors are shown. It
    gets an account per unit that never goes below zero. The charter is logged."""
    community, actor = await community_actor(request, request.match_info["slug"])
    actor.require_admin()
    body = body_of(request, PoolCreate)
    pool = await request.app[POOLS].create_pool(community.id, body.name, _charter(body))
    return respond(pool_out(pool), 201)


@api.operation("GET", P, tag=TAG, summary="The community's pools", responses={200: PoolList})
async def list_pools(request: web.Request) -> web.Response:
    """Public inside the community: charters and balances."""
    community, actor = await community_actor(request, request.match_info["slug"])
    actor.require_member()
    pools = await request.app[POOLS].pools(community.id)
    return respond(PoolList(items=[pool_out(pool) for pool in pools]))


@api.operation(
    "GET", P + "/{id}", tag=TAG, summary="A pool", responses={200: PoolOut}, errors=POOL_ERRORS
)
async def get_pool(request: web.Request) -> web.Response:
    _, _, pool = await _pool_of(request)
    return respond(pool_out(pool))


@api.operation(
    "PUT",
    P + "/{id}/charter",
    tag=TAG,
    summary="Change a pool's charter (admins)",
    body=CharterIn,
    responses={200: PoolOut},
    errors=POOL_ERRORS,
)
async def set_charter(request: web.Request) -> web.Response:
    """Replaces the charter (a unit once given stays); logged. Decisions already
    made keep counting toward their requests."""
    community, actor = await community_actor(request, request.match_info["slug"])
    actor.require_admin()
    pool = await request.app[POOLS].set_charter(
        community.id, path_uuid(request), _charter(body_of(request, CharterIn))
    )
    return respond(pool_out(pool))


@api.operation(
    "POST",
    P + "/{id}/donations",
    tag=TAG,
    summary="Give to a pool",
    body=DonationIn,
    responses={201: TransactionOut, 200: TransactionOut},
    errors=(*GRANT_ERRORS, "unit_mismatch"),
)
async def donate(request: web.Request) -> web.Response:
    """A donation from one of the caller's accounts (their own, an organization's
    they act for) to the pool's account in that unit. The id is the client's: a
    retry gives once."""
    community, actor, pool = await _pool_of(request)
    body = body_of(request, DonationIn)
    owners = await account_owners(request, community, [body.from_])
    actor.require_transaction_write(owners.values())
    ledger_request = TransactionRequest.transfer(
        id=body.id,
        community_id=community.id,
        unit_code=body.unit,
        from_account=body.from_,
        to_account=pool.unit(body.unit).account_id,
        amount=body.amount,
        kind=TransactionKind.DONATION,
        memo=body.memo,
        category="solidarity",
    )
    result = await request.app[LEDGER].post(ledger_request)
    status = 201 if result.outcome is Outcome.CREATED else 200
    return respond(written_out(ledger_request, result, community), status)


@api.operation(
    "POST",
    P + "/{id}/requests",
    tag=TAG,
    summary="Ask a pool for help",
    body=HelpRequestIn,
    responses={201: HelpRequestOut, 200: HelpRequestOut},
    errors=(*POOL_ERRORS, "request_id_conflict", "unknown_account"),
)
async def ask(request: web.Request) -> web.Response:
    """A member asks for an amount, with a reason the pool's managers read. The
    request is paid when enough managers approve it (caps and eligibility are
    judged then). The same id again answers the same request."""
    community, actor, pool = await _pool_of(request)
    body = body_of(request, HelpRequestIn)
    help_request, created = await request.app[POOLS].ask(
        community.id,
        body.id,
        pool_id=pool.id,
        beneficiary_id=_person(actor),
        unit_code=body.unit,
        amount=body.amount,
        reason=body.reason,
    )
    (out,) = await requests_out(request, community.id, [help_request])
    return respond(out, 201 if created else 200)


@api.operation(
    "GET",
    P + "/{id}/requests",
    tag=TAG,
    summary="A pool's requests for help",
    query=HelpRequestsQuery,
    responses={200: HelpRequestsPage},
    errors=POOL_ERRORS,
)
async def list_requests(request: web.Request) -> web.Response:
    """Newest first. The pool's managers and referrers, treasurers and admins see
    every request; a member sees their own."""
    community, actor, pool = await _pool_of(request)
    query = query_of(request, HelpRequestsQuery)
    after: tuple[datetime, uuid.UUID] | None = None
    if query.cursor is not None:
        created_at, request_id = decode_cursor(query.cursor, 2)
        try:
            after = (datetime.fromisoformat(created_at), cursor_uuid(request_id))
        except ValueError:
            raise ValidationError(
                "the cursor is not one this service gave", field="cursor"
            ) from None
    staff = _is_staff(pool, actor)
    items = await request.app[POOLS].requests(
        community.id,
        pool.id,
        state=RequestState(query.state) if query.state else None,
        beneficiary_id=None if staff else _person(actor),
        after=after,
        limit=query.limit + 1,
    )
    page = items[: query.limit]
    next_cursor = (
        encode_cursor(page[-1].created_at.isoformat(), page[-1].id)
        if len(items) > query.limit
        else None
    )
    items_out = await requests_out(request, community.id, page)
    return respond(HelpRequestsPage(items=items_out, next_cursor=next_cursor))


@api.operation(
    "POST",
    P + "/{id}/requests/{request_id}/decisions",
    tag=TAG,
    summary="Approve or decline a request (the pool's managers)",
    body=DecisionIn,
    responses={200: HelpRequestOut},
    errors=(
        *GRANT_ERRORS,
        "request_not_open",
        "decision_conflict",
        "signature_malformed",
        "signature_invalid",
        "intent_wrong_ledger",
        "intent_mismatch",
        "key_unknown",
        "key_revoked",
        "key_not_allowed",
        "signature_required",
    ),
)
async def decide(request: web.Request) -> web.Response:
    """Each manager decides once (logged). The approval that reaches the charter's
    threshold pays the grant in the same transaction: if the grant cannot be paid
    (a cap, eligibility, the pool's balance), that approval is refused with the
    reason and nothing is recorded. Once approval can no longer be reached, the
    request is declined. `signed` carries the manager's signed decision
    (`{"v":1,"type":"pool_decision","ledger":<origin>,"request_id":...,
    "decision":...,"key_id":...}`, RFC 8785), required when the community requires
    signatures; it is logged with the decision."""
    community, actor, pool = await _pool_of(request)
    body = body_of(request, DecisionIn)
    manager_id = _person(actor)
    request_id = _request_id(request)
    signature = None
    if body.signed is not None:
        signature = await verified_pool_decision(
            request.app[KEYS],
            request.app[VERIFIER],
            community_id=community.id,
            origin=await request.app[LOG].origin(community.id, community.slug),
            signed=decode(body.signed.decision, "decision"),
            signature=decode(body.signed.signature, "signature"),
            request_id=request_id,
            decision=body.decision,
            manager_id=manager_id,
        )
    elif await request.app[KEYS].policy(community.id) == "required":
        raise SignatureRequired("this community requires managers to sign their decisions")
    help_request = await request.app[POOLS].decide(
        community.id,
        request_id,
        pool_id=pool.id,
        manager_id=manager_id,
        decision=Decision(body.decision),
        signature=signature,
    )
    (out,) = await requests_out(request, community.id, [help_request])
    return respond(out)


def _request_id(request: web.Request) -> uuid.UUID:
    return path_uuid(request, "request_id")


@api.operation(
    "POST",
    P + "/{id}/requests/{request_id}/withdraw",
    tag=TAG,
    summary="Withdraw one's own open request",
    responses={200: HelpRequestOut},
    errors=("unknown_pool", "request_not_open"),
)
async def withdraw(request: web.Request) -> web.Response:
    community, actor, pool = await _pool_of(request)
    help_request = await request.app[POOLS].withdraw(
        community.id, _request_id(request), pool_id=pool.id, by=_person(actor)
    )
    (out,) = await requests_out(request, community.id, [help_request])
    return respond(out)


@api.operation(
    "POST",
    P + "/{id}/grants",
    tag=TAG,
    summary="Grant directly from a pool (its managers)",
    body=GrantIn,
    responses={201: GrantOut},
    errors=GRANT_ERRORS,
)
async def grant(request: web.Request) -> web.Response:
    """A manager pays a member from the pool within its caps and eligibility; the
    id is the transaction's, chosen by the client (a retry pays once)."""
    community, actor, pool = await _pool_of(request)
    body = body_of(request, GrantIn)
    transaction_id = await request.app[POOLS].grant(
        community.id,
        body.id,
        pool_id=pool.id,
        manager_id=_person(actor),
        beneficiary_id=body.to,
        unit_code=body.unit,
        amount=body.amount,
        memo=body.memo,
    )
    return respond(GrantOut(transaction=transaction_id), 201)


@api.operation(
    "POST",
    P + "/{id}/referrals",
    tag=TAG,
    summary="Name (or stop naming) a member the pool may help (its referrers)",
    body=ReferralIn,
    responses={204: None},
    errors=("unknown_pool",),
)
async def refer(request: web.Request) -> web.Response:
    """For pools whose charter requires a referral: a referrer (a social worker)
    or an admin names the member; logged."""
    community, actor, pool = await _pool_of(request)
    body = body_of(request, ReferralIn)
    party_id = _person(actor)
    if party_id not in pool.charter.referrers:
        actor.require_admin()
    await request.app[POOLS].refer(
        community.id, pool.id, body.member, referred_by=party_id, referred=body.referred
    )
    return web.Response(status=204)


@api.operation(
    "GET",
    P + "/{id}/statement",
    tag=TAG,
    summary="A pool's public statement",
    query=PoolStatementQuery,
    responses={200: PoolStatementOut},
    errors=POOL_ERRORS,
)
async def statement(request: web.Request) -> web.Response:
    """Inflows and outflows with the balance each left, newest first, and the
    latest requests decided with their approvals and declines. Donors are named
    when the charter says so; beneficiaries only to the pool's staff, treasurers
    and admins (asking for help stays private)."""
    community, actor, pool = await _pool_of(request)
    query = query_of(request, PoolStatementQuery)
    unit = pool.unit(query.unit)
    page = await request.app[LEDGER].statement(
        community.id, unit.account_id, limit=query.limit, before_seq=query.before
    )
    parties = await request.app[POOLS].counterparties(
        community.id, unit.account_id, [line.transaction_id for line in page.lines]
    )
    staff = _is_staff(pool, actor)
    lines = []
    for line in page.lines:
        names = [party.name for party in parties.get(line.transaction_id, ())]
        shown = staff or (line.amount > 0 and pool.charter.donors_visible)
        lines.append(
            PoolLineOut(
                transaction=line.transaction_id,
                kind=line.kind.value,
                amount=line.amount,
                balance_after=line.balance_after,
                posted_at=line.posted_at,
                counterparty=", ".join(names) if shown and names else None,
            )
        )
    pools = request.app[POOLS]
    decided = [
        asked
        for state in (RequestState.PAID, RequestState.DECLINED)
        for asked in await pools.requests(community.id, pool.id, state=state, limit=DECISIONS_SHOWN)
        if asked.unit_code == query.unit
    ]
    decided.sort(key=lambda item: item.resolved_at or item.created_at, reverse=True)
    return respond(
        PoolStatementOut(
            pool=pool.id,
            unit=query.unit,
            balance=page.account.balance,
            lines=lines,
            next_before=page.next_before_seq,
            decisions=[_decision_summary(item) for item in decided[:DECISIONS_SHOWN]],
        )
    )


def _decision_summary(help_request: HelpRequest) -> PoolDecisionSummaryOut:
    approvals = sum(decision is Decision.APPROVE for _, decision in help_request.decisions)
    return PoolDecisionSummaryOut(
        request=help_request.id,
        unit=help_request.unit_code,
        amount=help_request.amount,
        state="paid" if help_request.state is RequestState.PAID else "declined",
        approvals=approvals,
        declines=len(help_request.decisions) - approvals,
        resolved_at=help_request.resolved_at,
    )


# Levies.


def levy_out(rule: LevyRule) -> LevyOut:
    return LevyOut(
        id=rule.id,
        unit=rule.unit_code,
        category=rule.category,
        pool=rule.pool_id,
        account=rule.account_id,
        rate_bps=rule.rate_bps,
        fixed_amount=rule.fixed_amount,
        paid_by=rule.paid_by.value,
    )


@api.operation(
    "GET",
    "/v1/communities/{slug}/policies/levies",
    tag=TAG,
    summary="The levies in force",
    responses={200: LevyList},
)
async def list_levies(request: web.Request) -> web.Response:
    """Public inside the community: what each exchange pays to which pool."""
    community, actor = await community_actor(request, request.match_info["slug"])
    actor.require_member()
    rules = await request.app[POOLS].levy_rules(community.id, fresh=True)
    return respond(LevyList(items=[levy_out(rule) for rule in rules]))


@api.operation(
    "PUT",
    "/v1/communities/{slug}/policies/levies",
    tag=TAG,
    summary="Put a levy in force for a unit and category (admins)",
    body=LevyIn,
    responses={200: LevyList},
    errors=POOL_ERRORS,
)
async def set_levy(request: web.Request) -> web.Response:
    """Replaces the rule for the unit and category (null: every category without
    its own); a rate and fixed amount of 0 removes it. On each exchange or transfer
    in the unit, the levy (rate_bps/10,000 of the amount rounded down, plus the
    fixed amount) goes to the pool, paid by the payer, the payee, or split (the
    payer pays the odd step), in the same transaction. Changes are logged."""
    community, actor = await community_actor(request, request.match_info["slug"])
    actor.require_admin()
    body = body_of(request, LevyIn)
    rules = await request.app[POOLS].set_levy(
        community.id,
        pool_id=body.pool,
        unit_code=body.unit,
        category=body.category,
        rate_bps=body.rate_bps,
        fixed_amount=body.fixed_amount,
        paid_by=LevyPayer(body.paid_by),
    )
    return respond(LevyList(items=[levy_out(rule) for rule in rules]))


def _overflows_out(policies: PoolPolicies) -> OverflowList:
    return OverflowList(
        items=[OverflowOut(unit=unit, account=account) for unit, account in policies.overflows]
    )


@api.operation(
    "GET",
    "/v1/communities/{slug}/policies/overflow",
    tag=TAG,
    summary="Where payments above a payee's maximum go",
    responses={200: OverflowList},
)
async def list_overflows(request: web.Request) -> web.Response:
    community, actor = await community_actor(request, request.match_info["slug"])
    actor.require_member()
    policies = await request.app[POOLS].policies(community.id, fresh=True)
    return respond(_overflows_out(policies))


@api.operation(
    "PUT",
    "/v1/communities/{slug}/policies/overflow",
    tag=TAG,
    summary="Let payments above a payee's maximum overflow to a pool (admins)",
    body=OverflowIn,
    responses={200: OverflowList},
    errors=POOL_ERRORS,
)
async def set_overflow(request: web.Request) -> web.Response:
    """Instead of refusing a transfer that would take the payee above their
    maximum, the payee receives up to it and the rest goes to the pool, in the
    same transaction (a payee already at the maximum is still refused). `pool:
    null` refuses again. Logged."""
    community, actor = await community_actor(request, request.match_info["slug"])
    actor.require_admin()
    body = body_of(request, OverflowIn)
    policies = await request.app[POOLS].set_overflow(
        community.id, unit_code=body.unit, pool_id=body.pool
    )
    return respond(_overflows_out(policies))
