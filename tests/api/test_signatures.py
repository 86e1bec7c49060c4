"""Member-held keys over HTTP: a key made on the member's device signs the payer's
intent and the payee's acknowledgement; the server checks every byte, refuses
with a named error (writing nothing), and keeps and logs what was signed."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from tests.api.conftest import ApiClient, scrape
from tests.api.world import HOURS, Person, World, expect, transfer
from timebank.keys import DATABASE_POOL, LEDGER
from timebank.log.audit import check_logs
from timebank.signing import intents
from timebank.signing.keys import KeyStore


class DeviceKey:
    """A key as a phone holds it: the private half never leaves this object."""

    def __init__(self, algorithm: str = "ed25519") -> None:
        self.algorithm = algorithm
        if algorithm == "ed25519":
            self._ed25519 = Ed25519PrivateKey.generate()
            self.public_key = self._ed25519.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
        else:
            self._p256 = ec.generate_private_key(ec.SECP256R1())
            self.public_key = self._p256.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        self.key_id = intents.public_key_id(intents.KeyAlgorithm(algorithm), self.public_key)

    def sign(self, message: bytes) -> str:
        if self.algorithm == "ed25519":
            return intents.b64url_encode(self._ed25519.sign(message))
        r, s = decode_dss_signature(self._p256.sign(message, ec.ECDSA(hashes.SHA256())))
        return intents.b64url_encode(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def key_registration(
    world: World, algorithm: str, public_key: bytes, **label: str
) -> dict[str, str]:
    """The body of `POST /v1/me/keys` for a public key (and, if given, its label)."""
    return {
        "community": world.slug,
        "algorithm": algorithm,
        "public_key": intents.b64url_encode(public_key),
        **label,
    }


async def register(api: ApiClient, world: World, person: Person, key: DeviceKey) -> None:
    body = key_registration(world, key.algorithm, key.public_key, label="my phone")
    created = await expect(await api.post("/v1/me/keys", json=body, headers=person.auth), 201)
    assert created["key_id"] == key.key_id


async def origin_of(api: ApiClient, world: World) -> str:
    checkpoint = await expect(
        await api.get(f"/v1/communities/{world.slug}/log/checkpoint", headers=world.alice.auth),
        200,
    )
    return str(checkpoint["origin"])


def signed_transfer(
    world: World,
    origin: str,
    key: DeviceKey,
    payer: Person,
    payee: Person,
    amount: int,
    *,
    intent_overrides: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body = transfer(world, payer, payee, amount, **extra)
    fields: dict[str, Any] = {
        "ledger": origin,
        "tx_id": uuid.UUID(body["id"]),
        "payer": payer.accounts[HOURS],
        "payee": payee.accounts[HOURS],
        "unit": HOURS,
        "amount": amount,
        "memo": body.get("memo", ""),
        "not_after": datetime.now(UTC) + timedelta(minutes=5),
        "key_id": key.key_id,
        **(intent_overrides or {}),
    }
    intent = intents.make_transfer_intent(**fields)
    body["signed"] = {"intent": intents.b64url_encode(intent), "signature": key.sign(intent)}
    return body


async def test_a_signed_transfer_is_kept_and_logged_with_its_signature(
    api: ApiClient, world: World
) -> None:
    key = DeviceKey()
    await register(api, world, world.alice, key)
    origin = await origin_of(api, world)
    body = signed_transfer(world, origin, key, world.alice, world.bob, 30, memo="jardin")
    created = await expect(
        await api.post("/v1/transactions", json=body, headers=world.alice.auth), 201
    )
    again = await expect(
        await api.post("/v1/transactions", json=body, headers=world.alice.auth), 200
    )
    assert created == again
    read = await expect(
        await api.get(f"/v1/transactions/{body['id']}", headers=world.bob.auth), 200
    )
    (signature,) = read["signatures"]
    assert (signature["purpose"], signature["key_id"]) == ("intent", key.key_id)
    assert signature["signed"] == body["signed"]["intent"]
    async with api.app[DATABASE_POOL].acquire() as connection:
        entry = await connection.fetchval(
            "SELECT convert_from(entry, 'UTF8') FROM log_entries"
            " WHERE community_id = (SELECT id FROM communities WHERE slug = $1)"
            " AND convert_from(entry, 'UTF8') LIKE '%' || $2 || '%'",
            world.slug,
            body["id"],
        )
        assert f'"signature":"{body["signed"]["signature"]}"' in entry
        assert not [v for v in await check_logs(connection) if v.rows[0]["community"] == world.slug]


async def test_every_bad_signature_is_refused_by_name_and_nothing_is_written(
    api: ApiClient, world: World
) -> None:
    key = DeviceKey()
    await register(api, world, world.alice, key)
    bob_key = DeviceKey()
    await register(api, world, world.bob, bob_key)
    origin = await origin_of(api, world)
    past = datetime.now(UTC) - timedelta(minutes=1)
    cases: list[tuple[dict[str, Any], int, str]] = [
        (
            signed_transfer(world, "elsewhere/x", key, world.alice, world.bob, 5),
            422,
            "intent_wrong_ledger",
        ),
        (
            signed_transfer(
                world, origin, key, world.alice, world.bob, 5, intent_overrides={"amount": 6}
            ),
            422,
            "intent_mismatch",
        ),
        (
            signed_transfer(
                world, origin, key, world.alice, world.bob, 5, intent_overrides={"not_after": past}
            ),
            422,
            "intent_expired",
        ),
        (
            signed_transfer(world, origin, bob_key, world.alice, world.bob, 5),
            422,
            "key_not_allowed",
        ),
    ]
    forged = signed_transfer(world, origin, key, world.alice, world.bob, 5)
    forged["signed"]["signature"] = DeviceKey().sign(b"something else")
    cases.append((forged, 422, "signature_invalid"))
    unknown = DeviceKey()
    cases.append(
        (signed_transfer(world, origin, unknown, world.alice, world.bob, 5), 422, "key_unknown")
    )
    not_canonical = signed_transfer(world, origin, key, world.alice, world.bob, 5)
    spaced = intents.b64url_decode(not_canonical["signed"]["intent"]).replace(b",", b", ", 1)
    not_canonical["signed"] = {
        "intent": intents.b64url_encode(spaced),
        "signature": key.sign(spaced),
    }
    cases.append((not_canonical, 422, "signature_malformed"))
    for body, status, code in cases:
        problem = await expect(
            await api.post("/v1/transactions", json=body, headers=world.alice.auth), status
        )
        assert problem["code"] == code, code
        await expect(await api.get(f"/v1/transactions/{body['id']}", headers=world.alice.auth), 404)
    await expect(
        await api.delete(
            f"/v1/communities/{world.slug}/keys/{key.key_id}", headers=world.alice.auth
        ),
        204,
    )
    revoked = signed_transfer(world, origin, key, world.alice, world.bob, 5)
    problem = await expect(
        await api.post("/v1/transactions", json=revoked, headers=world.alice.auth), 409
    )
    assert problem["code"] == "key_revoked"


async def test_a_required_policy_refuses_unsigned_member_payments(
    api: ApiClient, world: World
) -> None:
    await expect(
        await api.patch(
            f"/v1/communities/{world.slug}",
            json={"signatures": "required"},
            headers=world.admin.auth,
        ),
        200,
    )
    community = await expect(
        await api.get(f"/v1/communities/{world.slug}", headers=world.alice.auth), 200
    )
    assert community["policies"]["signatures"] == "required"
    unsigned = transfer(world, world.alice, world.bob, 5)
    problem = await expect(
        await api.post("/v1/transactions", json=unsigned, headers=world.alice.auth), 422
    )
    assert problem["code"] == "signature_required"
    key = DeviceKey("p256")
    await register(api, world, world.alice, key)
    signed = signed_transfer(world, await origin_of(api, world), key, world.alice, world.bob, 5)
    await expect(await api.post("/v1/transactions", json=signed, headers=world.alice.auth), 201)


async def test_the_payee_accepts_a_signed_pending_payment_with_a_signed_ack(
    api: ApiClient, world: World
) -> None:
    alice_key, bob_key = DeviceKey(), DeviceKey()
    await register(api, world, world.alice, alice_key)
    await register(api, world, world.bob, bob_key)
    origin = await origin_of(api, world)
    body = signed_transfer(world, origin, alice_key, world.alice, world.bob, 40, pending=True)
    await expect(await api.post("/v1/transactions", json=body, headers=world.alice.auth), 201)
    intent = intents.b64url_decode(body["signed"]["intent"])

    def ack(key: DeviceKey, decision: intents.AckDecision) -> dict[str, Any]:
        signed = intents.make_ack(
            ledger=origin,
            tx_id=uuid.UUID(body["id"]),
            tx_hash=intents.sha256_hex(intent),
            decision=decision,
            key_id=key.key_id,
        )
        return {"signed": {"ack": intents.b64url_encode(signed), "signature": key.sign(signed)}}

    path = f"/v1/transactions/{body['id']}/confirm"
    wrong_key = await expect(
        await api.post(
            path, json=ack(alice_key, intents.AckDecision.ACCEPT), headers=world.bob.auth
        ),
        422,
    )
    assert wrong_key["code"] == "key_not_allowed"
    declined = await expect(
        await api.post(
            path, json=ack(bob_key, intents.AckDecision.DECLINE), headers=world.bob.auth
        ),
        422,
    )
    assert declined["code"] == "signature_malformed"
    confirmed = await expect(
        await api.post(path, json=ack(bob_key, intents.AckDecision.ACCEPT), headers=world.bob.auth),
        200,
    )
    assert confirmed["state"] == "posted"
    assert sorted(s["purpose"] for s in confirmed["signatures"]) == ["ack", "intent"]
    async with api.app[DATABASE_POOL].acquire() as connection:
        assert not [v for v in await check_logs(connection) if v.rows[0]["community"] == world.slug]


async def test_a_key_of_small_order_is_not_registered(api: ApiClient, world: World) -> None:
    """The neutral element as an Ed25519 key: anyone could sign in its owner's name
    (timebank/signing/edwards25519.py), so it is refused and not registered."""
    identity = (1).to_bytes(32, "little")
    refused = await expect(
        await api.post(
            "/v1/me/keys",
            json=key_registration(world, "ed25519", identity),
            headers=world.alice.auth,
        ),
        422,
    )
    assert refused["code"] == "signature_malformed"
    assert "small order" in refused["detail"]
    mine = await expect(
        await api.get(f"/v1/me/keys?community={world.slug}", headers=world.alice.auth), 200
    )
    assert mine["items"] == []


async def test_keys_are_listed_and_registered_once(api: ApiClient, world: World) -> None:
    key = DeviceKey()
    await register(api, world, world.alice, key)
    again = await expect(
        await api.post(
            "/v1/me/keys",
            json=key_registration(world, "ed25519", key.public_key),
            headers=world.alice.auth,
        ),
        409,
    )
    assert again["code"] == "already_exists"
    mine = await expect(
        await api.get(f"/v1/me/keys?community={world.slug}", headers=world.alice.auth), 200
    )
    assert [(item["key_id"], item["label"], item["revoked_at"]) for item in mine["items"]] == [
        (key.key_id, "my phone", None)
    ]
    bad = await expect(
        await api.post(
            "/v1/me/keys",
            json=key_registration(world, "p256", b"\x04" + b"\x01" * 64),
            headers=world.alice.auth,
        ),
        422,
    )
    assert bad["code"] == "signature_malformed"
    refused = await expect(
        await api.delete(f"/v1/communities/{world.slug}/keys/{key.key_id}", headers=world.bob.auth),
        403,
    )
    assert refused["code"] == "forbidden"
    await expect(
        await api.delete(
            f"/v1/communities/{world.slug}/keys/{key.key_id}", headers=world.admin.auth
        ),
        204,
    )


async def test_a_forged_logged_signature_is_caught_by_check(api: ApiClient, world: World) -> None:
    """A signature rewritten in the log (guard triggers off) fails the replay."""
    key = DeviceKey()
    await register(api, world, world.alice, key)
    body = signed_transfer(world, await origin_of(api, world), key, world.alice, world.bob, 7)
    await expect(await api.post("/v1/transactions", json=body, headers=world.alice.auth), 201)
    forged = DeviceKey().sign(b"anything")
    async with api.app[DATABASE_POOL].acquire() as connection:
        async with connection.transaction():
            await connection.execute("SET LOCAL session_replication_role = replica")
            await connection.execute(
                "UPDATE log_entries SET entry = convert_to(replace(convert_from(entry, 'UTF8'),"
                " $2, $3), 'UTF8')"
                " WHERE community_id = (SELECT id FROM communities WHERE slug = $1)",
                world.slug,
                body["signed"]["signature"],
                forged,
            )
        problems = [
            row["problem"]
            for violation in await check_logs(connection)
            for row in violation.rows
            if row["community"] == world.slug
        ]
    assert len(problems) == 1
    assert str(problems[0]).endswith("a signature does not verify")


async def test_signed_transfers_posted_together_keep_only_the_signatures_of_what_they_wrote(
    api: ApiClient, world: World
) -> None:
    """Signed transfers arriving at once share database calls: each gets its own
    answer; one refused by its limit keeps no signature; one found written before
    (unsigned) stays as it was; every written one is logged with its signature."""
    alice_key, bob_key = DeviceKey(), DeviceKey()
    await register(api, world, world.alice, alice_key)
    await register(api, world, world.bob, bob_key)
    origin = await origin_of(api, world)
    earlier = transfer(world, world.alice, world.bob, 5)
    await expect(await api.post("/v1/transactions", json=earlier, headers=world.alice.auth), 201)
    again = signed_transfer(
        world,
        origin,
        alice_key,
        world.alice,
        world.bob,
        5,
        intent_overrides={"tx_id": uuid.UUID(earlier["id"])},
    )
    again["id"] = earlier["id"]
    bodies = [
        *(signed_transfer(world, origin, alice_key, world.alice, world.bob, 10) for _ in range(8)),
        *(signed_transfer(world, origin, bob_key, world.bob, world.alice, 7) for _ in range(8)),
        signed_transfer(world, origin, bob_key, world.bob, world.alice, 100_000),
        again,
    ]
    responses = await asyncio.gather(
        *(
            api.post(
                "/v1/transactions",
                json=body,
                headers=(
                    world.alice if body["from"] == str(world.alice.accounts[HOURS]) else world.bob
                ).auth,
            )
            for body in bodies
        )
    )
    statuses = [response.status for response in responses]
    assert statuses == [201] * 16 + [409, 200]
    async with api.app[DATABASE_POOL].acquire() as connection:
        # Signatures are kept in the log entries only (sql/0023).
        signed_ids = {
            str(row["transaction_id"])
            for row in await connection.fetch(
                "SELECT transaction_id FROM log_entries"
                " WHERE community_id = (SELECT id FROM communities WHERE slug = $1)"
                " AND transaction_id IS NOT NULL"
                " AND convert_from(entry, 'UTF8')::jsonb ? 'signatures'",
                world.slug,
            )
        }
        assert signed_ids == {body["id"] for body in bodies[:16]}
        assert not [v for v in await check_logs(connection) if v.rows[0]["community"] == world.slug]
    # Every signed one went through the signed calls (the refused and the found
    # ones too), the earlier unsigned one through an unsigned call.
    metrics = await scrape(api)
    signed, unsigned = (("kind", "signed"),), (("kind", "unsigned"),)
    assert metrics[("timebank_ledger_call_transactions_sum", signed)] == len(bodies)
    assert 1 <= metrics[("timebank_ledger_call_transactions_count", signed)] <= len(bodies)
    assert metrics[("timebank_ledger_call_transactions_sum", unsigned)] == 1


async def test_a_key_revoked_elsewhere_signs_nothing_even_while_cached_here(
    api: ApiClient, world: World
) -> None:
    """The service keeps live keys a moment; a revocation made through another
    process is still caught by the database when the signed transfer is written,
    and the log never holds a signature after its key's revocation."""
    key = DeviceKey()
    await register(api, world, world.alice, key)
    origin = await origin_of(api, world)
    first = signed_transfer(world, origin, key, world.alice, world.bob, 5)
    await expect(await api.post("/v1/transactions", json=first, headers=world.alice.auth), 201)
    other_process = KeyStore(api.app[DATABASE_POOL])
    community_id = (await api.app[LEDGER].community_by_slug(world.slug)).id
    await other_process.revoke(community_id, key.key_id)
    second = signed_transfer(world, origin, key, world.alice, world.bob, 5)
    refused = await expect(
        await api.post("/v1/transactions", json=second, headers=world.alice.auth), 409
    )
    assert refused["code"] == "key_revoked"
    async with api.app[DATABASE_POOL].acquire() as connection:
        assert not await connection.fetchval(
            "SELECT count(*) FROM transactions WHERE id = $1", uuid.UUID(second["id"])
        )
        assert not [v for v in await check_logs(connection) if v.rows[0]["community"] == world.slug]


