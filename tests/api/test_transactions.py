"""Posting, reading, confirming, voiding and reversing transactions over HTTP."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from tests.api.conftest import ApiClient
from tests.api.world import GREEN, HOURS, World, add_member, expect, transfer


async def test_a_transfer_answers_201_then_200_with_the_same_body_on_retry(
    api: ApiClient, world: World
) -> None:
    """Idempotency by the client's id: same content, same answer, one transaction."""
    body = transfer(world, world.alice, world.bob, 90, memo="gardening", category="garden")
    first = await expect(
        await api.post("/v1/transactions", json=body, headers=world.alice.auth), 201
    )
    again = await expect(
        await api.post("/v1/transactions", json=body, headers=world.alice.auth), 200
    )
    assert first == again
    assert (first["state"], first["kind"], first["memo"]) == ("posted", "exchange", "gardening")
    assert [p["amount"] for p in first["postings"]] == [-90, 90]
    other = {**body, "amount": 91}
    conflict = await expect(
        await api.post("/v1/transactions", json=other, headers=world.alice.auth), 409
    )
    assert conflict["code"] == "transaction_id_conflict"
    account = await expect(
        await api.get(f"/v1/accounts/{world.bob.accounts[HOURS]}", headers=world.bob.auth), 200
    )
    assert (account["balance"], account["available"], account["unit"]) == (90, 90, HOURS)
    assert account["owner"]["display_name"] == "Bob"


async def test_pending_proposal_is_confirmed_by_the_payer(api: ApiClient, world: World) -> None:
    """'I helped Alice': Bob proposes, Alice's hours are reserved, Alice confirms."""
    body = transfer(world, world.alice, world.bob, 120, pending=True)
    created = await expect(
        await api.post("/v1/transactions", json=body, headers=world.bob.auth), 201
    )
    assert created["state"] == "pending"
    alice_account = await expect(
        await api.get(f"/v1/accounts/{world.alice.accounts[HOURS]}", headers=world.alice.auth), 200
    )
    assert (alice_account["balance"], alice_account["pending_debits"]) == (0, 120)
    refused = await expect(
        await api.post(f"/v1/transactions/{body['id']}/confirm", headers=world.bob.auth), 403
    )
    assert refused["code"] == "forbidden"
    confirmed = await expect(
        await api.post(f"/v1/transactions/{body['id']}/confirm", headers=world.alice.auth), 200
    )
    assert confirmed["state"] == "posted"
    assert [p["balance_after"] for p in confirmed["postings"]] == [-120, 120]
    # Each side reads who holds each account, whatever page of the directory it saw.
    for reader in (world.alice, world.bob):
        read = await expect(
            await api.get(f"/v1/transactions/{body['id']}", headers=reader.auth), 200
        )
        assert [(p["owner"]["display_name"], p["owner"]["kind"]) for p in read["postings"]] == [
            ("Alice", "member"),
            ("Bob", "member"),
        ]
    assert [p["owner"]["display_name"] for p in confirmed["postings"]] == ["Alice", "Bob"]
    not_pending = await expect(
        await api.post(f"/v1/transactions/{body['id']}/void", headers=world.alice.auth), 409
    )
    assert not_pending["code"] == "not_pending"


async def test_void_by_either_party_and_reverse_by_an_admin(api: ApiClient, world: World) -> None:
    pending = transfer(world, world.alice, world.bob, 30, pending=True)
    await expect(await api.post("/v1/transactions", json=pending, headers=world.bob.auth), 201)
    voided = await expect(
        await api.post(f"/v1/transactions/{pending['id']}/void", headers=world.alice.auth), 200
    )
    assert voided["state"] == "voided"
    posted = transfer(world, world.alice, world.bob, 45)
    await expect(await api.post("/v1/transactions", json=posted, headers=world.alice.auth), 201)
    forbidden = await expect(
        await api.post(f"/v1/transactions/{posted['id']}/reverse", headers=world.alice.auth), 403
    )
    assert forbidden["code"] == "forbidden"
    reversal = await expect(
        await api.post(
            f"/v1/transactions/{posted['id']}/reverse",
            json={"memo": "typo"},
            headers=world.admin.auth,
        ),
        201,
    )
    assert (reversal["kind"], reversal["reverses"]) == ("reversal", posted["id"])
    original = await expect(
        await api.get(f"/v1/transactions/{posted['id']}", headers=world.treasurer.auth), 200
    )
    assert original["reversed_by"] == reversal["id"]


