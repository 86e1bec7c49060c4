"""Periodic policies on the real database: demurrage and expiry with exact
figures (rounded down, nothing created or lost), fees that cannot be paid stay
due and are settled later under the same transaction id, and a year of daily
runs with random downtime and concurrent runners charges each period once."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from tests.api.conftest import ApiClient
from tests.api.test_pools import PoolScene, ask, balance, decide, donate, log_replays, scene
from tests.api.world import GREEN, HOURS, World, add_member, expect
from timebank.keys import DATABASE_POOL, LEDGER, POLICIES
from timebank.policies.store import RunSummary


@pytest.fixture
async def pool_with_green(api: ApiClient, world: World) -> PoolScene:
    """A pool giving in the currency, managed by Alice, and an issuance account of
    the community from which the admin issues currency to members."""
    pool = await expect(
        await api.post(
            f"/v1/communities/{world.slug}/pools",
            json={
                "name": "Caisse commune",
                "purpose": "The association's solidarity fund",
                "managers": [str(world.alice.party_id)],
                "approvals_required": 1,
                "units": [{"unit": GREEN, "grant_max": 10_000, "beneficiary_period_max": 10_000}],
            },
            headers=world.admin.auth,
        ),
        201,
    )
    community_id = await community_of(api, world)
    ledger = api.app[LEDGER]
    units = {unit.code: unit for unit in await ledger.units(community_id)}
    party = await ledger.community_party(community_id)
    await ledger.open_account(
        community_id,
        owner_id=party.id,
        unit_id=units[GREEN].id,
        purpose="issuance",
        min_balance=-(10**9),
        max_balance=0,
    )
    return PoolScene(world, world.alice, world.bob, pool["id"], pool["units"][0]["account"])


async def community_of(api: ApiClient, world: World) -> uuid.UUID:
    return (await api.app[LEDGER].community_by_slug(world.slug)).id


async def give_green(api: ApiClient, world: World, to: str, amount: int) -> None:
    """Currency issued to an account from the community's issuance account."""
    async with api.app[DATABASE_POOL].acquire() as connection:
        issuance = await connection.fetchval(
            "SELECT a.id FROM accounts a JOIN units u ON u.id = a.unit_id"
            " AND u.community_id = a.community_id"
            " WHERE a.community_id = (SELECT id FROM communities WHERE slug = $1)"
            " AND a.purpose = 'issuance' AND u.code = $2",
            world.slug,
            GREEN,
        )
    assert issuance is not None
    body = {
        "id": str(uuid.uuid4()),
        "community": world.slug,
        "unit": GREEN,
        "from": str(issuance),
        "to": to,
        "amount": amount,
        "kind": "issuance",
    }
    await expect(await api.post("/v1/transactions", json=body, headers=world.admin.auth), 201)


async def schedule(api: ApiClient, world: World, **fields: Any) -> dict[str, Any]:
    return dict(
        await expect(
            await api.post(
                f"/v1/communities/{world.slug}/policies/schedules",
                json=fields,
                headers=world.admin.auth,
            ),
            201,
        )
    )


def today() -> date:
    return datetime.now(UTC).date()


async def _demurrage_schedule_over_three_days(
    api: ApiClient, scene: PoolScene
) -> tuple[uuid.UUID, date]:
    """Alice holds 100.00 of the currency under a daily 2% demurrage starting
    today; returns the community and a day by which three periods have ended."""
    world = scene.world
    await give_green(api, world, str(world.alice.accounts[GREEN]), 10_000)
    await schedule(
        api,
        world,
        kind="demurrage",
        unit=GREEN,
        period="day",
        starts_on=today().isoformat(),
        rate_bps=200,
        threshold=5_000,
        target=scene.pool_account,
    )
    return await community_of(api, world), today() + timedelta(days=3)


