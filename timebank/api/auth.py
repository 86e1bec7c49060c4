"""OAuth 2.0 token endpoint (RFC 6749: password and refresh_token grants, form or
JSON body), logout, and the token keys as a JWKS."""

from __future__ import annotations

import base64
import urllib.parse
from typing import Any

from aiohttp import web

from timebank.api.contract import FORM_CONTENT_TYPE, UnsupportedMediaType
from timebank.api.problems import problem
from timebank.api.registry import api
from timebank.api.schemas import Jwks, LogoutRequest, TokenRequest, TokenResponse
from timebank.auth.errors import RateLimited, Unauthenticated
from timebank.auth.service import TokenPair
from timebank.keys import IDENTITIES, SIGNING_KEYS
from timebank.ledger.errors import ValidationError

TAG = "Authentication"

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
    elif request.content_type == FORM_CONTENT_TYPE:
        body = dict(await request.post())
    else:
        raise UnsupportedMediaType(f"send the body as {FORM_CONTENT_TYPE} or application/json")
    fields: dict[str, str] = {}
    for name, value in body.items():
        if not isinstance(value, str) or len(value) > FIELD_LENGTH_MAX or "\x00" in value:
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
    body = TokenResponse(
        access_token=pair.access_token,
        token_type="Bearer",  # noqa: S106 (the OAuth token type, not a secret)
        expires_in=pair.expires_in_s,
        refresh_token=pair.refresh_token,
    )
    return web.Response(
        text=body.model_dump_json(exclude_none=True),
        content_type="application/json",
        headers=NO_STORE,
    )


def _client_credentials(request: web.Request, fields: dict[str, str]) -> tuple[str, str]:
    """The client's id and secret from HTTP Basic (RFC 6749 2.3.1) or the body."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
            client_id, _, client_secret = decoded.partition(":")
        except (ValueError, UnicodeDecodeError):
            raise ValidationError("the Basic credentials are malformed") from None
        return urllib.parse.unquote(client_id), urllib.parse.unquote(client_secret)
    return _required(fields, "client_id"), _required(fields, "client_secret")


@api.operation(
    "POST",
    "/v1/auth/token",
    tag=TAG,
    summary="Get tokens (OAuth 2.0 token endpoint)",
    body=TokenRequest,
    form_body=True,
    responses={200: TokenResponse},
    errors=("unauthenticated", "rate_limited", "validation_error"),
    public=True,
)
async def token(request: web.Request) -> web.Response:
    """RFC 6749, as a form or JSON. `password`: a person's email (as `username` or
    `email`) and password. `client_credentials`: an API client's `client_id` and
    `client_secret` (in the body or HTTP Basic); no refresh token. `refresh_token`:
    new tokens for a refresh token, which is spent (reusing it revokes the session).
    Repeated failures are throttled; a wrong email and a wrong password answer alike."""
    fields = await _fields(request)
    grant_type = _required(fields, "grant_type")
    identities = request.app[IDENTITIES]
    try:
        if grant_type == "client_credentials":
            client_id, client_secret = _client_credentials(request, fields)
            pair = await identities.client_login(client_id, client_secret)
        elif grant_type == "password":
            email = fields.get("username") or _required(fields, "email")
            pair = await identities.login(
                email, _required(fields, "password"), request.remote or "unknown"
            )
        elif grant_type == "refresh_token":
            pair = await identities.refresh(_required(fields, "refresh_token"))
        else:
            raise ValidationError(
                "grant_type is password, client_credentials or refresh_token",
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


@api.operation(
    "POST",
    "/v1/auth/logout",
    tag=TAG,
    summary="End a session",
    body=LogoutRequest,
    form_body=True,
    responses={204: None},
    errors=("validation_error",),
    public=True,
)
async def logout(request: web.Request) -> web.Response:
    """Revokes the session of the given refresh token; 204 whatever it was."""
    fields = await _fields(request)
    await request.app[IDENTITIES].logout(_required(fields, "refresh_token"))
    return web.Response(status=204)


@api.operation(
    "GET",
    "/.well-known/jwks.json",
    tag=TAG,
    summary="The keys that verify access tokens (JWKS)",
    responses={200: Jwks},
    public=True,
)
async def jwks(request: web.Request) -> web.Response:
    """The public keys that verify access tokens, by key id."""
    return web.json_response(
        request.app[SIGNING_KEYS].jwks(), headers={"Cache-Control": "max-age=300"}
    )
