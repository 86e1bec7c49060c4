"""Invitations: a one-time link (token kept hashed, expiring, used once,
revocable) with which an invited person chooses their password; emailed through
SMTP when configured, always in the admin's answer."""

from __future__ import annotations

import email
import secrets
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email.message import Message
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.api.conftest import ApiClient
from tests.api.world import PASSWORD, World, build_world, expect, new_operator, token_for
from timebank.app import create_app
from timebank.auth.invitations import token_hash
from timebank.keys import DATABASE_POOL
from timebank.settings import Settings

NEW_PASSWORD = "a garden of forty tomatoes"


def invite_body(name: str = "Jeanne Martin", **extra: Any) -> dict[str, Any]:
    """People are shared by the session's communities: a new email each time."""
    email_address = f"{name.split()[0].lower()}-{secrets.token_hex(4)}@example.org"
    return {"email": email_address, "display_name": name, **extra}


async def invite(api: ApiClient, world: World, body: dict[str, Any]) -> Any:
    return await expect(
        await api.post(
            f"/v1/communities/{world.slug}/invitations", json=body, headers=world.admin.auth
        ),
        201,
    )


def token_of(link: str) -> str:
    fragment = urlsplit(link).fragment
    assert fragment.startswith("/welcome?token=")
    return fragment.removeprefix("/welcome?token=")


async def accept(api: ApiClient, token: str, status: int, password: str = NEW_PASSWORD) -> Any:
    return await expect(
        await api.post("/v1/invitations/accept", json={"token": token, "password": password}),
        status,
    )


async def listed(api: ApiClient, world: World) -> list[tuple[str, str]]:
    page = await expect(
        await api.get(f"/v1/communities/{world.slug}/invitations", headers=world.admin.auth), 200
    )
    return [(item["email"], item["state"]) for item in page["items"]]


async def test_the_link_sets_the_invited_persons_password_once(
    api: ApiClient, world: World
) -> None:
    """The admin's answer holds the link (no SMTP here: not emailed); only the
    token's hash is stored; the link sets the password once, with which the person
    logs in as a member; a second use is invitation_invalid and changes nothing."""
    body = invite_body()
    created = await invite(api, world, body)
    assert (created["has_password"], created["email_sent"]) == (False, False)
    assert created["link"].startswith(f"http://127.0.0.1:{api.port}/#/welcome?token=")
    token = token_of(created["link"])
    async with api.app[DATABASE_POOL].acquire() as connection:
        stored = await connection.fetchval(
            "SELECT token_hash FROM invitations WHERE id = $1", created["invitation"]
        )
    assert bytes(stored) == token_hash(token)
    assert await listed(api, world) == [(body["email"], "pending")]
    refused = await accept(api, token, 422, password="short")
    assert refused["code"] == "validation_error"
    # The token names its community; the same secret under another one is nothing.
    community, _, secret = token.partition(".")
    assert uuid.UUID(community)
    elsewhere = await accept(api, f"{uuid.uuid4()}.{secret}", 422)
    assert elsewhere["code"] == "invitation_invalid"
    accepted = await accept(api, token, 200)
    assert accepted == {"email": body["email"]}
    jeanne = {"Authorization": f"Bearer {await token_for(api, body['email'], NEW_PASSWORD)}"}
    me = await expect(await api.get("/v1/me", headers=jeanne), 200)
    assert [(m["community"], m["role"]) for m in me["memberships"]] == [(world.slug, "member")]
    again = await accept(api, token, 422, password="another long password")
    assert again["code"] == "invitation_invalid"
    await token_for(api, body["email"], NEW_PASSWORD)
    assert await listed(api, world) == [(body["email"], "used")]


