"""Logins, tokens and sessions over HTTP (OAuth 2.0 token endpoint)."""

from __future__ import annotations

import base64
import json
import secrets
import stat
import uuid

import jwt
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.api.conftest import ApiClient
from timebank.app import create_app, signing_keys_directory
from timebank.auth.service import IdentityService
from timebank.auth.signing_keys import KeyRing
from timebank.keys import DATABASE_POOL, IDENTITIES
from timebank.settings import Settings

PASSWORD = "a correct horse battery"


async def new_operator(api: ApiClient) -> str:
    email = f"op-{secrets.token_hex(4)}@example.org"
    identities: IdentityService = api.app[IDENTITIES]
    assert await identities.create_operator(email, PASSWORD, "Operator")
    assert not await identities.create_operator(email, "another password!", "Again")
    return email


async def login(
    api: ApiClient, email: str, password: str = PASSWORD, *, form: bool = True
) -> ClientResponse:
    fields = {"grant_type": "password", "username": email, "password": password}
    if form:
        return await api.post("/v1/auth/token", data=fields)
    return await api.post("/v1/auth/token", json=fields)


async def test_password_login_gives_a_signed_access_token_and_a_refresh_token(
    api: ApiClient, api_settings: Settings
) -> None:
    """A right email and password answer Bearer tokens; the access token verifies
    with the published keys and names the person."""
    email = await new_operator(api)
    response = await login(api, email)
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = await response.json()
    assert (body["token_type"], body["expires_in"]) == ("Bearer", api_settings.access_token_ttl_s)
    jwks = await (await api.get("/.well-known/jwks.json")).json()
    header = jwt.get_unverified_header(body["access_token"])
    (key,) = [key for key in jwks["keys"] if key["kid"] == header["kid"]]
    public_key = jwt.PyJWK(key).key
    claims = jwt.decode(
        body["access_token"], public_key, algorithms=["EdDSA"], audience=api_settings.token_audience
    )
    assert claims["operator"] is True
    assert claims["exp"] - claims["iat"] == api_settings.access_token_ttl_s


async def test_json_bodies_are_accepted_too(api: ApiClient) -> None:
    """The token endpoint takes RFC 6749 forms and JSON alike."""
    email = await new_operator(api)
    assert (await login(api, email, form=False)).status == 200


async def test_a_wrong_password_and_an_unknown_email_answer_alike(api: ApiClient) -> None:
    """The answer never reveals whether an email exists."""
    email = await new_operator(api)
    wrong = await login(api, email, "not the password at all")
    unknown = await login(api, f"nobody-{secrets.token_hex(4)}@example.org")
    assert wrong.status == unknown.status == 401
    wrong_body, unknown_body = (
        await wrong.json(content_type=None),
        await unknown.json(content_type=None),
    )
    for body in (wrong_body, unknown_body):
        body.pop("request_id", None)
    assert wrong_body == unknown_body
    assert wrong_body["code"] == "unauthenticated"
    assert wrong_body["error"] == "invalid_grant"


async def test_repeated_failures_are_throttled_per_account(api: ApiClient) -> None:
    """After the allowed failures, even the right password waits (429, Retry-After)."""
    email = await new_operator(api)
    for _ in range(3):
        assert (await login(api, email, "wrong password here")).status == 401
    throttled = await login(api, email)
    assert throttled.status == 429
    assert (await throttled.json(content_type=None))["code"] == "rate_limited"
    assert int(throttled.headers["Retry-After"]) > 0


async def test_refresh_tokens_rotate_and_reuse_revokes_the_family(api: ApiClient) -> None:
    """A refresh token works once; used again, it and every later token of the
    session stop working."""
    email = await new_operator(api)
    first = await (await login(api, email)).json()
    refreshed = await api.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
    )
    assert refreshed.status == 200
    second = await refreshed.json()
    assert second["refresh_token"] != first["refresh_token"]
    reuse = await api.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
    )
    assert reuse.status == 401
    after_reuse = await api.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": second["refresh_token"]},
    )
    assert after_reuse.status == 401


async def test_logout_revokes_the_session(api: ApiClient) -> None:
    """After logout the refresh token no longer works; logout of anything is 204."""
    email = await new_operator(api)
    tokens = await (await login(api, email)).json()
    assert (
        await api.post("/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    ).status == 204
    refused = await api.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert refused.status == 401
    assert (await api.post("/v1/auth/logout", json={"refresh_token": "unknown"})).status == 204


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"grant_type": "client_magic"},
        {"grant_type": "password", "username": "x@example.org"},
        {"grant_type": "refresh_token"},
    ],
)
async def test_malformed_token_requests_are_validation_errors(
    api: ApiClient, fields: dict[str, str]
) -> None:
    """A missing field or an unknown grant is 422 validation_error naming the field."""
    response = await api.post("/v1/auth/token", data=fields)
    body = await response.json(content_type=None)
    assert (response.status, body["code"]) == (422, "validation_error")
    assert "field" in body


