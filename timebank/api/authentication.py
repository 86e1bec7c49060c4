"""Who is asking: the Bearer access token of a request (RFC 6750)."""

from __future__ import annotations

from aiohttp import web

from timebank.api.middleware import PRINCIPAL
from timebank.auth.errors import Unauthenticated
from timebank.auth.service import Principal
from timebank.keys import IDENTITIES

BEARER_PREFIX = "bearer "
AUTHENTICATED = web.RequestKey("authenticated", Principal)


def authenticate(request: web.Request) -> Principal:
    """The request's principal; Unauthenticated (401) without a valid Bearer token.
    The access log names the principal from here on."""
    if AUTHENTICATED in request:
        return request[AUTHENTICATED]
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith(BEARER_PREFIX):
        raise Unauthenticated("send an access token: Authorization: Bearer <token>")
    principal = request.app[IDENTITIES].principal(header[len(BEARER_PREFIX) :].strip())
    request[PRINCIPAL] = principal.label
    request[AUTHENTICATED] = principal
    return principal
