"""Treasurers' reports: flows by category, and CSV exports of the journal and of a
statement."""

from __future__ import annotations

import csv
import io
import itertools
from datetime import UTC, datetime, timedelta

from tests.api.conftest import ApiClient
from tests.api.world import HOURS, World, expect, transfer
from timebank.keys import DATABASE_POOL


async def some_exchanges(api: ApiClient, world: World) -> None:
    for amount, category in ((30, "garden"), (45, "garden"), (60, "=SUM(A1)")):
        body = transfer(world, world.alice, world.bob, amount, category=category, memo="merci")
        await expect(await api.post("/v1/transactions", json=body, headers=world.alice.auth), 201)


async def test_flows_by_category(api: ApiClient, world: World) -> None:
    await some_exchanges(api, world)
    flows = await expect(
        await api.get(
            f"/v1/communities/{world.slug}/flows?unit={HOURS}", headers=world.treasurer.auth
        ),
        200,
    )
    assert [(f["category"], f["kind"], f["transactions"], f["total"]) for f in flows["items"]] == [
        ("garden", "exchange", 2, 75),
        ("=SUM(A1)", "exchange", 1, 60),
    ]
    await expect(
        await api.get(f"/v1/communities/{world.slug}/flows", headers=world.alice.auth), 403
    )


async def test_flows_over_time_list_every_period_with_this_ones_exchanges(
    api: ApiClient, world: World
) -> None:
    """Per unit, the last `periods` weeks or months oldest first, each starting on
    its first instant (a Monday for weeks, the 1st for months, UTC); the current
    one holds this test's exchanges, the earlier ones zero; members may not read
    them and a period count out of bounds is refused."""
    await some_exchanges(api, world)
    path = f"/v1/communities/{world.slug}/flows/over-time"
    now = datetime.now(UTC)
    for period, periods in (("month", 3), ("week", 5)):
        read = await expect(
            await api.get(
                f"{path}?period={period}&periods={periods}&unit={HOURS}",
                headers=world.treasurer.auth,
            ),
            200,
        )
        assert read["period"] == period
        points = read["items"]
        assert [point["unit"] for point in points] == [HOURS] * periods
        starts = [datetime.fromisoformat(point["starts_at"]) for point in points]
        assert starts == sorted(starts)
        assert starts[-1] <= now
        if period == "month":
            assert {(start.day, start.hour) for start in starts} == {(1, 0)}
            assert now - starts[-1] < timedelta(days=31)
        else:
            assert {start.weekday() for start in starts} == {0}
            assert [b - a for a, b in itertools.pairwise(starts)] == [timedelta(weeks=1)] * (
                periods - 1
            )
            assert now - starts[-1] < timedelta(weeks=1)
        assert [(p["transactions"], p["total"]) for p in points] == [(0, 0)] * (periods - 1) + [
            (3, 135)
        ]
    every_unit = await expect(await api.get(path, headers=world.admin.auth), 200)
    assert len(every_unit["items"]) % 12 == 0
    assert {point["unit"] for point in every_unit["items"]} >= {HOURS}
    await expect(await api.get(path, headers=world.alice.auth), 403)
    refused = await expect(await api.get(f"{path}?periods=61", headers=world.admin.auth), 422)
    assert refused["code"] == "validation_error"


async def test_the_journal_exports_as_csv(api: ApiClient, world: World) -> None:
    await some_exchanges(api, world)
    response = await api.get(
        f"/v1/communities/{world.slug}/transactions.csv", headers=world.treasurer.auth
    )
    assert response.status == 200
    assert response.content_type == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert [(row["amount"], row["category"]) for row in rows] == [
        ("-30", "garden"),
        ("30", "garden"),
        ("-45", "garden"),
        ("45", "garden"),
        ("-60", "'=SUM(A1)"),
        ("60", "'=SUM(A1)"),
    ]
    assert {row["unit"] for row in rows} == {HOURS}
    await expect(
        await api.get(f"/v1/communities/{world.slug}/transactions.csv", headers=world.bob.auth), 403
    )


