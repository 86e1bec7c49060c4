"""A community set up through the API itself: an operator, a community with hours
and a currency, an admin, a treasurer, two members and an organization, each with
an access token."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from timebank.keys import IDENTITIES

ApiClient = TestClient[web.Request, web.Application]
PASSWORD = "a correct horse battery"
HOURS = "HOUR"
GREEN = "GREEN"


@dataclass
class Person:
    email: str
    token: str
    party_id: uuid.UUID | None = None
    accounts: dict[str, uuid.UUID] = field(default_factory=dict)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class World:
    slug: str
    operator: Person
    admin: Person
    treasurer: Person
    alice: Person
    bob: Person
    organization_id: uuid.UUID
    organization_accounts: dict[str, uuid.UUID]


async def token_for(api: ApiClient, email: str, password: str = PASSWORD) -> str:
    response = await api.post(
        "/v1/auth/token", data={"grant_type": "password", "username": email, "password": password}
    )
    assert response.status == 200, await response.text()
    token: str = (await response.json())["access_token"]
    return token


async def expect(response: Any, status: int) -> Any:
    """The JSON body of a response that must have this status."""
    text = await response.text()
    assert response.status == status, f"{response.status} (wanted {status}): {text}"
    return await response.json(content_type=None) if text else None


async def new_operator(api: ApiClient) -> Person:
    email = f"op-{secrets.token_hex(4)}@example.org"
    assert await api.app[IDENTITIES].create_operator(email, PASSWORD, "Operator")
    return Person(email, await token_for(api, email))


async def add_member(api: ApiClient, slug: str, by: Person, name: str, role: str) -> Person:
    email = f"{name.lower()}-{secrets.token_hex(4)}@example.org"
    body = await expect(
        await api.post(
            f"/v1/communities/{slug}/members",
            json={"email": email, "display_name": name, "password": PASSWORD, "role": role},
            headers=by.auth,
        ),
        201,
    )
    person = Person(email, await token_for(api, email), uuid.UUID(body["party_id"]))
    person.accounts = {ref["unit"]: uuid.UUID(ref["id"]) for ref in body["accounts"]}
    return person


async def build_world(api: ApiClient) -> World:
    operator = await new_operator(api)
    slug = f"w-{secrets.token_hex(4)}"
    await expect(
        await api.post(
            "/v1/communities", json={"slug": slug, "name": "Test town"}, headers=operator.auth
        ),
        201,
    )
    for unit in (
        {
            "code": HOURS,
            "name": "Hours",
            "kind": "time",
            "default_min_balance": -600,
            "default_max_balance": 6000,
        },
        {
            "code": GREEN,
            "name": "Green",
            "kind": "currency",
            "decimals": 2,
            "default_min_balance": 0,
            "default_max_balance": 1_000_000,
        },
    ):
        await expect(
            await api.post(f"/v1/communities/{slug}/units", json=unit, headers=operator.auth), 201
        )
    admin = await add_member(api, slug, operator, "Admin", "admin")
    treasurer = await add_member(api, slug, admin, "Treasurer", "treasurer")
    alice = await add_member(api, slug, admin, "Alice", "member")
    bob = await add_member(api, slug, admin, "Bob", "member")
    organization = await expect(
        await api.post(
            f"/v1/communities/{slug}/organizations",
            json={"name": "Repair cafe", "kind": "association"},
            headers=admin.auth,
        ),
        201,
    )
    return World(
        slug=slug,
        operator=operator,
        admin=admin,
        treasurer=treasurer,
        alice=alice,
        bob=bob,
        organization_id=uuid.UUID(organization["id"]),
        organization_accounts={
            ref["unit"]: uuid.UUID(ref["id"]) for ref in organization["accounts"]
        },
    )


def transfer(
    world: World, payer: Person, payee: Person, amount: int, **extra: Any
) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "community": world.slug,
        "unit": HOURS,
        "from": str(payer.accounts[HOURS]),
        "to": str(payee.accounts[HOURS]),
        "amount": amount,
        **extra,
    }
