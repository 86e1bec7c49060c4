"""Invitations: an admin invites a person by email; the person opens the one-time
link and chooses their own password. The link is emailed when an SMTP server is
configured, and is in the admin's answer either way (closed networks)."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from timebank import mail
from timebank.api.context import community_actor, path_uuid
from timebank.api.contract import body_of, respond
from timebank.api.registry import api
from timebank.api.schemas import (
    InvitationAccept,
    InvitationAccepted,
    InvitationCreate,
    InvitationCreated,
    InvitationList,
    InvitationOut,
)
from timebank.errors import NotFound
from timebank.keys import DIRECTORY, INVITATIONS, SETTINGS
from timebank.ledger.errors import DuplicateName

TAG = "Communities"
NO_STORE = {"Cache-Control": "no-store"}
# The front's screen where an invited person chooses their password. The token is
# in the fragment, which browsers never send: it stays out of servers' logs.
WELCOME_PATH = "/#/welcome?token="


def invitation_link(request: web.Request, token: str) -> str:
    settings = request.app[SETTINGS]
    base = settings.public_url or f"{request.scheme}://{request.host}"
    return f"{base.rstrip('/')}{WELCOME_PATH}{token}"


@api.operation(
    "POST",
    "/v1/communities/{slug}/invitations",
    tag=TAG,
    summary="Invite a person by email (admins)",
    body=InvitationCreate,
    responses={201: InvitationCreated},
    errors=("already_exists",),
)
async def create_invitation(request: web.Request) -> web.Response:
    """Adds the person as a member (unless they are one) and makes a one-time link
    with which they choose their password, emailed when SMTP is configured and in
    this answer only. Inviting again replaces the earlier link. A person who has a
    password already (a member elsewhere) is added and logs in with it: no link."""
    community, actor = await community_actor(request, request.match_info["slug"])
    actor.require_manager()
    body = body_of(request, InvitationCreate)
    invitations = request.app[INVITATIONS]
    settings = request.app[SETTINGS]
    party_id = await invitations.member_party(community.id, body.email)
    has_password = await invitations.has_password(body.email)
    if party_id is not None and has_password:
        raise DuplicateName(f"{body.email} is already a member of this community")
    if party_id is None:
        member = await request.app[DIRECTORY].create_member(
            community.id,
            email=body.email,
            display_name=body.display_name,
            password=None,
            role=body.role,
        )
        party_id = member.party_id
    if has_password:
        created = InvitationCreated(
            party_id=party_id,
            email=body.email,
            display_name=body.display_name,
            has_password=True,
            email_sent=False,
        )
        return respond(created, 201, **NO_STORE)
    invitation, token = await invitations.create(
        community.id, party_id, ttl_s=settings.invitation_ttl_s
    )
    link = invitation_link(request, token)
    message = mail.invitation_message(
        settings,
        to=invitation.email,
        display_name=invitation.display_name,
        community_name=community.name,
        link=link,
    )
    created = InvitationCreated(
        party_id=party_id,
        email=invitation.email,
        display_name=invitation.display_name,
        has_password=False,
        invitation=invitation.id,
        expires_at=invitation.expires_at,
        link=link,
        email_sent=await mail.send(settings, message),
    )
    return respond(created, 201, **NO_STORE)


@api.operation(
    "GET",
    "/v1/communities/{slug}/invitations",
    tag=TAG,
    summary="The latest invitations (admins)",
    responses={200: InvitationList},
)
async def list_invitations(request: web.Request) -> web.Response:
    """Newest first, with their state (pending, used, revoked, expired); never
    their links."""
    community, actor = await community_actor(request, request.match_info["slug"])
    actor.require_manager()
    now = datetime.now(UTC)
    items = [
        InvitationOut(
            id=invitation.id,
            party_id=invitation.party_id,
            email=invitation.email,
            display_name=invitation.display_name,
            created_at=invitation.created_at,
            expires_at=invitation.expires_at,
            state=invitation.state(now).value,
        )
        for invitation in await request.app[INVITATIONS].invitations(community.id)
    ]
    return respond(InvitationList(items=items))


@api.operation(
    "DELETE",
    "/v1/communities/{slug}/invitations/{invitation_id}",
    tag=TAG,
    summary="Revoke a pending invitation (admins)",
    responses={204: None},
)
async def revoke_invitation(request: web.Request) -> web.Response:
    """Its link stops working at once; 404 for one that is used or revoked already."""
    community, actor = await community_actor(request, request.match_info["slug"])
    actor.require_manager()
    invitation_id = path_uuid(request, "invitation_id")
    if not await request.app[INVITATIONS].revoke(community.id, invitation_id):
        raise NotFound("no pending invitation by this id", invitation_id=str(invitation_id))
    return web.Response(status=204)


@api.operation(
    "POST",
    "/v1/invitations/accept",
    tag=TAG,
    summary="Choose a password with an invitation's token",
    body=InvitationAccept,
    responses={200: InvitationAccepted},
    errors=("invitation_invalid", "validation_error"),
    public=True,
)
async def accept_invitation(request: web.Request) -> web.Response:
    """Sets the invited person's password and spends the token (once: a second
    use, or a revoked or expired token, is invitation_invalid). They then log in
    at /v1/auth/token with the email in the answer."""
    body = body_of(request, InvitationAccept)
    accepted = await request.app[INVITATIONS].accept(body.token, body.password)
    return respond(InvitationAccepted(email=accepted.email), 200, **NO_STORE)