async def test_batches_atomic_and_independent(api: ApiClient, world: World) -> None:
    good = transfer(world, world.alice, world.bob, 10)
    too_much = transfer(world, world.alice, world.bob, 10_000)
    refused = await expect(
        await api.post(
            "/v1/transactions/batch",
            json={"atomic": True, "transactions": [good, too_much]},
            headers=world.alice.auth,
        ),
        409,
    )
    assert (refused["code"], refused["index"]) == ("limit_exceeded", 1)
    missing = await expect(
        await api.get(f"/v1/transactions/{good['id']}", headers=world.alice.auth), 404
    )
    assert missing["code"] == "not_found"
    mixed = await expect(
        await api.post(
            "/v1/transactions/batch",
            json={"atomic": False, "transactions": [good, too_much]},
            headers=world.alice.auth,
        ),
        201,
    )
    assert [item["status"] for item in mixed["items"]] == [201, 409]
    assert mixed["items"][1]["problem"]["code"] == "limit_exceeded"


async def test_amounts_that_are_not_positive_integers_are_validation_errors(
    api: ApiClient, world: World
) -> None:
    """Zero, negative, floats, strings, exponents, beyond 2^53: refused, nothing written."""
    for amount in (0, -5, 1.5, 10.0, "10", 1e3, 2**53, 2**63, True, None):
        body = transfer(world, world.alice, world.bob, 1)
        body["amount"] = amount
        problem = await expect(
            await api.post("/v1/transactions", json=body, headers=world.alice.auth), 422
        )
        assert problem["code"] == "validation_error", amount
        await expect(await api.get(f"/v1/transactions/{body['id']}", headers=world.alice.auth), 404)


# Amounts as JSON text: anything but a plain positive integer up to 2^53 - 1.
RAW_AMOUNTS = (
    "0",
    "-0",
    "-5",
    "1.5",
    "10.0",
    "1e3",
    "1E3",
    "1e+3",
    "100e-2",
    "9007199254740992",
    "9223372036854775807",
    "9223372036854775808",
    "1" + "0" * 40,
    '"10"',
    '"1e3"',
    "true",
    "null",
    "NaN",
    "Infinity",
    "-Infinity",
    "[10]",
    '{"value": 10}',
)


async def test_amounts_in_any_other_json_form_are_refused_and_change_nothing(
    api: ApiClient, world: World
) -> None:
    """Sent as raw JSON, alone or in an atomic batch: exponent notation, floats,
    strings, booleans, NaN and infinities, above 2^53 - 1 and above BIGINT, zero
    and negatives are all 422 validation_error; nothing is written and the
    payer's balance and reservations are as before."""
    account_path = f"/v1/accounts/{world.alice.accounts[HOURS]}"
    before = await expect(await api.get(account_path, headers=world.alice.auth), 200)
    marker = '"__amount__"'
    for raw in RAW_AMOUNTS:
        single = transfer(world, world.alice, world.bob, 1, pending=True)
        single["amount"] = "__amount__"
        batched = [transfer(world, world.alice, world.bob, 1) for _ in range(2)]
        batched[1]["amount"] = "__amount__"
        batch = {"atomic": True, "transactions": batched}
        sent: list[tuple[str, dict[str, Any], list[str]]] = [
            ("/v1/transactions", single, [single["id"]]),
            ("/v1/transactions/batch", batch, [item["id"] for item in batched]),
        ]
        for path, body, ids in sent:
            text = json.dumps(body).replace(marker, raw)
            problem = await expect(
                await api.post(
                    path,
                    data=text,
                    headers={**world.alice.auth, "Content-Type": "application/json"},
                ),
                422,
            )
            assert problem["code"] == "validation_error", (path, raw)
            for id_ in ids:
                await expect(
                    await api.get(f"/v1/transactions/{id_}", headers=world.alice.auth), 404
                )
    after = await expect(await api.get(account_path, headers=world.alice.auth), 200)
    assert after == before


