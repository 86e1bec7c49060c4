"""A euro-backed local currency over HTTP: an exchange office issues it against
euros, a business reconverts it less the association's fee, and at every step
the currency in circulation equals the euro reserve plus the fees recorded; no
plain transaction may move it in or out of circulation."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from tests.api.conftest import ApiClient
from tests.api.test_pools import balance, log_replays
from tests.api.world import GREEN, Person, World, add_member, expect


@dataclass
class Bank:
    world: World
    office: str
    business: str
    business_green: str
    cashier: Person  # agent of the exchange office
    baker: Person  # agent of the business

    @property
    def path(self) -> str:
        return f"/v1/communities/{self.world.slug}/currencies/{GREEN}"


async def organization(api: ApiClient, world: World, name: str, kind: str, agent: Person) -> Any:
    created = await expect(
        await api.post(
            f"/v1/communities/{world.slug}/organizations",
            json={"name": name, "kind": kind},
            headers=world.admin.auth,
        ),
        201,
    )
    await expect(
        await api.post(
            f"/v1/communities/{world.slug}/organizations/{created['id']}/agents",
            json={"member": str(agent.party_id)},
            headers=world.admin.auth,
        ),
        200,
    )
    return created


@pytest.fixture
async def bank(api: ApiClient, world: World) -> Bank:
    cashier = await add_member(api, world.slug, world.admin, "Cashier", "member")
    baker = await add_member(api, world.slug, world.admin, "Baker", "member")
    office = await organization(api, world, "Bureau de change", "association", cashier)
    business = await organization(api, world, "Boulangerie", "business", baker)
    (green,) = [ref["id"] for ref in business["accounts"] if ref["unit"] == GREEN]
    bank = Bank(world, office["id"], business["id"], green, cashier, baker)
    await expect(
        await api.put(
            bank.path,
            json={"reconversion_fee_bps": 500, "offices": [office["id"]]},
            headers=world.admin.auth,
        ),
        200,
    )
    return bank


async def issue(api: ApiClient, bank: Bank, to: str, amount: int, **extra: Any) -> Any:
    body = {"id": str(uuid.uuid4()), "office": bank.office, "to": to, "amount": amount, **extra}
    return await api.post(f"{bank.path}/issuances", json=body, headers=bank.cashier.auth)


async def reconvert(api: ApiClient, bank: Bank, amount: int, by: Person | None = None) -> Any:
    body = {"id": str(uuid.uuid4()), "from": bank.business_green, "amount": amount}
    return await api.post(f"{bank.path}/reconversions", json=body, headers=(by or bank.baker).auth)


async def currency(api: ApiClient, bank: Bank) -> dict[str, Any]:
    return dict(await expect(await api.get(bank.path, headers=bank.world.alice.auth), 200))


async def test_issue_spend_and_reconvert_keep_circulation_equal_to_reserve_plus_fees(
    api: ApiClient, bank: Bank
) -> None:
    """100.00 issued to Alice; she pays the baker 40.00; the baker reconverts it:
    38.00 paid in euros, 2.00 (5%) kept by the association. Circulation 62.00 =
    reserve 60.00 + fees 2.00. Retries change nothing."""
    world = bank.world
    alice_green = str(world.alice.accounts[GREEN])
    body = {"id": str(uuid.uuid4()), "office": bank.office, "to": alice_green, "amount": 10_000}
    first = await expect(
        await api.post(f"{bank.path}/issuances", json=body, headers=bank.cashier.auth), 201
    )
    again = await expect(
        await api.post(f"{bank.path}/issuances", json=body, headers=bank.cashier.auth), 200
    )
    assert (first["reserve"], again["transaction"]) == (10_000, first["transaction"])
    await expect(
        await api.post(
            "/v1/transactions",
            json={
                "id": str(uuid.uuid4()),
                "community": world.slug,
                "unit": GREEN,
                "from": alice_green,
                "to": bank.business_green,
                "amount": 4_000,
            },
            headers=world.alice.auth,
        ),
        201,
    )
    paid = await expect(await reconvert(api, bank, 4_000), 201)
    assert (paid["euros"], paid["fee"], paid["reserve"]) == (3_800, 200, 6_000)
    state = await currency(api, bank)
    assert (state["circulation"], state["reserve"], state["fees"]) == (6_200, 6_000, 200)
    assert await balance(api, world, state["fee_account"]) == 200
    assert await balance(api, world, bank.business_green) == 0
    await log_replays(api, world)


async def test_only_offices_issue_and_only_businesses_reconvert(api: ApiClient, bank: Bank) -> None:
    world = bank.world
    alice_green = str(world.alice.accounts[GREEN])
    refused = await expect(
        await api.post(
            f"{bank.path}/issuances",
            json={"id": str(uuid.uuid4()), "office": bank.office, "to": alice_green, "amount": 1},
            headers=world.alice.auth,
        ),
        403,
    )
    assert refused["code"] == "forbidden"
    await expect(await issue(api, bank, alice_green, 500), 201)
    # Alice's own account is no business's.
    body = {"id": str(uuid.uuid4()), "from": alice_green, "amount": 100}
    await expect(
        await api.post(f"{bank.path}/reconversions", json=body, headers=world.alice.auth), 403
    )
    # Nobody but the business's agents reconverts its currency.
    await expect(await reconvert(api, bank, 1, by=world.alice), 403)
    # More than the business holds: refused by the ledger; the reserve is untouched.
    refused = await expect(await reconvert(api, bank, 1), 409)
    assert refused["code"] == "limit_exceeded"
    assert (await currency(api, bank))["reserve"] == 500
    await log_replays(api, world)


async def test_no_plain_transaction_moves_the_currency_in_or_out_of_circulation(
    api: ApiClient, bank: Bank
) -> None:
    """Not even an admin, who may move the community's accounts: the reserve
    would no longer back what circulates."""
    world = bank.world
    state = await currency(api, bank)
    refused = await expect(
        await api.post(
            "/v1/transactions",
            json={
                "id": str(uuid.uuid4()),
                "community": world.slug,
                "unit": GREEN,
                "from": state["issuance_account"],
                "to": str(world.alice.accounts[GREEN]),
                "amount": 100,
                "kind": "issuance",
            },
            headers=world.admin.auth,
        ),
        403,
    )
    assert refused["code"] == "forbidden"
    assert (await currency(api, bank))["circulation"] == 0


async def test_concurrent_issuances_and_reconversions_keep_the_reserve_exact(
    api: ApiClient, bank: Bank
) -> None:
    world = bank.world
    await expect(await issue(api, bank, bank.business_green, 50_000), 201)
    responses = await asyncio.gather(
        *(issue(api, bank, str(world.alice.accounts[GREEN]), 333) for _ in range(10)),
        *(reconvert(api, bank, 1_001) for _ in range(10)),
    )
    assert sorted({response.status for response in responses}) == [201]
    state = await currency(api, bank)
    # Each reconversion of 10.01 pays 9.51 and keeps 0.50 (0.5005 rounded down).
    assert state["fees"] == 10 * 50
    assert state["reserve"] == 50_000 + 10 * 333 - 10 * 1_001
    assert state["circulation"] == state["reserve"] + state["fees"]
    await log_replays(api, world)
