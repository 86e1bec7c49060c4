"""Communities, units, members, organizations, agents and API clients over HTTP."""

from __future__ import annotations

import base64
import uuid

from tests.api.conftest import ApiClient
from tests.api.world import GREEN, HOURS, PASSWORD, World, add_member, expect, token_for, transfer


async def test_a_community_shows_its_units_and_policies(api: ApiClient, world: World) -> None:
    community = await expect(
        await api.get(f"/v1/communities/{world.slug}", headers=world.alice.auth), 200
    )
    assert [unit["code"] for unit in community["units"]] == [HOURS, GREEN]
    assert community["policies"]["signatures"] == "optional"
    missing = await expect(await api.get("/v1/communities/nowhere", headers=world.alice.auth), 404)
    assert missing["code"] == "not_found"


async def test_only_operators_create_communities_and_slugs_are_unique(
    api: ApiClient, world: World
) -> None:
    body = {"slug": f"x-{uuid.uuid4().hex[:6]}", "name": "X"}
    refused = await expect(
        await api.post("/v1/communities", json=body, headers=world.admin.auth), 403
    )
    assert refused["code"] == "forbidden"
    await expect(await api.post("/v1/communities", json=body, headers=world.operator.auth), 201)
    taken = await expect(
        await api.post("/v1/communities", json=body, headers=world.operator.auth), 409
    )
    assert taken["code"] == "already_exists"
    bad = await expect(
        await api.post(
            "/v1/communities", json={"slug": "Not A Slug", "name": "X"}, headers=world.operator.auth
        ),
        422,
    )
    assert bad["code"] == "validation_error"
    assert bad["errors"][0]["location"] == ["body", "slug"]


async def test_a_new_unit_opens_an_account_for_every_member_and_organization(
    api: ApiClient, world: World
) -> None:
    unit = {
        "code": "SEED",
        "name": "Seeds",
        "kind": "currency",
        "decimals": 0,
        "default_max_balance": 100,
    }
    await expect(
        await api.post(f"/v1/communities/{world.slug}/units", json=unit, headers=world.admin.auth),
        201,
    )
    again = await expect(
        await api.post(f"/v1/communities/{world.slug}/units", json=unit, headers=world.admin.auth),
        409,
    )
    assert again["code"] == "already_exists"
    second_time_unit = {"code": "MIN", "name": "Minutes", "kind": "time", "default_max_balance": 1}
    refused = await expect(
        await api.post(
            f"/v1/communities/{world.slug}/units", json=second_time_unit, headers=world.admin.auth
        ),
        409,
    )
    assert refused["code"] == "already_exists"
    me = await expect(await api.get("/v1/me", headers=world.bob.auth), 200)
    (membership,) = me["memberships"]
    assert sorted(account["unit"] for account in membership["accounts"]) == [GREEN, HOURS, "SEED"]
    organizations = await expect(
        await api.get(f"/v1/communities/{world.slug}/organizations", headers=world.bob.auth), 200
    )
    assert sorted(ref["unit"] for ref in organizations["items"][0]["accounts"]) == [
        GREEN,
        HOURS,
        "SEED",
    ]


async def test_members_join_once_and_the_directory_pages_and_searches(
    api: ApiClient, world: World
) -> None:
    duplicate = await expect(
        await api.post(
            f"/v1/communities/{world.slug}/members",
            json={"email": world.alice.email, "display_name": "Alice again"},
            headers=world.admin.auth,
        ),
        409,
    )
    assert duplicate["code"] == "already_exists"
    weak = await expect(
        await api.post(
            f"/v1/communities/{world.slug}/members",
            json={"email": "w@example.org", "display_name": "W", "password": "short"},
            headers=world.admin.auth,
        ),
        422,
    )
    assert weak["code"] == "validation_error"
    page = await expect(
        await api.get(f"/v1/communities/{world.slug}/members?limit=2", headers=world.alice.auth),
        200,
    )
    rest = await expect(
        await api.get(
            f"/v1/communities/{world.slug}/members",
            params={"limit": 2, "cursor": page["next_cursor"]},
            headers=world.alice.auth,
        ),
        200,
    )
    names = [item["display_name"] for item in page["items"] + rest["items"]]
    assert names == ["Admin", "Alice", "Bob", "Treasurer"]
    assert rest["next_cursor"] is None
    # Members see public profiles (and their own email); treasurers see emails.
    by_name = {item["display_name"]: item for item in page["items"]}
    assert (by_name["Admin"]["email"], by_name["Alice"]["email"]) == (None, world.alice.email)
    found = await expect(
        await api.get(f"/v1/communities/{world.slug}/members?q=ob", headers=world.treasurer.auth),
        200,
    )
    assert [(item["display_name"], item["email"]) for item in found["items"]] == [
        ("Bob", world.bob.email)
    ]
    bad_cursor = await expect(
        await api.get(
            f"/v1/communities/{world.slug}/members?cursor=nonsense", headers=world.alice.auth
        ),
        422,
    )
    assert bad_cursor["code"] == "validation_error"
    too_big = await expect(
        await api.get(f"/v1/communities/{world.slug}/members?limit=501", headers=world.alice.auth),
        422,
    )
    assert too_big["code"] == "validation_error"