async def test_a_statement_exports_as_csv(api: ApiClient, world: World) -> None:
    await some_exchanges(api, world)
    response = await api.get(
        f"/v1/accounts/{world.bob.accounts[HOURS]}/entries.csv", headers=world.bob.auth
    )
    assert response.status == 200
    rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert [(row["amount"], row["balance_after"]) for row in rows] == [
        ("60", "135"),
        ("45", "75"),
        ("30", "30"),
    ]
    await expect(
        await api.get(
            f"/v1/accounts/{world.bob.accounts[HOURS]}/entries.csv", headers=world.alice.auth
        ),
        403,
    )


async def test_the_accounts_near_their_limits_are_listed_for_the_treasurer(
    api: ApiClient, world: World
) -> None:
    """An account whose spendable amount, reservations counted, is within the
    share of what it may owe is listed with its owner; one far from both limits
    is not; a narrower share leaves it out."""
    account = await expect(
        await api.get(f"/v1/accounts/{world.alice.accounts[HOURS]}", headers=world.alice.auth),
        200,
    )
    owed = -account["min_balance"] - account["balance"]
    almost = owed - owed // 20
    await expect(
        await api.post(
            "/v1/transactions",
            json=transfer(world, world.alice, world.bob, almost - 1),
            headers=world.alice.auth,
        ),
        201,
    )
    await expect(
        await api.post(
            "/v1/transactions",
            json=transfer(world, world.alice, world.bob, 1, pending=True),
            headers=world.alice.auth,
        ),
        201,
    )
    path = f"/v1/communities/{world.slug}/accounts/near-limits"
    near = await expect(await api.get(path, headers=world.treasurer.auth), 200)
    listed = {(item["id"], item["owner"]["display_name"]) for item in near["items"]}
    assert (str(world.alice.accounts[HOURS]), "Alice") in listed
    assert str(world.bob.accounts[HOURS]) not in {item["id"] for item in near["items"]}
    assert near["truncated"] is False
    narrow = await expect(await api.get(f"{path}?share_bps=1", headers=world.treasurer.auth), 200)
    assert str(world.alice.accounts[HOURS]) not in {item["id"] for item in narrow["items"]}


async def test_members_without_an_exchange_lately_are_listed_never_active_first(
    api: ApiClient, world: World
) -> None:
    """With everyone joined long ago, the members who never exchanged are listed
    first (no last exchange), those who exchanged within the days asked are not,
    and once their postings are old they are listed with their latest one."""
    await expect(
        await api.post(
            "/v1/transactions",
            json=transfer(world, world.alice, world.bob, 15),
            headers=world.alice.auth,
        ),
        201,
    )
    path = f"/v1/communities/{world.slug}/members/inactive?days=90"
    async with api.app[DATABASE_POOL].acquire() as connection:
        community_id = await connection.fetchval(
            "SELECT id FROM communities WHERE slug = $1", world.slug
        )
        await connection.execute(
            "UPDATE parties SET created_at = now() - interval '200 days' WHERE community_id = $1",
            community_id,
        )
        idle = await expect(await api.get(path, headers=world.treasurer.auth), 200)
        listed = {item["party_id"]: item for item in idle["items"]}
        assert str(world.treasurer.party_id) in listed
        assert str(world.alice.party_id) not in listed
        assert str(world.bob.party_id) not in listed
        assert all(item["last_exchange_at"] is None for item in listed.values())
        async with connection.transaction():
            # Postings are append-only: their guard is lifted to age them.
            await connection.execute("SET LOCAL session_replication_role = replica")
            await connection.execute(
                "UPDATE postings SET posted_at = now() - interval '100 days'"
                " WHERE community_id = $1",
                community_id,
            )
    aged = await expect(await api.get(path, headers=world.treasurer.auth), 200)
    order = [item["party_id"] for item in aged["items"]]
    assert str(world.alice.party_id) in order
    assert order.index(str(world.treasurer.party_id)) < order.index(str(world.alice.party_id))
    alice = next(item for item in aged["items"] if item["party_id"] == str(world.alice.party_id))
    assert alice["last_exchange_at"] is not None
