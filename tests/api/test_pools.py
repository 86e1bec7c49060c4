"""Solidarity pools and levies over HTTP: a pool with a charter, donations in,
requests approved by k of n managers and paid once, caps and eligibility judged
at payment, a public statement that keeps beneficiaries private, and levies taken
on exchanges with exact figures; every step in the log, which replays."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from tests.api.conftest import ApiClient
from tests.api.test_signatures import (
    DeviceKey,
    confirming_intent,
    origin_of,
    register,
    signed_transfer,
)
from tests.api.world import HOURS, Person, World, add_member, expect, transfer
from timebank.keys import DATABASE_POOL
from timebank.ledger.invariants import check_invariants
from timebank.log.audit import check_logs
from timebank.policies.invariants import ALL_INVARIANT_QUERIES
from timebank.signing import intents


@dataclass
class PoolScene:
    world: World
    carol: Person
    dave: Person
    pool_id: str
    pool_account: str

    @property
    def path(self) -> str:
        return f"/v1/communities/{self.world.slug}/pools/{self.pool_id}"


def charter(
    world: World,
    managers: list[Person],
    *,
    eligible_at_or_below: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "purpose": "Hours for members who cannot give back yet",
        "managers": [str(manager.party_id) for manager in managers],
        "approvals_required": 2,
        "period_days": 30,
        "units": [
            {
                "unit": HOURS,
                "grant_max": 120,
                "beneficiary_period_max": 180,
                "eligible_at_or_below": eligible_at_or_below,
            }
        ],
        **extra,
    }


@pytest.fixture
async def scene(api: ApiClient, world: World) -> PoolScene:
    """Alice, Bob and Carol manage a pool (2 of 3); Dave may be helped."""
    carol = await add_member(api, world.slug, world.admin, "Carol", "member")
    dave = await add_member(api, world.slug, world.admin, "Dave", "member")
    pool = await expect(
        await api.post(
            f"/v1/communities/{world.slug}/pools",
            json={"name": "Fonds de solidarité", **charter(world, [world.alice, world.bob, carol])},
            headers=world.admin.auth,
        ),
        201,
    )
    return PoolScene(world, carol, dave, pool["id"], pool["units"][0]["account"])


async def donate(api: ApiClient, scene: PoolScene, donor: Person, amount: int) -> dict[str, Any]:
    body = {
        "id": str(uuid.uuid4()),
        "from": str(donor.accounts[HOURS]),
        "unit": HOURS,
        "amount": amount,
    }
    return dict(
        await expect(await api.post(f"{scene.path}/donations", json=body, headers=donor.auth), 201)
    )


async def ask(api: ApiClient, scene: PoolScene, amount: int, reason: str = "") -> dict[str, Any]:
    body = {"id": str(uuid.uuid4()), "unit": HOURS, "amount": amount, "reason": reason}
    return dict(
        await expect(
            await api.post(f"{scene.path}/requests", json=body, headers=scene.dave.auth), 201
        )
    )


async def decide(
    api: ApiClient, scene: PoolScene, request_id: str, manager: Person, decision: str
) -> Any:
    return await api.post(
        f"{scene.path}/requests/{request_id}/decisions",
        json={"decision": decision},
        headers=manager.auth,
    )


async def balance(api: ApiClient, world: World, account: str) -> int:
    body = await expect(await api.get(f"/v1/accounts/{account}", headers=world.admin.auth), 200)
    return int(body["balance"])


async def log_replays(api: ApiClient, world: World) -> None:
    """The community's log replays to the ledger, and every invariant holds."""
    async with api.app[DATABASE_POOL].acquire() as connection:
        problems = [v for v in await check_logs(connection) if v.rows[0]["community"] == world.slug]
        broken = await check_invariants(connection, ALL_INVARIANT_QUERIES)
    assert problems == []
    assert broken == []


