"""Communities, their units, members, organizations and API clients."""

from __future__ import annotations

from aiohttp import web

from timebank.api.authentication import authenticate
from timebank.api.context import (
    community_actor,
    cursor_uuid,
    decode_cursor,
    encode_cursor,
    path_uuid,
)
from timebank.api.contract import body_of, query_of, respond
from timebank.api.registry import api
from timebank.api.schemas import (
    AccountRefOut,
    AgentAdd,
    ClientCreate,
    ClientCreated,
    ClientList,
    ClientOut,
    CommunityCreate,
    CommunityOut,
    CommunityPatch,
    MemberCreate,
    MemberOut,
    MembersPage,
    MembersQuery,
    OrganizationCreate,
    OrganizationList,
    OrganizationOut,
    Policies,
    UnitCreate,
    UnitOut,
)
from timebank.auth.access import Actor, Scope
from timebank.auth.client_ids import parse_client_id
from timebank.auth.directory import AccountRef, ApiClient, Member, Organization
from timebank.auth.errors import Forbidden
from timebank.errors import NotFound
from timebank.keys import DIRECTORY, KEYS, LEDGER, SETTINGS
from timebank.ledger.models import Community, Unit, UnitKind

TAG = "Communities"


def _unit_out(unit: Unit) -> UnitOut:
    return UnitOut(
        id=unit.id,
        code=unit.code,
        name=unit.name,
        kind=unit.kind.value,
        decimals=unit.decimals,
        default_min_balance=unit.default_min_balance,
        default_max_balance=unit.default_max_balance,
    )


async def _community_out(request: web.Request, community: Community) -> CommunityOut:
    settings = request.app[SETTINGS]
    units = await request.app[LEDGER].units(community.id)
    return CommunityOut(
        id=community.id,
        slug=community.slug,
        name=community.name,
        created_at=community.created_at,
        units=[_unit_out(unit) for unit in units],
        policies=Policies(
            pending_expiry_default_s=settings.pending_expiry_default_s,
            pending_expiry_max_s=settings.pending_expiry_max_s,
            signatures=await request.app[KEYS].policy(community.id),
        ),
    )


def _refs(accounts: tuple[AccountRef, ...]) -> list[AccountRefOut]:
    return [AccountRefOut(id=ref.id, unit=ref.unit_code, purpose=ref.purpose) for ref in accounts]


def _member_out(member: Member, actor: Actor) -> MemberOut:
    sees_email = actor.sees_emails or actor.party_id == member.party_id
    return MemberOut(
        party_id=member.party_id,
        display_name=member.display_name,
        role=member.role,
        joined_at=member.joined_at,
        accounts=_refs(member.accounts),
        email=member.email if sees_email else None,
    )


def _organization_out(organization: Organization) -> OrganizationOut:
    return OrganizationOut(
        id=organization.party_id,
        name=organization.display_name,
        kind=organization.kind,
        created_at=organization.created_at,
        agents=list(organization.agent_party_ids),
        accounts=_refs(organization.accounts),
    )


def _client_out(client: ApiClient) -> ClientOut:
    return ClientOut(
        client_id=client.client_id,
        name=client.name,
        party_id=client.party_id,
        scopes=list(client.scopes),
        created_at=client.created_at,
        revoked_at=client.revoked_at,
    )


@api.operation(
    "POST",
    "/v1/communities",
    tag=TAG,
    summary="Create a community (platform operators)",
    body=CommunityCreate,
    responses={201: CommunityOut},
    errors=("already_exists",),
)
async def create_community(request: web.Request) -> web.Response:
    """Creates a community with its own party (for its system accounts). It has no
    unit yet: its admins add them."""
    principal = authenticate(request)
    if not principal.is_operator:
        raise Forbidden("only platform operators create communities")
    body = body_of(request, CommunityCreate)
    community = await request.app[LEDGER].create_community(body.slug, body.name)
    return respond(await _community_out(request, community), 201)


