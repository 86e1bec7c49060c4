"""Euro-backed local currency: its set-up, issuance by exchange offices against
euros received, and reconversion to euros by businesses."""

from __future__ import annotations

from aiohttp import web

from timebank.api.context import community_actor
from timebank.api.contract import body_of, respond
from timebank.api.registry import api
from timebank.api.schemas import (
    CurrencyIn,
    CurrencyOut,
    IssuanceIn,
    MovementOut,
    ReconversionIn,
)
from timebank.auth.errors import Forbidden
from timebank.keys import CURRENCY, DIRECTORY
from timebank.policies.currency import Currency, Movement

TAG = "Currency"
PATH = "/v1/communities/{slug}/currencies/{unit}"
MOVE_ERRORS = (
    "unknown_currency",
    "limit_exceeded",
    "unknown_account",
    "unit_mismatch",
    "account_frozen",
    "account_closed",
    "transaction_id_conflict",
)


def currency_out(currency: Currency) -> CurrencyOut:
    return CurrencyOut(
        unit=currency.unit_code,
        issuance_account=currency.issuance_account,
        fee_account=currency.fee_account,
        reconversion_fee_bps=currency.reconversion_fee_bps,
        reserve=currency.reserve,
        fees=currency.fees,
        circulation=currency.circulation,
        offices=list(currency.offices),
    )


def movement_out(movement: Movement) -> web.Response:
    body = MovementOut(
        transaction=movement.transaction_id,
        euros=movement.euros,
        fee=movement.fee,
        reserve=movement.reserve,
    )
    return respond(body, 201 if movement.created else 200)


@api.operation(
    "PUT",
    PATH,
    tag=TAG,
    summary="Back a currency with euros, or change its fee and offices (admins)",
    body=CurrencyIn,
    responses={200: CurrencyOut},
    errors=("unknown_unit", "validation_error"),
)
async def set_up_currency(request: web.Request) -> web.Response:
    """The community's issuance and fee accounts are opened for the unit; from
    then on its currency moves out of and back into circulation only through
    issuance and reconversion, with the euro reserve. Logged."""
    community, actor = await community_actor(request, request.match_info["slug"])
    actor.require_admin()
    body = body_of(request, CurrencyIn)
    currency = await request.app[CURRENCY].set_up(
        community.id,
        request.match_info["unit"],
        reconversion_fee_bps=body.reconversion_fee_bps,
        offices=body.offices,
    )
    return respond(currency_out(currency))


@api.operation(
    "GET",
    PATH,
    tag=TAG,
    summary="A euro-backed currency: reserve, fees, circulation",
    responses={200: CurrencyOut},
    errors=("unknown_currency",),
)
async def get_currency(request: web.Request) -> web.Response:
    """Public inside the community: anyone may see that circulation equals the
    reserve plus the fees."""
    community, actor = await community_actor(request, request.match_info["slug"])
    actor.require_member()
    currency = await request.app[CURRENCY].currency(community.id, request.match_info["unit"])
    return respond(currency_out(currency))


@api.operation(
    "POST",
    PATH + "/issuances",
    tag=TAG,
    summary="Issue currency against euros received (exchange offices)",
    body=IssuanceIn,
    responses={201: MovementOut, 200: MovementOut},
    errors=MOVE_ERRORS,
)
async def issue(request: web.Request) -> web.Response:
    """By an agent (or client) of the exchange office: `amount` euro cents were
    received, the same amount of currency is credited, and the reserve grows. The
    id is the client's: a retry issues once."""
    community, actor = await community_actor(request, request.match_info["slug"])
    body = body_of(request, IssuanceIn)
    if not actor.may_move(body.office):
        raise Forbidden("only an agent of the exchange office issues in its name")
    movement = await request.app[CURRENCY].issue(
        community.id,
        body.id,
        unit_code=request.match_info["unit"],
        office_id=body.office,
        to_account=body.to,
        amount=body.amount,
    )
    return movement_out(movement)


@api.operation(
    "POST",
    PATH + "/reconversions",
    tag=TAG,
    summary="Reconvert a business's currency to euros",
    body=ReconversionIn,
    responses={201: MovementOut, 200: MovementOut},
    errors=MOVE_ERRORS,
)
async def reconvert(request: web.Request) -> web.Response:
    """By an agent (or client) of the business: `amount` of currency leaves its
    account; `euros` (amount less the fee, rounded in its favour) are to be paid
    to it; the fee stays with the association. A retry reconverts once."""
    community, actor = await community_actor(request, request.match_info["slug"])
    body = body_of(request, ReconversionIn)
    owners = await request.app[DIRECTORY].account_owners(community.id, [body.from_])
    owner = owners.get(body.from_)
    if owner is None or not actor.may_move(owner):
        raise Forbidden("only the business's agents reconvert its currency")
    movement = await request.app[CURRENCY].reconvert(
        community.id,
        body.id,
        unit_code=request.match_info["unit"],
        from_account=body.from_,
        amount=body.amount,
    )
    return movement_out(movement)