async def test_two_of_three_managers_approve_and_the_grant_is_paid_once(
    api: ApiClient, scene: PoolScene
) -> None:
    """A donation fills the pool; the first approval leaves the request open, the
    second pays it in the same transaction; a repeated decision changes nothing;
    a manager cannot change their mind; the log replays."""
    world = scene.world
    await donate(api, scene, world.alice, 300)
    asked = await ask(api, scene, 90, "courses")
    assert asked["state"] == "open"
    first = await expect(await decide(api, scene, asked["id"], world.bob, "approve"), 200)
    assert (first["state"], first["transaction"]) == ("open", None)
    paid = await expect(await decide(api, scene, asked["id"], scene.carol, "approve"), 200)
    assert paid["state"] == "paid"
    assert [d["decision"] for d in paid["decisions"]] == ["approve", "approve"]
    assert await balance(api, world, scene.pool_account) == 300 - 90
    assert await balance(api, world, str(scene.dave.accounts[HOURS])) == 90
    again = await expect(await decide(api, scene, asked["id"], scene.carol, "approve"), 200)
    assert again == paid
    changed = await expect(await decide(api, scene, asked["id"], scene.carol, "decline"), 409)
    assert changed["code"] == "decision_conflict"
    late = await expect(await decide(api, scene, asked["id"], world.alice, "approve"), 409)
    assert late["code"] == "request_not_open"
    grant = await expect(
        await api.get(f"/v1/transactions/{paid['transaction']}", headers=scene.dave.auth), 200
    )
    assert grant["kind"] == "grant"
    await log_replays(api, world)


async def test_enough_declines_decline_the_request(api: ApiClient, scene: PoolScene) -> None:
    """With 2 of 3 required, two declines make approval impossible: declined."""
    world = scene.world
    asked = await ask(api, scene, 30)
    await expect(await decide(api, scene, asked["id"], world.alice, "decline"), 200)
    declined = await expect(await decide(api, scene, asked["id"], world.bob, "decline"), 200)
    assert declined["state"] == "declined"
    await log_replays(api, world)


async def test_only_managers_decide_and_only_the_asker_withdraws(
    api: ApiClient, scene: PoolScene
) -> None:
    world = scene.world
    asked = await ask(api, scene, 30)
    refused = await expect(await decide(api, scene, asked["id"], scene.dave, "approve"), 403)
    assert refused["code"] == "forbidden"
    path = f"{scene.path}/requests/{asked['id']}/withdraw"
    await expect(await api.post(path, headers=world.alice.auth), 403)
    withdrawn = await expect(await api.post(path, headers=scene.dave.auth), 200)
    assert withdrawn["state"] == "withdrawn"
    late = await expect(await decide(api, scene, asked["id"], world.bob, "approve"), 409)
    assert late["code"] == "request_not_open"


async def test_caps_and_eligibility_are_judged_when_the_grant_is_paid(
    api: ApiClient, scene: PoolScene
) -> None:
    """The approval that would pay above a cap, or to someone no longer eligible,
    is refused by name and nothing of it is recorded: the request stays open."""
    world = scene.world
    managers = [world.alice, world.bob, scene.carol]
    await donate(api, scene, world.alice, 500)
    big = await ask(api, scene, 121)
    await expect(await decide(api, scene, big["id"], world.alice, "approve"), 200)
    refused = await expect(await decide(api, scene, big["id"], world.bob, "approve"), 409)
    assert (refused["code"], refused["cap"]) == ("pool_cap_exceeded", "grant_max")
    still = await expect(await api.get(f"{scene.path}/requests", headers=scene.dave.auth), 200)
    assert [(r["id"], r["state"], len(r["decisions"])) for r in still["items"]] == [
        (big["id"], "open", 1)
    ]
    # The managers read who asks by name, whatever page of the directory they saw.
    assert big["beneficiary_name"] == "Dave"
    listed = await expect(await api.get(f"{scene.path}/requests", headers=world.alice.auth), 200)
    assert [r["beneficiary_name"] for r in listed["items"]] == ["Dave"]
    # 120 then 60 reach the period's 180; the next 1 is above it.
    for amount in (120, 60):
        asked = await ask(api, scene, amount)
        await expect(await decide(api, scene, asked["id"], world.alice, "approve"), 200)
        await expect(await decide(api, scene, asked["id"], world.bob, "approve"), 200)
    asked = await ask(api, scene, 1)
    await expect(await decide(api, scene, asked["id"], world.alice, "approve"), 200)
    refused = await expect(await decide(api, scene, asked["id"], world.bob, "approve"), 409)
    assert (refused["code"], refused["cap"]) == ("pool_cap_exceeded", "beneficiary_period_max")
    # Dave holds 180 minutes: above a threshold of 100, he is no longer eligible.
    await expect(
        await api.put(
            f"{scene.path}/charter",
            json=charter(world, managers, eligible_at_or_below=100),
            headers=world.admin.auth,
        ),
        200,
    )
    refused = await expect(await decide(api, scene, asked["id"], scene.carol, "approve"), 409)
    assert (refused["code"], refused["reason"]) == ("not_eligible", "balance")
    assert await balance(api, world, str(scene.dave.accounts[HOURS])) == 180
    await log_replays(api, world)


