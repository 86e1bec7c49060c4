"""What every handler needs: the caller's principal and actor in a community,
path parameters, and opaque keyset cursors."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from timebank.api.authentication import authenticate
from timebank.api.schemas import OwnerOut
from timebank.auth.access import Actor
from timebank.errors import NotFound
from timebank.keys import DIRECTORY
from timebank.ledger.errors import UnknownCommunity, ValidationError
from timebank.ledger.models import Community


async def community_actor(request: web.Request, slug: str) -> tuple[Community, Actor]:
    """The community of this slug and the caller's standing in it."""
    principal = authenticate(request)
    try:
        return await request.app[DIRECTORY].actor(principal, slug=slug)
    except UnknownCommunity:
        raise NotFound(f"no community {slug!r}") from None


async def named_community_actor(request: web.Request, slug: str) -> tuple[Community, Actor]:
    """As community_actor, for a community named in the body: unknown_community (422)."""
    principal = authenticate(request)
    return await request.app[DIRECTORY].actor(principal, slug=slug)


async def owners_out(
    request: web.Request, community_id: uuid.UUID, owner_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, OwnerOut]:
    """Each of these parties of the community as an account's owner is shown: its
    kind and display name."""
    parties = await request.app[DIRECTORY].parties(community_id, list(set(owner_ids)))
    return {
        party_id: OwnerOut(id=party_id, kind=kind, display_name=display_name)
        for party_id, (kind, display_name) in parties.items()
    }


async def actor_by_id(request: web.Request, community_id: uuid.UUID) -> tuple[Community, Actor]:
    principal = authenticate(request)
    return await request.app[DIRECTORY].actor(principal, community_id=community_id)


def path_uuid(request: web.Request, name: str = "id") -> uuid.UUID:
    """A path parameter that must be a UUID; anything else names nothing (404)."""
    try:
        return uuid.UUID(request.match_info[name])
    except ValueError:
        raise NotFound(f"{request.match_info[name]!r} is not an id") from None


def encode_cursor(*values: Any) -> str:
    """An opaque cursor: the keyset of the last item of a page."""
    raw = json.dumps([str(value) for value in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str, count: int) -> list[str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationError("the cursor is not one this service gave", field="cursor") from None
    if not isinstance(values, list) or len(values) != count:
        raise ValidationError("the cursor is not one this service gave", field="cursor")
    return [str(value) for value in values]


def cursor_uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ValidationError("the cursor is not one this service gave", field="cursor") from None
