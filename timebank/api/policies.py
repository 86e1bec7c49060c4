"""Periodic policies of a community: demurrage on a currency, expiry of hours,
membership fees and recurring donations; their runs and the dues they leave."""

from __future__ import annotations

from aiohttp import web

from timebank.api.context import community_actor, path_uuid
from timebank.api.contract import body_of, query_of, respond
from timebank.api.registry import api
from timebank.api.schemas import (
    DueOut,
    DuesList,
    DuesQuery,
    LimitDefaultsIn,
    LimitDefaultsList,
    LimitDefaultsOut,
    RunList,
    RunOut,
    ScheduleIn,
    ScheduleList,
    ScheduleOut,
)
from timebank.auth.access import Scope
from timebank.auth.errors import Forbidden
from timebank.keys import POLICIES
from timebank.policies.models import Schedule, ScheduleKind
from timebank.policies.periods import Period
from timebank.policies.store import LimitDefaults, RunSummary

TAG = "Policies"
S = "/v1/communities/{slug}/policies/schedules"
SCHEDULE_ERRORS = ("validation_error", "unknown_unit", "unknown_account")


def schedule_out(schedule: Schedule) -> ScheduleOut:
    return ScheduleOut(
        id=schedule.id,
        kind=schedule.kind.value,
        unit=schedule.unit_code,
        period=schedule.period.value,
        starts_on=schedule.starts_on,
        target=schedule.target_account,
        rate_bps=schedule.rate_bps,
        threshold=schedule.threshold,
        amount=schedule.amount,
        payer_kind=schedule.payer_kind,
        source=schedule.source_account,
        grace_days=schedule.grace_days,
        created_at=schedule.created_at,
        retired_at=schedule.retired_at,
    )


def run_out(summary: RunSummary) -> RunOut:
    return RunOut(
        schedule=summary.schedule_id,
        period_start=summary.period_start,
        period_end=summary.period_end,
        charged_count=summary.charged_count,
        charged_total=summary.charged_total,
        unpaid_count=summary.unpaid_count,
    )


@api.operation(
    "POST",
    S,
    tag=TAG,
    summary="Put a periodic policy in force (admins)",
    body=ScheduleIn,
    responses={201: ScheduleOut},
    errors=SCHEDULE_ERRORS,
)
async def create_schedule(request: web.Request) -> web.Response:
    """`demurrage`: each period, rate_bps/10,000 of each member's and
    organization's balance above `threshold` (at the period's end, rounded down)
    goes to `target`. `hours_expiry`: all of it. `membership_fee`: `amount` from
    each account of `payer_kind`, unpaid ones tried again each run and overdue
    after `grace_days`. `recurring_donation`: `amount` from `source`. Each period
    runs once, after it ends (late ones when the service comes back); logged."""
    community, actor = await community_actor(request, request.match_info["slug"])
    actor.require_admin()
    body = body_of(request, ScheduleIn)
    schedule = await request.app[POLICIES].create_schedule(
        Schedule(
            id=community.id,  # replaced by the store's
            community_id=community.id,
            kind=ScheduleKind(body.kind),
            unit_code=body.unit,
            period=Period(body.period),
            starts_on=body.starts_on,
            target_account=body.target,
            rate_bps=body.rate_bps,
            threshold=body.threshold,
            amount=body.amount,
            payer_kind=body.payer_kind,
            source_account=body.source,
            grace_days=body.grace_days,
        )
    )
    return respond(schedule_out(schedule), 201)


@api.operation(
    "GET", S, tag=TAG, summary="The community's periodic policies", responses={200: ScheduleList}
)
async def list_schedules(request: web.Request) -> web.Response:
    """Public inside the community, retired ones included."""
    community, actor = await community_actor(request, request.match_info["slug"])
    actor.require_member()
    schedules = await request.app[POLICIES].schedules(community.id)
    return respond(ScheduleList(items=[schedule_out(schedule) for schedule in schedules]))


@api.operation(
    "DELETE",
    S + "/{id}",
    tag=TAG,
    summary="Retire a periodic policy (admins)",
    responses={200: ScheduleOut},
    errors=("validation_error",),
)
async def retire_schedule(request: web.Request) -> web.Response:
    """No period after it is charged; what was charged stays. Logged."""
    community, actor = await community_actor(request, request.match_info["slug"])
    actor.require_admin()
    schedule = await request.app[POLICIES].retire(community.id, path_uuid(request))
    return respond(schedule_out(schedule))