def confirming_intent(
    world: World,
    origin: str,
    key: DeviceKey,
    proposal: dict[str, Any],
    **overrides: Any,
) -> dict[str, Any]:
    """The payer's signed intent confirming a payee's proposal (alice pays bob)."""
    fields: dict[str, Any] = {
        "ledger": origin,
        "tx_id": uuid.UUID(proposal["id"]),
        "payer": world.alice.accounts[HOURS],
        "payee": world.bob.accounts[HOURS],
        "unit": HOURS,
        "amount": proposal["amount"],
        "memo": proposal.get("memo", ""),
        "not_after": datetime.now(UTC) + timedelta(minutes=5),
        "key_id": key.key_id,
        **overrides,
    }
    intent = intents.make_transfer_intent(**fields)
    return {"signed": {"intent": intents.b64url_encode(intent), "signature": key.sign(intent)}}


async def require_signatures(api: ApiClient, world: World) -> None:
    await expect(
        await api.patch(
            f"/v1/communities/{world.slug}",
            json={"signatures": "required"},
            headers=world.admin.auth,
        ),
        200,
    )


async def resolution_entry(api: ApiClient, world: World, transaction_id: str) -> str:
    async with api.app[DATABASE_POOL].acquire() as connection:
        entry = await connection.fetchval(
            "SELECT convert_from(entry, 'UTF8') FROM log_entries"
            " WHERE community_id = (SELECT id FROM communities WHERE slug = $1)"
            " AND transaction_id = $2 AND convert_from(entry, 'UTF8') LIKE '%\"resolution\"%'",
            world.slug,
            uuid.UUID(transaction_id),
        )
    return str(entry)