async def test_a_pool_never_goes_below_zero(api: ApiClient, scene: PoolScene) -> None:
    world = scene.world
    await donate(api, scene, world.alice, 50)
    asked = await ask(api, scene, 60)
    await expect(await decide(api, scene, asked["id"], world.alice, "approve"), 200)
    refused = await expect(await decide(api, scene, asked["id"], world.bob, "approve"), 409)
    assert (refused["code"], refused["account_id"]) == ("limit_exceeded", scene.pool_account)
    assert await balance(api, world, scene.pool_account) == 50


async def test_concurrent_last_approvals_pay_once(api: ApiClient, scene: PoolScene) -> None:
    """Three managers approve at once a request that needs two: exactly one grant
    is paid, every call answers the request as paid or with it still open."""
    world = scene.world
    await donate(api, scene, world.alice, 300)
    for _ in range(5):
        asked = await ask(api, scene, 10)
        responses = await asyncio.gather(
            *(
                decide(api, scene, asked["id"], manager, "approve")
                for manager in (world.alice, world.bob, scene.carol)
            )
        )
        answers = [await response.json() for response in responses]
        assert sorted(response.status for response in responses) in (
            [200, 200, 200],
            [200, 200, 409],
        )
        final = await expect(
            await api.get(f"{scene.path}/requests?state=paid", headers=world.admin.auth), 200
        )
        assert asked["id"] in [item["id"] for item in final["items"]]
        assert any(answer.get("state") == "paid" for answer in answers)
    assert await balance(api, world, str(scene.dave.accounts[HOURS])) == 50
    assert await balance(api, world, scene.pool_account) == 250
    await log_replays(api, world)


async def test_a_manager_grants_directly_within_caps_and_a_retry_pays_once(
    api: ApiClient, scene: PoolScene
) -> None:
    world = scene.world
    await donate(api, scene, world.alice, 300)
    body = {"id": str(uuid.uuid4()), "to": str(scene.dave.party_id), "unit": HOURS, "amount": 60}
    for _ in range(2):
        await expect(await api.post(f"{scene.path}/grants", json=body, headers=world.bob.auth), 201)
    assert await balance(api, world, str(scene.dave.accounts[HOURS])) == 60
    refused = await expect(
        await api.post(f"{scene.path}/grants", json=body, headers=scene.dave.auth), 403
    )
    assert refused["code"] == "forbidden"
    await log_replays(api, world)


async def test_referral_is_required_when_the_charter_says_so(
    api: ApiClient, scene: PoolScene
) -> None:
    """Only a referrer (a social worker) names who may be helped."""
    world = scene.world
    await expect(
        await api.put(
            f"{scene.path}/charter",
            json=charter(
                world,
                [world.alice, world.bob, scene.carol],
                referrers=[str(world.treasurer.party_id)],
                requires_referral=True,
            ),
            headers=world.admin.auth,
        ),
        200,
    )
    await donate(api, scene, world.alice, 100)
    asked = await ask(api, scene, 30)
    await expect(await decide(api, scene, asked["id"], world.alice, "approve"), 200)
    refused = await expect(await decide(api, scene, asked["id"], world.bob, "approve"), 409)
    assert (refused["code"], refused["reason"]) == ("not_eligible", "referral")
    referral = {"member": str(scene.dave.party_id)}
    await expect(
        await api.post(f"{scene.path}/referrals", json=referral, headers=world.alice.auth), 403
    )
    response = await api.post(
        f"{scene.path}/referrals", json=referral, headers=world.treasurer.auth
    )
    assert response.status == 204
    paid = await expect(await decide(api, scene, asked["id"], world.bob, "approve"), 200)
    assert paid["state"] == "paid"
    await log_replays(api, world)