@api.operation(
    "GET",
    "/v1/communities/{slug}",
    tag=TAG,
    summary="A community, its units and policies",
    responses={200: CommunityOut},
)
async def get_community(request: web.Request) -> web.Response:
    """Seen by its members, its clients and platform operators."""
    community, actor = await community_actor(request, request.match_info["slug"])
    if not actor.is_operator:
        actor.require_member()
    return respond(await _community_out(request, community))


@api.operation(
    "PATCH",
    "/v1/communities/{slug}",
    tag=TAG,
    summary="Change the community's policies (admins)",
    body=CommunityPatch,
    responses={200: CommunityOut},
)
async def patch_community(request: web.Request) -> web.Response:
    """`signatures: required` makes every member's and organization's payment need
    the payer's signed intent (and a payee's acceptance of a signed payment, its
    signed acknowledgement). The change is logged."""
    community, actor = await community_actor(request, request.match_info["slug"])
    actor.require_admin()
    body = body_of(request, CommunityPatch)
    await request.app[KEYS].set_policy(community.id, body.signatures)
    return respond(await _community_out(request, community))


@api.operation(
    "POST",
    "/v1/communities/{slug}/units",
    tag=TAG,
    summary="Add a unit (admins)",
    body=UnitCreate,
    responses={201: UnitOut},
    errors=("already_exists",),
)
async def create_unit(request: web.Request) -> web.Response:
    """One time unit (whole minutes) and any number of currencies (in 10^-decimals).
    Every member and organization gets an account in the new unit."""
    community, actor = await community_actor(request, request.match_info["slug"])
    actor.require_manager()
    body = body_of(request, UnitCreate)
    unit = await request.app[DIRECTORY].create_unit(
        community.id,
        code=body.code,
        name=body.name,
        kind=UnitKind(body.kind),
        decimals=body.decimals,
        default_min_balance=body.default_min_balance,
        default_max_balance=body.default_max_balance,
    )
    return respond(_unit_out(unit), 201)


@api.operation(
    "POST",
    "/v1/communities/{slug}/members",
    tag=TAG,
    summary="Add a member (admins)",
    body=MemberCreate,
    responses={201: MemberOut},
    errors=("already_exists",),
)
async def create_member(request: web.Request) -> web.Response:
    """A person (new, or already known by their email in another community) joins
    with a role and a main account in every unit, all at once or not at all."""
    community, actor = await community_actor(request, request.match_info["slug"])
    actor.require_manager()
    body = body_of(request, MemberCreate)
    member = await request.app[DIRECTORY].create_member(
        community.id,
        email=body.email,
        display_name=body.display_name,
        password=body.password,
        role=body.role,
    )
    return respond(_member_out(member, actor), 201)


@api.operation(
    "GET",
    "/v1/communities/{slug}/members",
    tag=TAG,
    summary="The member directory",
    query=MembersQuery,
    responses={200: MembersPage},
)
async def list_members(request: web.Request) -> web.Response:
    """Members by name, searchable, a page at a time: their public profile and the
    accounts to pay them on. Emails are shown to treasurers and admins only."""
    community, actor = await community_actor(request, request.match_info["slug"])
    if actor.is_client:
        actor.require_scope(Scope.MEMBERS_READ)
    elif not actor.is_operator:
        actor.require_member()
    query = query_of(request, MembersQuery)
    after = None
    if query.cursor is not None:
        name, party_id = decode_cursor(query.cursor, 2)
        after = (name, cursor_uuid(party_id))
    members = await request.app[DIRECTORY].members(
        community.id, search=query.q, after=after, limit=query.limit + 1
    )
    page = members[: query.limit]
    next_cursor = (
        encode_cursor(page[-1].display_name, page[-1].party_id)
        if len(members) > query.limit
        else None
    )
    return respond(
        MembersPage(items=[_member_out(member, actor) for member in page], next_cursor=next_cursor)
    )