async def test_the_payer_confirms_a_proposal_with_a_signed_intent_where_required(
    api: ApiClient, world: World
) -> None:
    """'I helped someone' where signatures are required: the payee proposes, the
    payer's unsigned confirmation is refused (signature_required), a wrong intent
    is refused by name, and the payer's signed intent posts it; the intent is
    kept, logged with the resolution and replayed clean."""
    await require_signatures(api, world)
    alice_key, bob_key = DeviceKey(), DeviceKey()
    await register(api, world, world.alice, alice_key)
    await register(api, world, world.bob, bob_key)
    origin = await origin_of(api, world)
    proposal = transfer(world, world.alice, world.bob, 45, pending=True, memo="garden")
    await expect(await api.post("/v1/transactions", json=proposal, headers=world.bob.auth), 201)
    path = f"/v1/transactions/{proposal['id']}/confirm"
    refusals: list[tuple[dict[str, Any] | None, str]] = [
        (None, "signature_required"),
        (confirming_intent(world, origin, alice_key, proposal, amount=46), "intent_mismatch"),
        (confirming_intent(world, origin, alice_key, proposal, memo="other"), "intent_mismatch"),
        (confirming_intent(world, "elsewhere/x", alice_key, proposal), "intent_wrong_ledger"),
        (confirming_intent(world, origin, bob_key, proposal), "key_not_allowed"),
    ]
    forged = confirming_intent(world, origin, alice_key, proposal)
    forged["signed"]["signature"] = alice_key.sign(b"something else")
    refusals.append((forged, "signature_invalid"))
    ack_shaped = {"signed": {"ack": forged["signed"]["intent"], "signature": alice_key.sign(b"x")}}
    refusals.append((ack_shaped, "signature_malformed"))
    for body, code in refusals:
        problem = await expect(await api.post(path, json=body, headers=world.alice.auth), 422)
        assert problem["code"] == code, code
    still = await expect(await api.get(path[: -len("/confirm")], headers=world.alice.auth), 200)
    assert (still["state"], still["signatures"]) == ("pending", [])
    signed = confirming_intent(world, origin, alice_key, proposal)
    confirmed = await expect(await api.post(path, json=signed, headers=world.alice.auth), 200)
    assert confirmed["state"] == "posted"
    (signature,) = confirmed["signatures"]
    assert (signature["purpose"], signature["key_id"]) == ("intent", alice_key.key_id)
    assert signature["signed"] == signed["signed"]["intent"]
    again = await expect(await api.post(path, json=signed, headers=world.alice.auth), 200)
    assert again == confirmed
    entry = await resolution_entry(api, world, proposal["id"])
    assert f'"signature":"{signed["signed"]["signature"]}"' in entry
    assert '"purpose":"intent"' in entry
    async with api.app[DATABASE_POOL].acquire() as connection:
        assert not [v for v in await check_logs(connection) if v.rows[0]["community"] == world.slug]


