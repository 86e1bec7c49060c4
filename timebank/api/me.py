"""The caller's own identity and memberships."""

from __future__ import annotations

from aiohttp import web

from timebank.api.authentication import authenticate
from timebank.keys import IDENTITIES

routes = web.RouteTableDef()


@routes.get("/v1/me")
async def me(request: web.Request) -> web.Response:
    """The person behind the access token, with a role per community."""
    principal = authenticate(request)
    person = await request.app[IDENTITIES].person(principal.person_id)
    return web.json_response(
        {
            "id": str(person.id),
            "email": person.email,
            "display_name": person.display_name,
            "is_operator": person.is_operator,
            "memberships": [
                {
                    "community": membership.slug,
                    "community_id": str(membership.community_id),
                    "name": membership.name,
                    "role": membership.role,
                    "party_id": str(membership.party_id),
                }
                for membership in person.memberships
            ],
        }
    )