async def test_the_statement_names_donors_only_when_the_charter_says_so(
    api: ApiClient, scene: PoolScene
) -> None:
    """Members see amounts and the managers' decisions; donors' names only if
    donors are shown; beneficiaries only to the pool's staff and the treasurer."""
    world = scene.world
    await donate(api, scene, world.alice, 100)
    body = {"id": str(uuid.uuid4()), "to": str(scene.dave.party_id), "unit": HOURS, "amount": 40}
    await expect(await api.post(f"{scene.path}/grants", json=body, headers=world.bob.auth), 201)
    path = f"{scene.path}/statement?unit={HOURS}"
    seen = await expect(await api.get(path, headers=scene.dave.auth), 200)
    assert seen["balance"] == 60
    assert [(line["kind"], line["amount"], line["counterparty"]) for line in seen["lines"]] == [
        ("grant", -40, None),
        ("donation", 100, None),
    ]
    staff = await expect(await api.get(path, headers=world.treasurer.auth), 200)
    assert [line["counterparty"] for line in staff["lines"]] == ["Dave", "Alice"]
    shown = charter(world, [world.alice, world.bob, scene.carol], donors_visible=True)
    await expect(await api.put(f"{scene.path}/charter", json=shown, headers=world.admin.auth), 200)
    seen = await expect(await api.get(path, headers=scene.dave.auth), 200)
    assert [line["counterparty"] for line in seen["lines"]] == [None, "Alice"]
    asked = await ask(api, scene, 20)
    for manager in (world.alice, scene.carol):
        await expect(await decide(api, scene, asked["id"], manager, "decline"), 200)
    seen = await expect(await api.get(path, headers=world.bob.auth), 200)
    assert [
        (item["request"], item["amount"], item["state"], item["approvals"], item["declines"])
        for item in seen["decisions"]
    ] == [(asked["id"], 20, "declined", 0, 2)]
    assert "beneficiary" not in seen["decisions"][0]


async def test_a_charter_that_cannot_work_is_refused(api: ApiClient, scene: PoolScene) -> None:
    world = scene.world
    body = charter(world, [world.alice], approvals_required=2)
    refused = await expect(
        await api.put(f"{scene.path}/charter", json=body, headers=world.admin.auth), 422
    )
    assert (refused["code"], refused["field"]) == ("charter_invalid", "approvals_required")
    body = charter(world, [world.alice], approvals_required=1)
    body["managers"] = [str(uuid.uuid4())]
    refused = await expect(
        await api.put(f"{scene.path}/charter", json=body, headers=world.admin.auth), 422
    )
    assert refused["code"] == "charter_invalid"


async def set_levy(api: ApiClient, scene: PoolScene, **terms: Any) -> Any:
    body = {"unit": HOURS, "pool": scene.pool_id, **terms}
    return await expect(
        await api.put(
            f"/v1/communities/{scene.world.slug}/policies/levies",
            json=body,
            headers=scene.world.admin.auth,
        ),
        200,
    )