async def test_a_person_can_belong_to_two_communities_with_a_role_in_each(
    api: ApiClient, world: World
) -> None:
    other = f"o-{uuid.uuid4().hex[:6]}"
    await expect(
        await api.post(
            "/v1/communities", json={"slug": other, "name": "Other"}, headers=world.operator.auth
        ),
        201,
    )
    await expect(
        await api.post(
            f"/v1/communities/{other}/members",
            json={"email": world.alice.email, "display_name": "Alice", "role": "treasurer"},
            headers=world.operator.auth,
        ),
        201,
    )
    me = await expect(await api.get("/v1/me", headers=world.alice.auth), 200)
    assert sorted((m["community"], m["role"]) for m in me["memberships"]) == sorted(
        [(world.slug, "member"), (other, "treasurer")]
    )
    # Her password stays the one she had.
    assert await token_for(api, world.alice.email, PASSWORD)


async def test_an_agent_moves_the_organizations_accounts(api: ApiClient, world: World) -> None:
    organization_hours = str(world.organization_accounts[HOURS])
    body = {**transfer(world, world.alice, world.bob, 15), "from": organization_hours}
    refused = await expect(
        await api.post("/v1/transactions", json=body, headers=world.alice.auth), 403
    )
    assert refused["code"] == "forbidden"
    organization = await expect(
        await api.post(
            f"/v1/communities/{world.slug}/organizations/{world.organization_id}/agents",
            json={"member": str(world.alice.party_id)},
            headers=world.admin.auth,
        ),
        200,
    )
    assert organization["agents"] == [str(world.alice.party_id)]
    await expect(await api.post("/v1/transactions", json=body, headers=world.alice.auth), 201)
    account = await expect(
        await api.get(f"/v1/accounts/{organization_hours}", headers=world.alice.auth), 200
    )
    assert (account["balance"], account["owner"]["kind"]) == (-15, "organization")
    unknown = await expect(
        await api.post(
            f"/v1/communities/{world.slug}/organizations/{uuid.uuid4()}/agents",
            json={"member": str(world.alice.party_id)},
            headers=world.admin.auth,
        ),
        404,
    )
    assert unknown["code"] == "not_found"


async def test_api_clients_get_tokens_with_their_secret_and_act_within_scopes(
    api: ApiClient, world: World
) -> None:
    created = await expect(
        await api.post(
            f"/v1/communities/{world.slug}/clients",
            json={
                "name": "Shop",
                "organization": str(world.organization_id),
                "scopes": ["transactions:write", "accounts:read"],
            },
            headers=world.admin.auth,
        ),
        201,
    )
    assert len(created["client_secret"]) >= 40
    community = await expect(
        await api.get(f"/v1/communities/{world.slug}", headers=world.admin.auth), 200
    )
    community_text, _, own_id = created["client_id"].partition(".")
    assert community_text == community["id"]
    assert str(uuid.UUID(own_id)) == own_id
    token = await expect(
        await api.post(
            "/v1/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": created["client_id"],
                "client_secret": created["client_secret"],
            },
        ),
        200,
    )
    assert "refresh_token" not in token
    client_auth = {"Authorization": f"Bearer {token['access_token']}"}
    body = {
        **transfer(world, world.alice, world.bob, 5),
        "from": str(world.organization_accounts[HOURS]),
    }
    await expect(await api.post("/v1/transactions", json=body, headers=client_auth), 201)
    theirs = transfer(world, world.alice, world.bob, 5)
    await expect(await api.post("/v1/transactions", json=theirs, headers=client_auth), 403)
    no_scope = await expect(
        await api.get(f"/v1/communities/{world.slug}/trial-balance", headers=client_auth), 403
    )
    assert no_scope["code"] == "forbidden"
    wrong = await expect(
        await api.post(
            "/v1/auth/token",
            json={
                "grant_type": "client_credentials",
                "client_id": created["client_id"],
                "client_secret": "not the secret",
            },
        ),
        401,
    )
    assert wrong["code"] == "unauthenticated"
    listed = await expect(
        await api.get(f"/v1/communities/{world.slug}/clients", headers=world.admin.auth), 200
    )
    assert [item["client_id"] for item in listed["items"]] == [created["client_id"]]
    assert "client_secret" not in listed["items"][0]
    await expect(
        await api.delete(
            f"/v1/communities/{world.slug}/clients/{created['client_id']}", headers=world.admin.auth
        ),
        204,
    )
    revoked = {**body, "id": str(uuid.uuid4())}
    await expect(await api.post("/v1/transactions", json=revoked, headers=client_auth), 403)
    await expect(
        await api.post(
            "/v1/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": created["client_id"],
                "client_secret": created["client_secret"],
            },
        ),
        401,
    )