@api.operation(
    "GET",
    S + "/{id}/runs",
    tag=TAG,
    summary="A policy's runs, newest first",
    responses={200: RunList},
)
async def list_runs(request: web.Request) -> web.Response:
    community, actor = await community_actor(request, request.match_info["slug"])
    actor.require_member()
    runs = await request.app[POLICIES].runs(community.id, path_uuid(request))
    return respond(RunList(items=[run_out(run) for run in runs]))


@api.operation(
    "POST",
    "/v1/communities/{slug}/policies/runs",
    tag=TAG,
    summary="Run every ended period now (admins)",
    responses={200: RunList},
)
async def run_now(request: web.Request) -> web.Response:
    """What the service does by itself every `policy_run_interval_s`: each period
    that has ended and not run, oldest first, once."""
    community, actor = await community_actor(request, request.match_info["slug"])
    actor.require_admin()
    runs = await request.app[POLICIES].run_due(community_id=community.id)
    return respond(RunList(items=[run_out(run) for run in runs]))


@api.operation(
    "GET",
    "/v1/communities/{slug}/policies/dues",
    tag=TAG,
    summary="Fees and donations charged, paid or not",
    query=DuesQuery,
    responses={200: DuesList},
)
async def list_dues(request: web.Request) -> web.Response:
    """Treasurers, admins and auditing clients see everyone's; a member their
    own (and their organizations'). `overdue`: unpaid past its grace period."""
    community, actor = await community_actor(request, request.match_info["slug"])
    actor.require_member()
    query = query_of(request, DuesQuery)
    if actor.reads_all:
        owners = None
    elif actor.is_client or actor.party_id is None:
        raise Forbidden("only treasurers, admins, auditing clients and members read dues")
    else:
        actor.require_scope(Scope.ACCOUNTS_READ)
        owners = actor.acting_for
    dues = await request.app[POLICIES].dues(
        community.id,
        owner_ids=sorted(owners) if owners is not None else None,
        unpaid_only=query.unpaid,
    )
    return respond(
        DuesList(
            items=[
                DueOut(
                    schedule=due.schedule_id,
                    kind=due.kind.value,
                    period_start=due.period_start,
                    account=due.account_id,
                    owner=due.owner_id,
                    amount=due.amount,
                    state="paid" if due.state == "paid" else "unpaid",
                    problem=due.problem,
                    due_on=due.due_on,
                    overdue=due.overdue,
                    transaction=due.transaction_id,
                )
                for due in dues
            ]
        )
    )


def _limits_out(defaults: list[LimitDefaults]) -> LimitDefaultsList:
    return LimitDefaultsList(
        items=[
            LimitDefaultsOut(
                unit=item.unit_code,
                kind=item.party_kind,
                min_balance=item.min_balance,
                max_balance=item.max_balance,
            )
            for item in defaults
        ]
    )


@api.operation(
    "GET",
    "/v1/communities/{slug}/policies/limits",
    tag=TAG,
    summary="Default limits per unit and kind of account",
    responses={200: LimitDefaultsList},
)
async def list_limit_defaults(request: web.Request) -> web.Response:
    """Where a kind has none, its accounts take the unit's defaults."""
    community, actor = await community_actor(request, request.match_info["slug"])
    actor.require_member()
    return respond(_limits_out(await request.app[POLICIES].limit_defaults(community.id)))


@api.operation(
    "PUT",
    "/v1/communities/{slug}/policies/limits",
    tag=TAG,
    summary="Set the default limits of a kind of account in a unit (admins)",
    body=LimitDefaultsIn,
    responses={200: LimitDefaultsList},
    errors=("unknown_unit", "validation_error"),
)
async def set_limit_defaults(request: web.Request) -> web.Response:
    """For accounts opened from now on (members, organizations, pools; a pool's
    minimum stays 0). An account's own limits are changed with PATCH
    /v1/accounts/{id}, which never breaks a pending reservation. Logged."""
    community, actor = await community_actor(request, request.match_info["slug"])
    actor.require_admin()
    body = body_of(request, LimitDefaultsIn)
    defaults = await request.app[POLICIES].set_limit_defaults(
        community.id,
        unit_code=body.unit,
        party_kind=body.kind,
        min_balance=body.min_balance,
        max_balance=body.max_balance,
    )
    return respond(_limits_out(defaults))