@api.operation(
    "POST",
    "/v1/communities/{slug}/organizations",
    tag=TAG,
    summary="Add an organization (admins)",
    body=OrganizationCreate,
    responses={201: OrganizationOut},
)
async def create_organization(request: web.Request) -> web.Response:
    """An association, business or public body, with a main account in every unit."""
    community, actor = await community_actor(request, request.match_info["slug"])
    actor.require_manager()
    body = body_of(request, OrganizationCreate)
    organization = await request.app[DIRECTORY].create_organization(
        community.id, name=body.name, kind=body.kind
    )
    return respond(_organization_out(organization), 201)


@api.operation(
    "GET",
    "/v1/communities/{slug}/organizations",
    tag=TAG,
    summary="The community's organizations",
    responses={200: OrganizationList},
)
async def list_organizations(request: web.Request) -> web.Response:
    """Every organization with its agents and accounts."""
    community, actor = await community_actor(request, request.match_info["slug"])
    if actor.is_client:
        actor.require_scope(Scope.MEMBERS_READ)
    elif not actor.is_operator:
        actor.require_member()
    organizations = await request.app[DIRECTORY].organizations(community.id)
    return respond(OrganizationList(items=[_organization_out(item) for item in organizations]))


@api.operation(
    "POST",
    "/v1/communities/{slug}/organizations/{organization_id}/agents",
    tag=TAG,
    summary="Name a member an agent of an organization (admins)",
    body=AgentAdd,
    responses={200: OrganizationOut},
)
async def add_agent(request: web.Request) -> web.Response:
    """The member then moves the organization's accounts as their own. Naming an
    agent twice changes nothing."""
    community, actor = await community_actor(request, request.match_info["slug"])
    actor.require_manager()
    organization_id = path_uuid(request, "organization_id")
    body = body_of(request, AgentAdd)
    organization = await request.app[DIRECTORY].add_agent(
        community.id, organization_id, body.member
    )
    return respond(_organization_out(organization))


@api.operation(
    "POST",
    "/v1/communities/{slug}/clients",
    tag=TAG,
    summary="Create an API client (admins)",
    body=ClientCreate,
    responses={201: ClientCreated},
)
async def create_client(request: web.Request) -> web.Response:
    """A client for an integrator, acting for the community or one of its
    organizations within its scopes. Its secret is in this answer only; it gets
    access tokens with grant_type=client_credentials."""
    community, actor = await community_actor(request, request.match_info["slug"])
    actor.require_manager()
    body = body_of(request, ClientCreate)
    directory = request.app[DIRECTORY]
    if body.organization is not None:
        party_id = (await directory.organization(community.id, body.organization)).party_id
    else:
        party_id = (await request.app[LEDGER].community_party(community.id)).id
    client, secret = await directory.create_client(
        community.id, name=body.name, party_id=party_id, scopes=body.scopes
    )
    created = ClientCreated(**_client_out(client).model_dump(), client_secret=secret)
    return respond(created, 201, **{"Cache-Control": "no-store"})


@api.operation(
    "GET",
    "/v1/communities/{slug}/clients",
    tag=TAG,
    summary="The community's API clients (admins)",
    responses={200: ClientList},
)
async def list_clients(request: web.Request) -> web.Response:
    """Every client, revoked ones included; never their secrets."""
    community, actor = await community_actor(request, request.match_info["slug"])
    actor.require_manager()
    clients = await request.app[DIRECTORY].clients(community.id)
    return respond(ClientList(items=[_client_out(client) for client in clients]))


@api.operation(
    "DELETE",
    "/v1/communities/{slug}/clients/{client_id}",
    tag=TAG,
    summary="Revoke an API client (admins)",
    responses={204: None},
)
async def revoke_client(request: web.Request) -> web.Response:
    """Its tokens stop working at once. The client is named by its client_id (or
    the bare id of a client made before client_ids named their community)."""
    community, actor = await community_actor(request, request.match_info["slug"])
    actor.require_manager()
    named = request.match_info["client_id"]
    reference = parse_client_id(named)
    if reference is None or reference.community_id not in (None, community.id):
        raise NotFound("no such client in this community", client_id=named)
    if not await request.app[DIRECTORY].revoke_client(community.id, reference.id):
        raise NotFound("no such client in this community", client_id=named)
    return web.Response(status=204)
