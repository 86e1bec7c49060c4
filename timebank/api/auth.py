"""OAuth 2.0 token endpoint (RFC 6749: password and refresh_token grants, form or
JSON body), logout, and the token keys as a JWKS."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from timebank.api.problems import problem
from timebank.auth.errors import RateLimited, Unauthenticated
from timebank.auth.service import TokenPair
from timebank.keys import IDENTITIES, SIGNING_KEYS
from timebank.ledger.errors import ValidationError

routes = web.RouteTableDef()

FIELD_LENGTH_MAX = 1024
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


async def _fields(request: web.Request) -> dict[str, str]:
    """The body's fields, from a form (RFC 6749) or a JSON object; strings only."""
    if request.content_type == "application/json":
        try:
            body: Any = await request.json()
        except ValueError as error:
            raise ValidationError("the body is not valid JSON") from error
        if not isinstance(body, dict):
            raise ValidationError("the body must be a JSON object")
    else:
        body = dict(await request.post())
    fields: dict[str, str] = {}
    for name, value in body.items():
        if not isinstance(value, str) or len(value) > FIELD_LENGTH_MAX:
            raise ValidationError(
                f"{name} must be a string of at most {FIELD_LENGTH_MAX} characters", field=name
            )
        fields[name] = value
    return fields


def _required(fields: dict[str, str], name: str) -> str:
    value = fields.get(name, "")
    if not value:
        raise ValidationError(f"{name} is required", field=name)
    return value


def _token_response(pair: TokenPair) -> web.Response:
    return web.json_response(
        {
            "access_token": pair.access_token,
            "token_type": "Bearer",
            "expires_in": pair.expires_in_s,
            "refresh_token": pair.refresh_token,
        },
        headers=NO_STORE,
    )


@routes.post("/v1/auth/token")
async def token(request: web.Request) -> web.Response:
    """Tokens for a person (grant_type=password with username or email, and password)
    or new tokens for a refresh token (grant_type=refresh_token)."""
    fields = await _fields(request)
    grant_type = _required(fields, "grant_type")
    identities = request.app[IDENTITIES]
    try:
        if grant_type == "password":
            email = fields.get("username") or _required(fields, "email")
            pair = await identities.login(
                email, _required(fields, "password"), request.remote or "unknown"
            )
        elif grant_type == "refresh_token":
            pair = await identities.refresh(_required(fields, "refresh_token"))
        else:
            raise ValidationError(
                "grant_type is password or refresh_token",
                field="grant_type",
                error="unsupported_grant_type",
            )
    except RateLimited as error:
        return problem(
            error.code,
            error.title,
            error.detail,
            extensions={"error": "invalid_grant"},
            headers={"Retry-After": str(error.context["retry_after_s"]), **NO_STORE},
        )
    except Unauthenticated as error:
        # RFC 6749's error member beside our code, for OAuth clients.
        return problem(
            error.code,
            error.title,
            error.detail,
            extensions={"error": "invalid_grant"},
            headers=NO_STORE,
        )
    return _token_response(pair)


@routes.post("/v1/auth/logout")
async def logout(request: web.Request) -> web.Response:
    """Revokes the session of the given refresh token; 204 whatever it was."""
    fields = await _fields(request)
    await request.app[IDENTITIES].logout(_required(fields, "refresh_token"))
    return web.Response(status=204)


@routes.get("/.well-known/jwks.json")
async def jwks(request: web.Request) -> web.Response:
    """The public keys that verify access tokens, by key id."""
    return web.json_response(
        request.app[SIGNING_KEYS].jwks(), headers={"Cache-Control": "max-age=300"}
    )
