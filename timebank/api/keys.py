"""Device keys: members, agents and API clients register the public half of the
keys they sign with; they (or a community admin, for a lost phone) revoke them."""

from __future__ import annotations

from aiohttp import web

from timebank.api.authentication import authenticate
from timebank.api.context import community_actor, named_community_actor
from timebank.api.contract import body_of, query_of, respond
from timebank.api.registry import api
from timebank.api.schemas import KeyCreate, KeyList, KeyOut, KeysQuery
from timebank.auth.access import Actor
from timebank.auth.errors import Forbidden
from timebank.errors import NotFound
from timebank.keys import KEYS
from timebank.ledger.models import Community
from timebank.signing import intents
from timebank.signing.keys import MemberKey
from timebank.signing.service import decode, refused

TAG = "Keys"


def key_out(key: MemberKey, community: Community | str) -> KeyOut:
    return KeyOut(
        key_id=key.key_id,
        community=community if isinstance(community, str) else community.slug,
        party_id=key.party_id,
        algorithm=key.algorithm,
        public_key=intents.b64url_encode(key.public_key),
        label=key.label,
        registered_at=key.registered_at,
        revoked_at=key.revoked_at,
    )


def _signer_party(actor: Actor) -> None:
    if actor.party_id is None:
        raise Forbidden("only the community's members and clients register keys")


@api.operation(
    "POST",
    "/v1/me/keys",
    tag=TAG,
    summary="Register a device key",
    body=KeyCreate,
    responses={201: KeyOut},
    errors=("unknown_community", "already_exists", "signature_malformed"),
)
async def register_key(request: web.Request) -> web.Response:
    """The public key of a key made on your device (Ed25519, or ECDSA P-256 for
    browsers without Ed25519). Its id is derived from it; the registration enters
    the community's log, so signatures are judged at a log position."""
    principal = authenticate(request)
    body = body_of(request, KeyCreate)
    community, actor = await named_community_actor(request, body.community)
    _signer_party(actor)
    assert actor.party_id is not None
    algorithm = intents.KeyAlgorithm(body.algorithm)
    raw = decode(body.public_key, "public_key")
    verifier = refused(lambda: intents.load_public_key(algorithm, raw))
    key = await request.app[KEYS].register(
        community.id,
        key_id=verifier.key_id,
        party_id=actor.party_id,
        person_id=principal.person_id,
        client_id=principal.client.client_id if principal.client is not None else None,
        algorithm=algorithm.value,
        public_key=raw,
        label=body.label,
    )
    return respond(key_out(key, community), 201)


@api.operation(
    "GET",
    "/v1/me/keys",
    tag=TAG,
    summary="My device keys",
    query=KeysQuery,
    responses={200: KeyList},
    errors=("unknown_community",),
)
async def list_my_keys(request: web.Request) -> web.Response:
    """Your keys (in one community, or all), revoked ones included."""
    principal = authenticate(request)
    query = query_of(request, KeysQuery)
    keys = request.app[KEYS]
    community_id = None
    slug = None
    if query.community is not None:
        community, _ = await named_community_actor(request, query.community)
        community_id, slug = community.id, community.slug
    if principal.client is not None:
        found = await keys.of_client(principal.client.community_id, principal.client.client_id)
    else:
        assert principal.person_id is not None
        found = await keys.of_person(principal.person_id, community_id)
    slugs = {community_id: slug} if slug is not None else {}
    return respond(
        KeyList(items=[key_out(key, slugs.get(key.community_id) or "") for key in found])
    )


@api.operation(
    "DELETE",
    "/v1/communities/{slug}/keys/{key_id}",
    tag=TAG,
    summary="Revoke a key (its owner, or an admin)",
    responses={204: None},
)
async def revoke_key(request: web.Request) -> web.Response:
    """From now on the key signs nothing; what it signed before stays valid. Its
    owner revokes it from another device, or an admin for a lost phone."""
    principal = authenticate(request)
    community, actor = await community_actor(request, request.match_info["slug"])
    keys = request.app[KEYS]
    key = await keys.get(community.id, request.match_info["key_id"])
    if key is None:
        raise NotFound("no such key in this community")
    owns = (principal.person_id is not None and key.person_id == principal.person_id) or (
        principal.client is not None
        and key.community_id == principal.client.community_id
        and key.client_id == principal.client.client_id
    )
    if not owns:
        actor.require_admin()
    await keys.revoke(community.id, key.key_id)
    return web.Response(status=204)


@api.operation(
    "GET",
    "/v1/communities/{slug}/keys",
    tag=TAG,
    summary="The community's registered keys",
    responses={200: KeyList},
)
async def list_community_keys(request: web.Request) -> web.Response:
    """Every registered public key (public halves only: nothing secret)."""
    community, actor = await community_actor(request, request.match_info["slug"])
    actor.require_member()
    found = await request.app[KEYS].of_community(community.id)
    return respond(KeyList(items=[key_out(key, community) for key in found]))