async def test_signing_keys_are_private_files_in_the_data_directory(
    api: ApiClient, api_settings: Settings
) -> None:
    """The first start wrote the key with mode 0600; the JWKS publishes its public half."""
    directory = signing_keys_directory(api_settings)
    (key_file,) = directory.iterdir()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    ring = KeyRing.load_or_create(directory)
    jwks = await (await api.get("/.well-known/jwks.json")).json()
    assert [key["kid"] for key in jwks["keys"]] == [ring.signing_key.key_id]


async def test_me_answers_the_person_behind_a_bearer_token(api: ApiClient) -> None:
    """GET /v1/me with a valid access token names the person and their memberships."""
    email = await new_operator(api)
    tokens = await (await login(api, email)).json()
    response = await api.get(
        "/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert response.status == 200
    body = await response.json()
    assert (body["email"], body["is_operator"], body["memberships"]) == (email, True, [])


@pytest.mark.parametrize(
    "authorization",
    [None, "Basic dXNlcjpwYXNz", "Bearer not-a-token", "Bearer "],
    ids=["missing", "basic", "garbage", "empty"],
)
async def test_me_without_a_valid_token_is_unauthenticated(
    api: ApiClient, authorization: str | None
) -> None:
    """No token, another scheme or a bad token: 401 unauthenticated with a Bearer
    challenge (RFC 6750)."""
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = await api.get("/v1/me", headers=headers)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await response.json(content_type=None))["code"] == "unauthenticated"


async def test_an_expired_access_token_is_refused(api: ApiClient, api_settings: Settings) -> None:
    """A token past its expiry (beyond the allowed clock skew) no longer opens /v1/me."""
    email = await new_operator(api)
    tokens = await (await login(api, email)).json()
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    ring = KeyRing.load_or_create(signing_keys_directory(api_settings))
    expired = ring.sign({**claims, "iat": claims["iat"] - 7200, "exp": claims["iat"] - 3600})
    response = await api.get("/v1/me", headers={"Authorization": f"Bearer {expired}"})
    assert response.status == 401


def forged_tokens(genuine: str, ring: KeyRing) -> dict[str, str]:
    """Tokens made from a genuine one's claims that must open nothing."""
    claims = jwt.decode(genuine, options={"verify_signature": False})
    kid = jwt.get_unverified_header(genuine)["kid"]
    header, _, signature = genuine.split(".")
    raised = {**claims, "operator": True, "sub": str(uuid.uuid4())}
    payload = base64.urlsafe_b64encode(json.dumps(raised).encode()).rstrip(b"=").decode()
    return {
        "alg_none": jwt.encode(claims, key="", algorithm="none", headers={"kid": kid}),
        "other_key": jwt.encode(
            claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": kid}
        ),
        "wrong_audience": ring.sign({**claims, "aud": "another-service"}),
        "wrong_issuer": ring.sign({**claims, "iss": "https://evil.example"}),
        "payload_changed": f"{header}.{payload}.{signature}",
        "unknown_key_id": jwt.encode(
            claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": "nobody"}
        ),
    }


async def test_forged_access_tokens_open_nothing(api: ApiClient, api_settings: Settings) -> None:
    """Over HTTP, from a genuine token's claims: `alg: none`, another key's
    signature under our key id or an unknown one, another audience or issuer, and
    claims changed under the genuine signature (made an operator) are all 401
    unauthenticated, while the genuine token opens /v1/me."""
    tokens = await (await login(api, await new_operator(api))).json()
    genuine = tokens["access_token"]
    assert (await api.get("/v1/me", headers={"Authorization": f"Bearer {genuine}"})).status == 200
    ring = KeyRing.load_or_create(signing_keys_directory(api_settings))
    for name, token in forged_tokens(genuine, ring).items():
        response = await api.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
        body = await response.json(content_type=None)
        assert (response.status, body["code"]) == (401, "unauthenticated"), name


async def test_failures_over_many_accounts_are_throttled_per_address(
    api_settings: Settings,
) -> None:
    """Guessing across many emails from one address (credential stuffing) meets the
    per-address limit: after it, even a right password from there waits (429)."""
    settings = api_settings.model_copy(update={"login_failures_per_address_max": 4})
    async with TestClient(TestServer(create_app(settings))) as client:
        email = await new_operator(client)
        # Every test's client calls from this address: start it, and leave it, clean.
        forget_address = "DELETE FROM login_failures WHERE key = 'address:127.0.0.1'"
        await client.app[DATABASE_POOL].execute(forget_address)
        for _ in range(4):
            guess = f"nobody-{secrets.token_hex(4)}@example.org"
            assert (await login(client, guess, "a guessed password")).status == 401
        throttled = await login(client, email)
        assert throttled.status == 429
        assert (await throttled.json(content_type=None))["code"] == "rate_limited"
        await client.app[DATABASE_POOL].execute(forget_address)