async def test_statement_journal_and_trial_balance(api: ApiClient, world: World) -> None:
    ids = []
    for amount in (10, 20, 30):
        body = transfer(world, world.alice, world.bob, amount)
        ids.append(body["id"])
        await expect(await api.post("/v1/transactions", json=body, headers=world.alice.auth), 201)
    statement = await expect(
        await api.get(
            f"/v1/accounts/{world.bob.accounts[HOURS]}/entries?limit=2", headers=world.bob.auth
        ),
        200,
    )
    assert [line["balance_after"] for line in statement["items"]] == [60, 30]
    older = await expect(
        await api.get(
            f"/v1/accounts/{world.bob.accounts[HOURS]}/entries",
            params={"limit": 2, "cursor": statement["next_cursor"]},
            headers=world.bob.auth,
        ),
        200,
    )
    assert ([line["balance_after"] for line in older["items"]], older["next_cursor"]) == (
        [10],
        None,
    )
    journal = await expect(
        await api.get(
            f"/v1/communities/{world.slug}/transactions?limit=2", headers=world.treasurer.auth
        ),
        200,
    )
    page2 = await expect(
        await api.get(
            f"/v1/communities/{world.slug}/transactions",
            params={"limit": 2, "cursor": journal["next_cursor"]},
            headers=world.treasurer.auth,
        ),
        200,
    )
    assert [item["id"] for item in journal["items"] + page2["items"]] == ids[::-1]
    balance = await expect(
        await api.get(f"/v1/communities/{world.slug}/trial-balance", headers=world.treasurer.auth),
        200,
    )
    assert balance["balanced"] is True
    hours = next(unit for unit in balance["units"] if unit["unit"] == HOURS)
    assert (hours["sum_of_balances"], hours["total_positive_balances"]) == (0, 60)
    await expect(
        await api.get(f"/v1/communities/{world.slug}/trial-balance", headers=world.alice.auth), 403
    )


async def test_an_unknown_transaction_is_not_found(api: ApiClient, world: World) -> None:
    problem = await expect(
        await api.get(f"/v1/transactions/{uuid.uuid4()}", headers=world.alice.auth), 404
    )
    assert problem["code"] == "not_found"


async def test_reversal_codes_over_http(api: ApiClient, world: World) -> None:
    """A reversal retried answers the same reversal; another reversal id is
    already_reversed; a pending transaction is not_posted; a reversal is not
    reversible."""
    posted = transfer(world, world.alice, world.bob, 20)
    await expect(await api.post("/v1/transactions", json=posted, headers=world.alice.auth), 201)
    path = f"/v1/transactions/{posted['id']}/reverse"
    first = await expect(await api.post(path, headers=world.admin.auth), 201)
    again = await expect(await api.post(path, headers=world.admin.auth), 200)
    assert first == again
    other = await expect(
        await api.post(path, json={"id": str(uuid.uuid4())}, headers=world.admin.auth), 409
    )
    assert other["code"] == "already_reversed"
    reversal_path = f"/v1/transactions/{first['id']}/reverse"
    assert (await expect(await api.post(reversal_path, headers=world.admin.auth), 409))[
        "code"
    ] == "not_reversible"
    pending = transfer(world, world.alice, world.bob, 5, pending=True)
    await expect(await api.post("/v1/transactions", json=pending, headers=world.alice.auth), 201)
    not_posted = await expect(
        await api.post(f"/v1/transactions/{pending['id']}/reverse", headers=world.admin.auth), 409
    )
    assert not_posted["code"] == "not_posted"