@pytest.mark.parametrize(
    ("terms", "amount", "payer_pays", "payee_gets", "pool_gets"),
    [
        # 5% of 61 is 3.05: rounded down to 3, paid by the payer.
        ({"rate_bps": 500, "paid_by": "payer"}, 61, 64, 61, 3),
        # Paid by the payee.
        ({"rate_bps": 500, "paid_by": "payee"}, 61, 61, 58, 3),
        # Split: 3 = 2 (payer, the odd step) + 1 (payee).
        ({"rate_bps": 500, "paid_by": "split"}, 61, 63, 60, 3),
        # A fixed amount plus a rate.
        ({"rate_bps": 100, "fixed_amount": 2, "paid_by": "payer"}, 250, 254, 250, 4),
        # Below one step of the rate: nothing.
        ({"rate_bps": 500, "paid_by": "payer"}, 19, 19, 19, 0),
    ],
)
async def test_a_levy_is_taken_in_the_same_transaction_with_exact_figures(
    api: ApiClient,
    scene: PoolScene,
    terms: dict[str, Any],
    amount: int,
    payer_pays: int,
    payee_gets: int,
    pool_gets: int,
) -> None:
    """The levy moves whole steps (rounded down): what the payer pays is what the
    payee and the pool get, nothing created or lost. A retry is the same
    transaction even after the rule changed."""
    world = scene.world
    await set_levy(api, scene, **terms)
    body = transfer(world, world.alice, world.bob, amount)
    created = await expect(
        await api.post("/v1/transactions", json=body, headers=world.alice.auth), 201
    )
    assert len(created["postings"]) == (3 if pool_gets else 2)
    assert await balance(api, world, str(world.alice.accounts[HOURS])) == -payer_pays
    assert await balance(api, world, str(world.bob.accounts[HOURS])) == payee_gets
    assert await balance(api, world, scene.pool_account) == pool_gets
    assert payer_pays == payee_gets + pool_gets
    await set_levy(api, scene, rate_bps=0, fixed_amount=0)
    await expect(await api.post("/v1/transactions", json=body, headers=world.alice.auth), 200)
    assert await balance(api, world, scene.pool_account) == pool_gets
    await log_replays(api, world)


async def test_a_levy_by_category_wins_over_the_general_one(
    api: ApiClient, scene: PoolScene
) -> None:
    world = scene.world
    await set_levy(api, scene, rate_bps=1000)
    levies = await set_levy(api, scene, rate_bps=5000, category="garden")
    assert sorted((item["category"] or "", item["rate_bps"]) for item in levies["items"]) == [
        ("", 1000),
        ("garden", 5000),
    ]
    await expect(
        await api.post(
            "/v1/transactions",
            json=transfer(world, world.alice, world.bob, 100, category="garden"),
            headers=world.alice.auth,
        ),
        201,
    )
    assert await balance(api, world, scene.pool_account) == 50
    await expect(
        await api.post(
            "/v1/transactions",
            json=transfer(world, world.alice, world.bob, 100, category="repair"),
            headers=world.alice.auth,
        ),
        201,
    )
    assert await balance(api, world, scene.pool_account) == 60


async def test_a_payee_levy_larger_than_the_amount_is_refused(
    api: ApiClient, scene: PoolScene
) -> None:
    world = scene.world
    await set_levy(api, scene, rate_bps=0, fixed_amount=5, paid_by="payee")
    refused = await expect(
        await api.post(
            "/v1/transactions",
            json=transfer(world, world.alice, world.bob, 5),
            headers=world.alice.auth,
        ),
        422,
    )
    assert refused["code"] == "amount_too_small_for_levy"
    assert await balance(api, world, str(world.alice.accounts[HOURS])) == 0


async def test_a_signed_levied_transfer_replays_against_the_logged_rule(
    api: ApiClient, scene: PoolScene
) -> None:
    """The payer signs the amount the payee is paid; the levy leg is checked by the
    replay against the rule in force in the log."""
    world = scene.world
    key = DeviceKey()
    await register(api, world, world.alice, key)
    await set_levy(api, scene, rate_bps=1000, paid_by="split")
    origin = await origin_of(api, world)
    body = signed_transfer(world, origin, key, world.alice, world.bob, 30)
    await expect(await api.post("/v1/transactions", json=body, headers=world.alice.auth), 201)
    assert await balance(api, world, scene.pool_account) == 3
    await log_replays(api, world)