async def test_a_revoked_a_replaced_or_an_expired_link_does_not_work(
    api: ApiClient, world: World
) -> None:
    """Inviting again replaces the earlier link (revoked); an admin revokes a link
    (once: then 404); an expired one is refused alike; none sets a password."""
    body = invite_body()
    first = await invite(api, world, body)
    second = await invite(api, world, body)
    assert second["party_id"] == first["party_id"]
    assert (await accept(api, token_of(first["link"]), 422))["code"] == "invitation_invalid"
    path = f"/v1/communities/{world.slug}/invitations/{second['invitation']}"
    await expect(await api.delete(path, headers=world.admin.auth), 204)
    await expect(await api.delete(path, headers=world.admin.auth), 404)
    assert (await accept(api, token_of(second["link"]), 422))["code"] == "invitation_invalid"
    third = await invite(api, world, body)
    async with api.app[DATABASE_POOL].acquire() as connection:
        await connection.execute(
            "UPDATE invitations SET created_at = created_at - interval '30 days',"
            " expires_at = now() - interval '1 second' WHERE id = $1",
            third["invitation"],
        )
    assert (await accept(api, token_of(third["link"]), 422))["code"] == "invitation_invalid"
    assert sorted(state for _, state in await listed(api, world)) == [
        "expired",
        "revoked",
        "revoked",
    ]
    response = await api.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": body["email"], "password": PASSWORD},
    )
    assert response.status == 401


async def test_a_person_with_a_password_is_added_without_a_link(
    api: ApiClient, world: World
) -> None:
    """Someone who has a password already (here, an operator) joins and logs in
    with it: no link, which an admin could otherwise use to change their password;
    inviting a member who has a password is already_exists."""
    operator = await new_operator(api)
    created = await invite(api, world, {"email": operator.email, "display_name": "Op"})
    assert (created["has_password"], created["link"], created["invitation"]) == (True, None, None)
    refused = await expect(
        await api.post(
            f"/v1/communities/{world.slug}/invitations",
            json={"email": operator.email, "display_name": "Op"},
            headers=world.admin.auth,
        ),
        409,
    )
    assert refused["code"] == "already_exists"
    assert await listed(api, world) == []


@dataclass
class Inbox:
    """What the test's SMTP server received."""

    port: int
    messages: list[tuple[str, list[str], Message]] = field(default_factory=list)

    async def handle_DATA(  # noqa: N802 (the name aiosmtpd calls)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        content = envelope.content
        assert isinstance(content, bytes)
        assert envelope.mail_from is not None
        self.messages.append(
            (envelope.mail_from, list(envelope.rcpt_tos), email.message_from_bytes(content))
        )
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    """A small SMTP server on loopback, started by this test."""
    received = Inbox(port=free_port())
    controller = Controller(received, hostname="127.0.0.1", port=received.port)
    controller.start()
    try:
        yield received
    finally:
        controller.stop()


@pytest.fixture
async def api_with_smtp(api_settings: Settings, inbox: Inbox) -> AsyncIterator[ApiClient]:
    settings = api_settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": inbox.port,
            "smtp_starttls": False,
            "smtp_from": "sel@example.org",
            "public_url": "https://sel.example.org/",
        }
    )
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client


async def test_the_link_is_emailed_through_smtp_when_configured(
    api_with_smtp: ApiClient, inbox: Inbox
) -> None:
    """One email to the invited person, from the configured sender, in French and
    English, holding the link on the public address; that link works."""
    world = await build_world(api_with_smtp)
    body = invite_body("Paul Durand")
    created = await invite(api_with_smtp, world, body)
    assert created["email_sent"] is True
    assert created["link"].startswith("https://sel.example.org/#/welcome?token=")
    [(sender, recipients, message)] = inbox.messages
    assert (sender, recipients) == ("sel@example.org", [body["email"]])
    assert message["To"] == body["email"]
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    text = payload.decode(message.get_content_charset() or "utf-8")
    assert "Bonjour Paul Durand" in text
    assert "Hello Paul Durand" in text
    assert created["link"] in text.splitlines()
    await accept(api_with_smtp, token_of(created["link"]), 200)