async def test_a_client_id_names_its_community_and_nothing_else_finds_the_client(
    api: ApiClient, world: World
) -> None:
    """The client_id is `<community id>.<client id>`: it gets tokens in the body or
    HTTP Basic; the bare id of a client made since, or its id under another
    community, gets none (the same refusal as a wrong secret); revoking takes the
    client_id or the bare id, never one naming another community."""
    made = []
    for name in ("Till", "Kiosk"):
        made.append(
            await expect(
                await api.post(
                    f"/v1/communities/{world.slug}/clients",
                    json={"name": name, "scopes": ["accounts:read"]},
                    headers=world.admin.auth,
                ),
                201,
            )
        )
    client_id, secret = made[0]["client_id"], made[0]["client_secret"]
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    await expect(
        await api.post(
            "/v1/auth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {basic}"},
        ),
        200,
    )
    community_id, _, own_id = client_id.partition(".")
    elsewhere = await expect(
        await api.post(
            "/v1/communities",
            json={"slug": f"e-{uuid.uuid4().hex[:6]}", "name": "Elsewhere"},
            headers=world.operator.auth,
        ),
        201,
    )
    for wrong in (own_id, f"{elsewhere['id']}.{own_id}", f"{own_id}.{community_id}"):
        refused = await expect(
            await api.post(
                "/v1/auth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": wrong,
                    "client_secret": secret,
                },
            ),
            401,
        )
        assert (refused["code"], refused["error"]) == ("unauthenticated", "invalid_grant")
    path = f"/v1/communities/{world.slug}/clients"
    for wrong in (f"{elsewhere['id']}.{own_id}", "not-a-client"):
        await expect(await api.delete(f"{path}/{wrong}", headers=world.admin.auth), 404)
    await expect(await api.delete(f"{path}/{own_id}", headers=world.admin.auth), 204)
    await expect(await api.delete(f"{path}/{made[1]['client_id']}", headers=world.admin.auth), 204)
    listed = await expect(await api.get(path, headers=world.admin.auth), 200)
    assert [item["client_id"] for item in made] == [item["client_id"] for item in listed["items"]]
    assert all(item["revoked_at"] is not None for item in listed["items"])


async def test_admins_change_limits_and_status_all_or_nothing(api: ApiClient, world: World) -> None:
    account_path = f"/v1/accounts/{world.alice.accounts[HOURS]}"
    await expect(
        await api.post(
            "/v1/transactions",
            json=transfer(world, world.alice, world.bob, 100),
            headers=world.alice.auth,
        ),
        201,
    )
    forbidden = await expect(
        await api.patch(account_path, json={"min_balance": -60}, headers=world.alice.auth), 403
    )
    assert forbidden["code"] == "forbidden"
    conflict = await expect(
        await api.patch(
            account_path, json={"min_balance": -60, "status": "frozen"}, headers=world.admin.auth
        ),
        409,
    )
    assert conflict["code"] == "limits_conflict_with_balance"
    unchanged = await expect(await api.get(account_path, headers=world.alice.auth), 200)
    assert (unchanged["min_balance"], unchanged["status"]) == (-600, "active")
    frozen = await expect(
        await api.patch(
            account_path, json={"min_balance": -120, "status": "frozen"}, headers=world.admin.auth
        ),
        200,
    )
    assert (frozen["min_balance"], frozen["status"]) == (-120, "frozen")
    refused = await expect(
        await api.post(
            "/v1/transactions",
            json=transfer(world, world.alice, world.bob, 1),
            headers=world.alice.auth,
        ),
        409,
    )
    assert refused["code"] == "account_frozen"
    nothing = await expect(await api.patch(account_path, json={}, headers=world.admin.auth), 422)
    assert nothing["code"] == "validation_error"
    not_empty = await expect(
        await api.patch(account_path, json={"status": "closed"}, headers=world.admin.auth), 409
    )
    assert not_empty["code"] == "account_not_empty"


async def test_me_shows_accounts_with_balances(api: ApiClient, world: World) -> None:
    await expect(
        await api.post(
            "/v1/transactions",
            json=transfer(world, world.alice, world.bob, 40, pending=True),
            headers=world.alice.auth,
        ),
        201,
    )
    me = await expect(await api.get("/v1/me", headers=world.alice.auth), 200)
    (membership,) = me["memberships"]
    hours = next(account for account in membership["accounts"] if account["unit"] == HOURS)
    assert (hours["balance"], hours["pending_debits"], hours["available"]) == (0, 40, -40)
    assert hours["owner"] == {
        "id": str(world.alice.party_id),
        "kind": "member",
        "display_name": "Alice",
    }


async def test_a_member_added_later_is_in_the_directory_with_accounts(
    api: ApiClient, world: World
) -> None:
    carol = await add_member(api, world.slug, world.admin, "Carol", "member")
    assert sorted(carol.accounts) == [GREEN, HOURS]