async def test_payments_above_the_payees_maximum_overflow_to_the_pool(
    api: ApiClient, scene: PoolScene
) -> None:
    """Where the community chose it: the payee receives up to their maximum, the
    rest goes to the pool in the same transaction (with the levy, in one leg); a
    payee already at the maximum is still refused; a signed overflowing transfer
    replays; `pool: null` refuses again."""
    world = scene.world
    bob_hours = str(world.bob.accounts[HOURS])
    await expect(
        await api.patch(
            f"/v1/accounts/{bob_hours}", json={"max_balance": 100}, headers=world.admin.auth
        ),
        200,
    )
    path = f"/v1/communities/{world.slug}/policies/overflow"
    overflows = await expect(
        await api.put(path, json={"unit": HOURS, "pool": scene.pool_id}, headers=world.admin.auth),
        200,
    )
    assert overflows["items"] == [{"unit": HOURS, "account": scene.pool_account}]
    await set_levy(api, scene, rate_bps=1000)
    body = transfer(world, world.alice, world.bob, 150)
    created = await expect(
        await api.post("/v1/transactions", json=body, headers=world.alice.auth), 201
    )
    # 150 + 15 levy from Alice; Bob up to 100; the pool 15 + 50.
    assert [posting["amount"] for posting in created["postings"]] == [-165, 100, 65]
    assert await balance(api, world, bob_hours) == 100
    refused = await expect(
        await api.post(
            "/v1/transactions",
            json=transfer(world, world.alice, world.bob, 10),
            headers=world.alice.auth,
        ),
        409,
    )
    assert refused["code"] == "limit_exceeded"
    await expect(
        await api.patch(
            f"/v1/accounts/{bob_hours}", json={"max_balance": 120}, headers=world.admin.auth
        ),
        200,
    )
    key = DeviceKey()
    await register(api, world, world.alice, key)
    signed = signed_transfer(world, await origin_of(api, world), key, world.alice, world.bob, 30)
    await expect(await api.post("/v1/transactions", json=signed, headers=world.alice.auth), 201)
    assert await balance(api, world, bob_hours) == 120
    await log_replays(api, world)
    await expect(
        await api.put(path, json={"unit": HOURS, "pool": None}, headers=world.admin.auth), 200
    )
    await expect(
        await api.patch(
            f"/v1/accounts/{bob_hours}", json={"max_balance": 130}, headers=world.admin.auth
        ),
        200,
    )
    refused = await expect(
        await api.post(
            "/v1/transactions",
            json=transfer(world, world.alice, world.bob, 20),
            headers=world.alice.auth,
        ),
        409,
    )
    assert refused["code"] == "limit_exceeded"


async def test_managers_sign_their_decisions_where_the_community_requires_it(
    api: ApiClient, scene: PoolScene
) -> None:
    """With signatures required, an unsigned decision is refused; a decision signed
    by another's key, or saying something else, is refused by name; the signed one
    is logged with its signature and the replay checks it."""
    world = scene.world
    bob_key, carol_key = DeviceKey(), DeviceKey()
    await register(api, world, world.bob, bob_key)
    await register(api, world, scene.carol, carol_key)
    await expect(
        await api.patch(
            f"/v1/communities/{world.slug}",
            json={"signatures": "required"},
            headers=world.admin.auth,
        ),
        200,
    )
    origin = await origin_of(api, world)
    asked = await ask(api, scene, 30)
    path = f"{scene.path}/requests/{asked['id']}/decisions"

    def signed(key: DeviceKey, decision: str) -> dict[str, Any]:
        document = intents.make_pool_decision(
            ledger=origin, request_id=uuid.UUID(asked["id"]), decision=decision, key_id=key.key_id
        )
        return {"decision": intents.b64url_encode(document), "signature": key.sign(document)}

    unsigned = await expect(await decide(api, scene, asked["id"], world.bob, "decline"), 422)
    assert unsigned["code"] == "signature_required"
    for body, code in (
        ({"decision": "decline", "signed": signed(carol_key, "decline")}, "key_not_allowed"),
        ({"decision": "decline", "signed": signed(bob_key, "approve")}, "intent_mismatch"),
    ):
        refused = await expect(await api.post(path, json=body, headers=world.bob.auth), 422)
        assert refused["code"] == code
    signed_decline = signed(bob_key, "decline")
    body = {"decision": "decline", "signed": signed_decline}
    decided = await expect(await api.post(path, json=body, headers=world.bob.auth), 200)
    assert decided["decisions"] == [{"manager": str(world.bob.party_id), "decision": "decline"}]
    async with api.app[DATABASE_POOL].acquire() as connection:
        entry = await connection.fetchval(
            "SELECT convert_from(entry, 'UTF8') FROM log_entries"
            " WHERE community_id = (SELECT id FROM communities WHERE slug = $1)"
            " AND convert_from(entry, 'UTF8') LIKE '%\"pool_decision\"%'",
            world.slug,
        )
    assert f'"signature":"{signed_decline["signature"]}"' in entry
    await log_replays(api, world)


