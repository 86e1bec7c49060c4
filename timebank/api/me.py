"""The caller's own identity, memberships and accounts."""

from __future__ import annotations

from aiohttp import web

from timebank.api.authentication import authenticate
from timebank.api.context import owners_out
from timebank.api.contract import respond
from timebank.api.registry import api
from timebank.api.schemas import MembershipOut, MeOut, MyAccountOut
from timebank.auth.errors import Forbidden
from timebank.keys import DIRECTORY, IDENTITIES, LEDGER


@api.operation(
    "GET", "/v1/me", tag="Me", summary="Who I am, where, and my accounts", responses={200: MeOut}
)
async def me(request: web.Request) -> web.Response:
    """The person behind the access token, a role per community, and in each the
    accounts they move (their own and their organizations') with their balances."""
    principal = authenticate(request)
    if principal.person_id is None:
        raise Forbidden("/v1/me is for people; an API client has no person")
    person = await request.app[IDENTITIES].person(principal.person_id)
    directory = request.app[DIRECTORY]
    memberships = []
    for membership in person.memberships:
        _, actor = await directory.actor(principal, community_id=membership.community_id)
        owner_ids = sorted(actor.acting_for - {None}, key=str)
        owners = await owners_out(request, membership.community_id, owner_ids)
        accounts = await request.app[LEDGER].accounts_of(membership.community_id, owner_ids)
        memberships.append(
            MembershipOut(
                community=membership.slug,
                community_id=membership.community_id,
                name=membership.name,
                role=membership.role,
                party_id=membership.party_id,
                accounts=[
                    MyAccountOut(
                        id=account.id,
                        unit=account.unit_code,
                        owner=owners[account.owner_id],
                        balance=account.balance,
                        available=account.available,
                        pending_debits=account.pending_debits,
                        pending_credits=account.pending_credits,
                        min_balance=account.min_balance,
                        max_balance=account.max_balance,
                        status=account.status,
                    )
                    for account in accounts
                ],
            )
        )
    return respond(
        MeOut(
            id=person.id,
            email=person.email,
            display_name=person.display_name,
            is_operator=person.is_operator,
            memberships=memberships,
        )
    )