async def test_an_expired_pending_transaction_cannot_be_confirmed(
    api: ApiClient, world: World
) -> None:
    """Past its expiry a pending transaction reads as expired, frees its
    reservation and refuses confirmation, whether or not the sweeper ran."""
    body = transfer(world, world.alice, world.bob, 50, pending=True, expires_in=1)
    created = await expect(
        await api.post("/v1/transactions", json=body, headers=world.alice.auth), 201
    )
    assert created["expires_at"] is not None
    await asyncio.sleep(1.2)
    read = await expect(
        await api.get(f"/v1/transactions/{body['id']}", headers=world.alice.auth), 200
    )
    assert read["state"] == "expired"
    refused = await expect(
        await api.post(f"/v1/transactions/{body['id']}/confirm", headers=world.alice.auth), 409
    )
    assert refused["code"] == "not_pending"
    account = await expect(
        await api.get(f"/v1/accounts/{world.alice.accounts[HOURS]}", headers=world.alice.auth), 200
    )
    assert (account["balance"], account["pending_debits"]) == (0, 0)


async def test_a_member_cannot_post_a_transaction_debiting_someone_else(
    api: ApiClient, world: World
) -> None:
    """Bob cannot take Alice's hours without her: posted, it is forbidden (nothing
    written); only a pending proposal, which Alice must confirm, is allowed."""
    body = transfer(world, world.alice, world.bob, 60)
    refused = await expect(
        await api.post("/v1/transactions", json=body, headers=world.bob.auth), 403
    )
    assert refused["code"] == "forbidden"
    await expect(await api.get(f"/v1/transactions/{body['id']}", headers=world.bob.auth), 404)
    postings = {
        "id": str(uuid.uuid4()),
        "community": world.slug,
        "postings": [
            {"account": str(world.alice.accounts[HOURS]), "amount": -10},
            {"account": str(world.bob.accounts[HOURS]), "amount": 10},
        ],
    }
    assert (
        await expect(await api.post("/v1/transactions", json=postings, headers=world.bob.auth), 403)
    )["code"] == "forbidden"
    await expect(await api.post("/v1/transactions", json=postings, headers=world.alice.auth), 201)


async def test_the_ledgers_refusals_keep_their_codes_over_http(
    api: ApiClient, world: World
) -> None:
    """Each rule the ledger names answers its own code: the same account twice,
    postings that do not balance, a zero posting, accounts of another unit, and a
    closed account."""
    same = transfer(world, world.alice, world.alice, 5)
    assert (
        await expect(await api.post("/v1/transactions", json=same, headers=world.alice.auth), 422)
    )["code"] == "accounts_must_be_different"

    def postings(*legs: tuple[uuid.UUID, int], unit: str | None = None) -> dict[str, object]:
        body: dict[str, object] = {
            "id": str(uuid.uuid4()),
            "community": world.slug,
            "postings": [{"account": str(account), "amount": amount} for account, amount in legs],
        }
        if unit is not None:
            body["unit"] = unit
        return body

    alice_hours, bob_hours = world.alice.accounts[HOURS], world.bob.accounts[HOURS]
    cases = [
        (postings((alice_hours, -5), (bob_hours, 4)), "postings_must_balance"),
        (postings((alice_hours, 0), (bob_hours, 0)), "amount_must_be_positive"),
        (postings((alice_hours, -5), (bob_hours, 5), unit=GREEN), "unit_mismatch"),
    ]
    for body, code in cases:
        problem = await expect(
            await api.post("/v1/transactions", json=body, headers=world.alice.auth), 422
        )
        assert problem["code"] == code, body
    carol = await add_member(api, world.slug, world.admin, "Carol", "member")
    await expect(
        await api.patch(
            f"/v1/accounts/{carol.accounts[HOURS]}",
            json={"status": "closed"},
            headers=world.admin.auth,
        ),
        200,
    )
    closed = transfer(world, world.alice, carol, 5)
    problem = await expect(
        await api.post("/v1/transactions", json=closed, headers=world.alice.auth), 409
    )
    assert problem["code"] == "account_closed"