async def test_metrics_show_each_pools_balance(api: ApiClient, scene: PoolScene) -> None:
    """/metrics serves a gauge per solidarity pool and unit, read when scraped."""
    await donate(api, scene, scene.world.alice, 42)
    text = await (await api.get("/metrics")).text()
    line = (
        f'timebank_solidarity_pool_balance{{community="{scene.world.slug}",'
        f'pool="Fonds de solidarité",unit="{HOURS}"}} 42.0'
    )
    assert line in text.splitlines()


@pytest.mark.parametrize("paid_by", ["payer", "payee", "split"])
async def test_a_levied_proposal_is_confirmed_with_the_amount_the_payer_meant(
    api: ApiClient, world: World, scene: PoolScene, paid_by: str
) -> None:
    """A proposal with a pool's levy has three legs; the payer's intent names the
    amount before the levy, which the levy in force must turn into exactly those
    legs: another amount is intent_mismatch, the right one posts and replays."""
    await set_levy(api, scene, rate_bps=500, paid_by=paid_by)
    key = DeviceKey()
    await register(api, world, world.alice, key)
    origin = await origin_of(api, world)
    proposal = transfer(world, world.alice, world.bob, 61, pending=True)
    made = await expect(
        await api.post("/v1/transactions", json=proposal, headers=world.bob.auth), 201
    )
    assert len(made["postings"]) == 3
    path = f"/v1/transactions/{proposal['id']}/confirm"
    wrong = confirming_intent(world, origin, key, proposal, amount=62)
    problem = await expect(await api.post(path, json=wrong, headers=world.alice.auth), 422)
    assert problem["code"] == "intent_mismatch"
    right = confirming_intent(world, origin, key, proposal)
    confirmed = await expect(await api.post(path, json=right, headers=world.alice.auth), 200)
    assert confirmed["state"] == "posted"
    async with api.app[DATABASE_POOL].acquire() as connection:
        assert not [v for v in await check_logs(connection) if v.rows[0]["community"] == world.slug]


async def test_a_split_fixed_levy_proposal_is_confirmed_with_its_own_amount_only(
    api: ApiClient, world: World, scene: PoolScene
) -> None:
    """A proposal carries the amount it was made for (intent_amount on reads), and
    its payer's confirmation must sign exactly that. With a split fixed levy and an
    overflow to the same pool, the amount the payer pays in all (63 for 60 with a
    levy of 5, 3 of it the payer's) also gives the legs as an overflow would, so
    the service once took it: it is intent_mismatch now; the proposal's posts."""
    await set_levy(api, scene, rate_bps=0, fixed_amount=5, paid_by="split")
    await expect(
        await api.put(
            f"/v1/communities/{world.slug}/policies/overflow",
            json={"unit": HOURS, "pool": scene.pool_id},
            headers=world.admin.auth,
        ),
        200,
    )
    key = DeviceKey()
    await register(api, world, world.alice, key)
    origin = await origin_of(api, world)
    proposal = transfer(world, world.alice, world.bob, 60, pending=True)
    made = await expect(
        await api.post("/v1/transactions", json=proposal, headers=world.bob.auth), 201
    )
    assert [posting["amount"] for posting in made["postings"]] == [-63, 58, 5]
    read = await expect(
        await api.get(
            f"/v1/transactions/{proposal['id']}?community={world.slug}", headers=world.alice.auth
        ),
        200,
    )
    assert read["intent_amount"] == 60
    # A retry of the proposal keeps the amount it was made for.
    await expect(await api.post("/v1/transactions", json=proposal, headers=world.bob.auth), 200)
    path = f"/v1/transactions/{proposal['id']}/confirm"
    for amount in (63, 58):
        wrong = confirming_intent(world, origin, key, proposal, amount=amount)
        problem = await expect(await api.post(path, json=wrong, headers=world.alice.auth), 422)
        assert (problem["code"], problem["field"]) == ("intent_mismatch", "amount")
    right = confirming_intent(world, origin, key, proposal)
    confirmed = await expect(await api.post(path, json=right, headers=world.alice.auth), 200)
    assert confirmed["state"] == "posted"
    assert confirmed["intent_amount"] is None
    await log_replays(api, world)