async def test_a_payers_signed_confirmation_is_optional_and_only_for_unsigned_proposals(
    api: ApiClient, world: World
) -> None:
    """Where signatures are optional the payer may confirm unsigned (the resolution
    carries no signature); a payer's intent is refused on a transaction that
    already carries the payer's signed intent, and the payee cannot send one."""
    alice_key = DeviceKey()
    await register(api, world, world.alice, alice_key)
    origin = await origin_of(api, world)
    unsigned = transfer(world, world.alice, world.bob, 5, pending=True)
    await expect(await api.post("/v1/transactions", json=unsigned, headers=world.bob.auth), 201)
    path = f"/v1/transactions/{unsigned['id']}/confirm"
    await expect(await api.post(path, headers=world.alice.auth), 200)
    assert '"signatures"' not in await resolution_entry(api, world, unsigned["id"])
    proposal = transfer(world, world.alice, world.bob, 6, pending=True)
    await expect(await api.post("/v1/transactions", json=proposal, headers=world.bob.auth), 201)
    by_payee = confirming_intent(world, origin, alice_key, proposal)
    problem = await expect(
        await api.post(
            f"/v1/transactions/{proposal['id']}/void", json=by_payee, headers=world.bob.auth
        ),
        422,
    )
    assert problem["code"] == "signature_malformed"
    signed_post = signed_transfer(world, origin, alice_key, world.alice, world.bob, 7, pending=True)
    await expect(
        await api.post("/v1/transactions", json=signed_post, headers=world.alice.auth), 201
    )
    twice = confirming_intent(
        world,
        origin,
        alice_key,
        {"id": signed_post["id"], "amount": 7},
        not_after=datetime.now(UTC) + timedelta(minutes=10),
    )
    problem = await expect(
        await api.post(
            f"/v1/transactions/{signed_post['id']}/confirm", json=twice, headers=world.alice.auth
        ),
        422,
    )
    assert problem["code"] == "signature_malformed"
    async with api.app[DATABASE_POOL].acquire() as connection:
        assert not [v for v in await check_logs(connection) if v.rows[0]["community"] == world.slug]