async def test_demurrage_takes_a_rounded_down_share_of_the_excess_each_period_once(
    api: ApiClient, pool_with_green: PoolScene
) -> None:
    """2% per day above 50.00: 100.00 pays 1.00, then 0.98, then 0.96 (0.9604
    rounded down): each period's base is the balance at its end, after the
    previous period's charge. Running again, or from two runners at once, charges
    nothing more; the log replays."""
    scene = pool_with_green
    world = scene.world
    alice_green = str(world.alice.accounts[GREEN])
    community_id, later = await _demurrage_schedule_over_three_days(api, scene)
    policies = api.app[POLICIES]
    community_runs = await asyncio.gather(
        *(policies.run_due(today=later, community_id=community_id) for _ in range(3))
    )
    runs = [run for runs in community_runs for run in runs if run.charged_count]
    assert sorted(run.charged_total for run in runs) == [96, 98, 100]
    assert await balance(api, world, alice_green) == 10_000 - 294
    assert await balance(api, world, scene.pool_account) == 294
    assert await policies.run_due(today=later, community_id=community_id) == []
    await log_replays(api, world)


async def test_a_runner_that_finds_a_period_run_by_another_goes_on_to_the_next(
    api: ApiClient, pool_with_green: PoolScene, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another instance runs the first period between this runner's reading of
    the schedules and its own attempt: this runner passes over that period and
    runs the two later ones, instead of leaving them to the next scheduled run
    (the other instance may itself have stopped on finding this one holding the
    schedule)."""
    community_id, later = await _demurrage_schedule_over_three_days(api, pool_with_green)
    policies = api.app[POLICIES]
    run_period = policies._run_period
    run_by_other: list[object] = []

    async def other_instance_first(schedule: Any, start: date, end: date) -> object:
        if not run_by_other:
            run_by_other.append(await run_period(schedule, start, end))
        return await run_period(schedule, start, end)

    monkeypatch.setattr(policies, "_run_period", other_instance_first)
    runs = await policies.run_due(today=later, community_id=community_id)
    monkeypatch.undo()
    (other_run,) = run_by_other
    assert isinstance(other_run, RunSummary)
    assert other_run.charged_total == 100
    assert [(run.period_start, run.charged_total) for run in runs] == [
        (today() + timedelta(days=1), 98),
        (today() + timedelta(days=2), 96),
    ]
    assert await policies.run_due(today=later, community_id=community_id) == []
    await log_replays(api, pool_with_green.world)


async def test_a_runner_that_finds_the_schedule_held_leaves_it_to_the_holder(
    api: ApiClient, pool_with_green: PoolScene
) -> None:
    """While another instance holds the schedule, a runner runs none of its
    periods and returns without waiting for it; once it is free, all three run."""
    community_id, later = await _demurrage_schedule_over_three_days(api, pool_with_green)
    policies = api.app[POLICIES]
    async with api.app[DATABASE_POOL].acquire() as holder, holder.transaction():
        held = await holder.fetchval(
            "SELECT id FROM policy_schedules WHERE community_id = $1 FOR UPDATE", community_id
        )
        assert held is not None
        assert await policies.run_due(today=later, community_id=community_id) == []
        assert (
            await holder.fetchval(
                "SELECT count(*) FROM policy_runs WHERE community_id = $1", community_id
            )
            == 0
        )
    runs = await policies.run_due(today=later, community_id=community_id)
    assert [run.charged_total for run in runs] == [100, 98, 96]


async def test_hours_above_the_cap_expire_to_the_pool(api: ApiClient, scene: PoolScene) -> None:
    """Expiry takes all of a balance above the cap, at the period's end."""
    world = scene.world
    bob_hours = str(world.bob.accounts[HOURS])
    await expect(
        await api.post(
            "/v1/transactions",
            json={
                "id": str(uuid.uuid4()),
                "community": world.slug,
                "unit": HOURS,
                "from": str(world.alice.accounts[HOURS]),
                "to": bob_hours,
                "amount": 500,
            },
            headers=world.alice.auth,
        ),
        201,
    )
    start = today() - timedelta(days=today().weekday())
    await schedule(
        api,
        world,
        kind="hours_expiry",
        unit=HOURS,
        period="week",
        starts_on=start.isoformat(),
        threshold=300,
        target=scene.pool_account,
    )
    (run,) = await api.app[POLICIES].run_due(
        today=start + timedelta(days=7), community_id=await community_of(api, world)
    )
    assert (run.charged_count, run.charged_total) == (1, 200)
    assert await balance(api, world, bob_hours) == 300
    assert await balance(api, world, scene.pool_account) == 200


async def test_an_unpaid_fee_stays_due_and_is_settled_once_later(
    api: ApiClient, pool_with_green: PoolScene
) -> None:
    """Bob cannot pay his fee (no currency, a minimum of 0): it is recorded unpaid
    with the reason, overdue after its grace period; once Bob has money, the next
    run settles it with the same transaction, and never twice."""
    scene = pool_with_green
    world = scene.world
    alice_green, bob_green = str(world.alice.accounts[GREEN]), str(world.bob.accounts[GREEN])
    await give_green(api, world, alice_green, 1_000)
    start = today().replace(day=1)
    await schedule(
        api,
        world,
        kind="membership_fee",
        unit=GREEN,
        period="month",
        starts_on=start.isoformat(),
        amount=300,
        payer_kind="member",
        target=scene.pool_account,
        grace_days=10,
    )
    policies = api.app[POLICIES]
    community_id = await community_of(api, world)
    next_month = (start + timedelta(days=32)).replace(day=1)
    (run,) = await policies.run_due(today=next_month, community_id=community_id)
    assert run.charged_total == 300 * run.charged_count
    assert await balance(api, world, alice_green) == 700
    dues = await expect(
        await api.get(
            f"/v1/communities/{world.slug}/policies/dues?unpaid=true", headers=world.bob.auth
        ),
        200,
    )
    (due,) = dues["items"]
    assert (due["account"], due["state"], due["problem"]) == (bob_green, "unpaid", "limit_exceeded")
    assert due["due_on"] == (next_month + timedelta(days=10)).isoformat()
    await give_green(api, world, bob_green, 1_000)
    month_after = (next_month + timedelta(days=32)).replace(day=1)
    await policies.run_due(today=month_after, community_id=community_id)
    assert await balance(api, world, bob_green) == 1_000 - 300 - 300
    await policies.run_due(today=month_after, community_id=community_id)
    assert await balance(api, world, bob_green) == 400
    settled = await expect(
        await api.get(f"/v1/communities/{world.slug}/policies/dues", headers=world.bob.auth),
        200,
    )
    assert {(item["period_start"], item["state"]) for item in settled["items"]} == {
        (start.isoformat(), "paid"),
        (next_month.isoformat(), "paid"),
    }
    assert all(item["owner"] == str(world.bob.party_id) for item in settled["items"])
    await log_replays(api, world)


async def test_a_year_of_daily_runs_with_random_downtime_charges_each_day_once(
    api: ApiClient, scene: PoolScene
) -> None:
    """A daily recurring donation of 1 minute over a year; the service is up on a
    random third of the days (sometimes with two runners at once) and catches up
    when it comes back: every ended day is charged exactly once."""
    world = scene.world
    start = today() - timedelta(days=400)
    await schedule(
        api,
        world,
        kind="recurring_donation",
        unit=HOURS,
        period="day",
        starts_on=start.isoformat(),
        amount=1,
        source=str(world.alice.accounts[HOURS]),
        target=scene.pool_account,
    )
    policies = api.app[POLICIES]
    community_id = await community_of(api, world)
    chance = random.Random(20261126)
    day = start
    end = start + timedelta(days=365)
    while day < end:
        day += timedelta(days=1)
        if chance.random() < 0.33:
            runners = 2 if chance.random() < 0.3 else 1
            await asyncio.gather(
                *(policies.run_due(today=day, community_id=community_id) for _ in range(runners))
            )
    await policies.run_due(today=end, community_id=community_id)
    assert await balance(api, world, scene.pool_account) == 365
    assert await balance(api, world, str(world.alice.accounts[HOURS])) == -365
    async with api.app[DATABASE_POOL].acquire() as connection:
        periods = await connection.fetchval(
            "SELECT count(DISTINCT period_start) FROM policy_runs r"
            " JOIN policy_schedules s ON s.id = r.schedule_id AND s.community_id = r.community_id"
            " WHERE s.community_id = (SELECT id FROM communities WHERE slug = $1)",
            world.slug,
        )
    assert periods == 365


async def test_a_schedule_must_fit_its_kind(api: ApiClient, scene: PoolScene) -> None:
    """Each kind takes its own fields and names the one missing; admins only."""
    world = scene.world
    path = f"/v1/communities/{world.slug}/policies/schedules"
    base = {"unit": HOURS, "period": "month", "target": scene.pool_account}
    for body, field in (
        (
            {"kind": "demurrage", "starts_on": "2026-11-02", "rate_bps": 1, "threshold": 0},
            "starts_on",
        ),
        ({"kind": "demurrage", "starts_on": "2026-11-01", "threshold": 0}, "rate_bps"),
        ({"kind": "membership_fee", "starts_on": "2026-11-01", "amount": 5}, "payer_kind"),
        ({"kind": "recurring_donation", "starts_on": "2026-11-01", "amount": 5}, "source"),
    ):
        refused = await expect(
            await api.post(path, json={**base, **body}, headers=world.admin.auth), 422
        )
        assert (refused["code"], refused.get("field")) == ("validation_error", field)
    forbidden = await expect(
        await api.post(
            path,
            json={**base, "kind": "hours_expiry", "starts_on": "2026-11-01", "threshold": 0},
            headers=world.alice.auth,
        ),
        403,
    )
    assert forbidden["code"] == "forbidden"


__all__ = ["scene"]


async def test_limits_default_per_kind_of_account(api: ApiClient, world: World) -> None:
    """Accounts opened after the change take their kind's limits; a pool's
    minimum stays 0; accounts already open keep theirs."""
    path = f"/v1/communities/{world.slug}/policies/limits"
    for kind, low, high in (("member", -300, 3_000), ("pool", -1, 900)):
        body = {"unit": HOURS, "kind": kind, "min_balance": low, "max_balance": high}
        response = await api.put(path, json=body, headers=world.admin.auth)
        if kind == "pool":
            # A pool gives what it holds: its minimum is 0 whatever the default.
            await expect(response, 200)
            continue
        await expect(response, 200)
    listed = await expect(await api.get(path, headers=world.alice.auth), 200)
    assert [
        (item["kind"], item["min_balance"], item["max_balance"]) for item in listed["items"]
    ] == [
        ("member", -300, 3_000),
        ("pool", -1, 900),
    ]
    newcomer = await add_member(api, world.slug, world.admin, "Newcomer", "member")
    account = await expect(
        await api.get(f"/v1/accounts/{newcomer.accounts[HOURS]}", headers=world.admin.auth), 200
    )
    assert (account["min_balance"], account["max_balance"]) == (-300, 3_000)
    old = await expect(
        await api.get(f"/v1/accounts/{world.alice.accounts[HOURS]}", headers=world.admin.auth), 200
    )
    assert (old["min_balance"], old["max_balance"]) == (-600, 6_000)
    pool = await expect(
        await api.post(
            f"/v1/communities/{world.slug}/pools",
            json={
                "name": "Fonds",
                "purpose": "help",
                "managers": [str(world.alice.party_id)],
                "approvals_required": 1,
                "units": [{"unit": HOURS, "grant_max": 60, "beneficiary_period_max": 60}],
            },
            headers=world.admin.auth,
        ),
        201,
    )
    pool_account = await expect(
        await api.get(f"/v1/accounts/{pool['units'][0]['account']}", headers=world.admin.auth),
        200,
    )
    assert (pool_account["min_balance"], pool_account["max_balance"]) == (0, 900)


async def test_pool_and_policy_events_reach_webhook_subscribers(
    api: ApiClient, scene: PoolScene
) -> None:
    """pool.request_opened, pool.grant_paid, pool.request_resolved and
    policy.changed are queued in the same transaction as the change."""
    world = scene.world
    await expect(
        await api.post(
            f"/v1/communities/{world.slug}/webhooks",
            json={
                "url": "https://hooks.example.org/pools",
                "events": [
                    "pool.request_opened",
                    "pool.request_resolved",
                    "pool.grant_paid",
                    "policy.changed",
                ],
            },
            headers=world.admin.auth,
        ),
        201,
    )
    await donate(api, scene, world.alice, 100)
    asked = await ask(api, scene, 30)
    for manager in (world.alice, world.bob):
        await expect(await decide(api, scene, asked["id"], manager, "approve"), 200)
    await expect(
        await api.put(
            f"/v1/communities/{world.slug}/policies/levies",
            json={"unit": HOURS, "pool": scene.pool_id, "rate_bps": 100},
            headers=world.admin.auth,
        ),
        200,
    )
    async with api.app[DATABASE_POOL].acquire() as connection:
        events = await connection.fetch(
            "SELECT type, payload FROM webhook_events"
            " WHERE community_id = (SELECT id FROM communities WHERE slug = $1) ORDER BY id",
            world.slug,
        )
    assert [event["type"] for event in events] == [
        "pool.request_opened",
        "pool.grant_paid",
        "pool.request_resolved",
        "policy.changed",
    ]
    grant = json.loads(events[1]["payload"])
    assert (grant["amount"], grant["unit"], grant["request"]) == (30, HOURS, asked["id"])


async def test_credit_grows_with_hours_given_up_to_its_bound(
    api: ApiClient, scene: PoolScene
) -> None:
    """Half of the minutes earned by exchanges is added to a member's credit (the
    minimum goes down), never past the bound, never taken back; logged."""
    world = scene.world
    bob_hours = str(world.bob.accounts[HOURS])
    await schedule(
        api,
        world,
        kind="credit_growth",
        unit=HOURS,
        period="day",
        starts_on=today().isoformat(),
        rate_bps=5_000,
        threshold=-1_000,
    )
    policies = api.app[POLICIES]
    community_id = await community_of(api, world)

    async def pay_bob(payer: Any, minutes: int) -> None:
        body = {
            "id": str(uuid.uuid4()),
            "community": world.slug,
            "unit": HOURS,
            "from": str(payer.accounts[HOURS]),
            "to": bob_hours,
            "amount": minutes,
        }
        await expect(await api.post("/v1/transactions", json=body, headers=payer.auth), 201)

    async def bob_minimum() -> int:
        account = await expect(
            await api.get(f"/v1/accounts/{bob_hours}", headers=world.admin.auth), 200
        )
        return int(account["min_balance"])

    await pay_bob(world.alice, 600)
    (run,) = await policies.run_due(today=today() + timedelta(days=1), community_id=community_id)
    assert (run.charged_count, run.charged_total) == (1, 300)
    assert await bob_minimum() == -900
    await pay_bob(world.treasurer, 500)
    await policies.run_due(today=today() + timedelta(days=2), community_id=community_id)
    assert await bob_minimum() == -1_000
    await log_replays(api, world)


async def test_each_member_is_welcomed_once_from_the_pool(api: ApiClient, scene: PoolScene) -> None:
    """A welcome grant pays every member once; a newcomer at the next run; when
    the pool cannot pay, the grant waits and is paid once it can."""
    world = scene.world
    await donate(api, scene, world.alice, 60)
    await schedule(
        api,
        world,
        kind="welcome_grant",
        unit=HOURS,
        period="day",
        starts_on=today().isoformat(),
        amount=10,
        source=scene.pool_account,
    )
    policies = api.app[POLICIES]
    community_id = await community_of(api, world)
    (first,) = await policies.run_due(today=today() + timedelta(days=1), community_id=community_id)
    # Admin, treasurer, Alice, Bob, Carol and Dave.
    assert (first.charged_count, first.charged_total) == (6, 60)
    assert await balance(api, world, scene.pool_account) == 0
    newcomer = await add_member(api, world.slug, world.admin, "Newcomer", "member")
    (second,) = await policies.run_due(today=today() + timedelta(days=2), community_id=community_id)
    assert (second.charged_count, second.unpaid_count) == (0, 1)
    await donate(api, scene, world.alice, 15)
    (third,) = await policies.run_due(today=today() + timedelta(days=3), community_id=community_id)
    assert (third.charged_count, third.unpaid_count) == (0, 0)
    assert await balance(api, world, str(newcomer.accounts[HOURS])) == 10
    assert await balance(api, world, str(scene.dave.accounts[HOURS])) == 10
    assert await balance(api, world, scene.pool_account) == 5
    await log_replays(api, world)