async def test_a_forged_confirming_intent_in_the_log_is_caught_by_check(
    api: ApiClient, world: World
) -> None:
    """A payer's confirming intent rewritten in the log (guard triggers off) fails
    the replay at the resolution entry."""
    key = DeviceKey()
    await register(api, world, world.alice, key)
    origin = await origin_of(api, world)
    proposal = transfer(world, world.alice, world.bob, 8, pending=True)
    await expect(await api.post("/v1/transactions", json=proposal, headers=world.bob.auth), 201)
    signed = confirming_intent(world, origin, key, proposal)
    await expect(
        await api.post(
            f"/v1/transactions/{proposal['id']}/confirm", json=signed, headers=world.alice.auth
        ),
        200,
    )
    forged = DeviceKey().sign(b"anything")
    async with api.app[DATABASE_POOL].acquire() as connection:
        async with connection.transaction():
            await connection.execute("SET LOCAL session_replication_role = replica")
            await connection.execute(
                "UPDATE log_entries SET entry = convert_to(replace(convert_from(entry, 'UTF8'),"
                " $2, $3), 'UTF8')"
                " WHERE community_id = (SELECT id FROM communities WHERE slug = $1)",
                world.slug,
                signed["signed"]["signature"],
                forged,
            )
        problems = [
            row["problem"]
            for violation in await check_logs(connection)
            for row in violation.rows
            if row["community"] == world.slug
        ]
    assert len(problems) == 1
    assert str(problems[0]).endswith("a signature does not verify")
