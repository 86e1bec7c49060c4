"""The community's log over HTTP: signed checkpoints that verify with the published
keys, entries that hash to the checkpoint's root, and proofs that check out."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.api.conftest import ApiClient
from tests.api.world import World, build_world, expect, transfer
from timebank.keys import DATABASE_POOL
from timebank.log import merkle
from timebank.log import queries as log_queries
from timebank.log.audit import verify_bundle
from timebank.log.note import (
    COSIGNATURE_V1_TYPE,
    Verifier,
    add_signature,
    cosignature_of,
    format_signature_line,
    format_verifier_key,
    parse_checkpoint,
    parse_note,
    parse_verifier_key,
    verify_note,
)


async def checkpoint_of(api: ApiClient, world: World) -> dict[str, object]:
    body: dict[str, object] = await expect(
        await api.post(f"/v1/communities/{world.slug}/log/checkpoints", headers=world.alice.auth),
        200,
    )
    return body


async def test_a_checkpoint_asked_for_while_another_is_being_signed_covers_the_log(
    api: ApiClient, world: World
) -> None:
    """While someone else (here a test connection, standing for the background
    checkpointer of another process) holds the community's checkpoint lock, a
    checkpoint asked for waits, then covers every entry logged before the call, not
    only those of the latest checkpoint."""
    earlier = await checkpoint_of(api, world)
    await expect(
        await api.post(
            "/v1/transactions",
            json=transfer(world, world.alice, world.bob, 15),
            headers=world.alice.auth,
        ),
        201,
    )
    pool = api.app[DATABASE_POOL]
    community_id = await pool.fetchval("SELECT id FROM communities WHERE slug = $1", world.slug)
    logged = await pool.fetchval(
        "SELECT count(*) FROM log_entries WHERE community_id = $1", community_id
    )
    async with pool.acquire() as holder:
        locked = holder.transaction()
        await locked.start()
        assert await holder.fetchval(log_queries.TRY_LOCK_COMMUNITY, community_id)
        asked = asyncio.ensure_future(checkpoint_of(api, world))
        await asyncio.sleep(0.5)
        assert not asked.done()
        await locked.rollback()
    answered = await asked
    assert answered["tree_size"] == logged > earlier["tree_size"]


async def test_checkpoints_entries_and_proofs_check_out(api: ApiClient, world: World) -> None:
    """What the API serves is enough to check the log: the note verifies with the
    published key, the entries hash to its root, and every proof verifies."""
    for amount in (10, 20):
        await expect(
            await api.post(
                "/v1/transactions",
                json=transfer(world, world.alice, world.bob, amount),
                headers=world.alice.auth,
            ),
            201,
        )
    first = await checkpoint_of(api, world)
    keys = await expect(
        await api.get(f"/v1/communities/{world.slug}/log/keys", headers=world.bob.auth), 200
    )
    verifiers = [parse_verifier_key(key) for key in keys["keys"]]
    verified = verify_note(str(first["note"]), verifiers)
    checkpoint = parse_checkpoint(verified.body)
    assert (checkpoint.origin, checkpoint.tree_size) == (first["origin"], first["tree_size"])
    assert checkpoint.origin == f"timebank.local/{world.slug}"
    entries = await expect(
        await api.get(
            f"/v1/communities/{world.slug}/log/entries",
            params={"start": 0, "end": checkpoint.tree_size},
            headers=world.treasurer.auth,
        ),
        200,
    )
    leaves = [merkle.leaf_hash(entry.encode()) for entry in entries["entries"]]
    assert len(leaves) == checkpoint.tree_size
    assert merkle.root_of(leaves) == checkpoint.root_hash
    for index in (0, checkpoint.tree_size // 2, checkpoint.tree_size - 1):
        proof = await expect(
            await api.get(
                f"/v1/communities/{world.slug}/log/proofs/inclusion",
                params={"index": index, "size": checkpoint.tree_size},
                headers=world.bob.auth,
            ),
            200,
        )
        hashes = [base64.b64decode(item) for item in proof["hashes"]]
        assert merkle.verify_inclusion(
            leaves[index], index, checkpoint.tree_size, hashes, checkpoint.root_hash
        )
    await expect(
        await api.post(
            "/v1/transactions",
            json=transfer(world, world.bob, world.alice, 5),
            headers=world.bob.auth,
        ),
        201,
    )
    second = parse_checkpoint(
        verify_note(str((await checkpoint_of(api, world))["note"]), verifiers).body
    )
    # Exactly one entry more: each answer covers the whole log as it was when asked,
    # even when the background checkpointer was signing at that moment.
    assert second.tree_size == checkpoint.tree_size + 1
    consistency = await expect(
        await api.get(
            f"/v1/communities/{world.slug}/log/proofs/consistency",
            params={"first": checkpoint.tree_size, "second": second.tree_size},
            headers=world.bob.auth,
        ),
        200,
    )
    assert merkle.verify_consistency(
        checkpoint.tree_size,
        second.tree_size,
        checkpoint.root_hash,
        second.root_hash,
        [base64.b64decode(item) for item in consistency["hashes"]],
    )


async def test_proofs_beyond_the_checkpoint_are_refused(api: ApiClient, world: World) -> None:
    size = int(str((await checkpoint_of(api, world))["tree_size"]))
    for params in ({"index": size, "size": size}, {"index": 0, "size": size + 5}):
        problem = await expect(
            await api.get(
                f"/v1/communities/{world.slug}/log/proofs/inclusion",
                params=params,
                headers=world.alice.auth,
            ),
            422,
        )
        assert problem["code"] == "validation_error"
    too_many = await expect(
        await api.get(
            f"/v1/communities/{world.slug}/log/entries",
            params={"start": 0, "end": 5000},
            headers=world.alice.auth,
        ),
        422,
    )
    assert too_many["code"] == "validation_error"


async def test_another_communitys_log_is_not_yours(api: ApiClient, world: World) -> None:
    other = await build_world(api)
    problem = await expect(
        await api.get(f"/v1/communities/{world.slug}/log/checkpoint", headers=other.admin.auth),
        403,
    )
    assert problem["code"] == "forbidden"


async def test_a_witness_cosigns_a_checkpoint(api: ApiClient, world: World) -> None:
    """A registered witness checks a checkpoint and hands in its cosignature, which
    is served with the checkpoint; a stranger's signature or a made-up checkpoint
    is refused."""
    witness_key = Ed25519PrivateKey.generate()
    witness = Verifier.from_public_key("witness.example/asso", witness_key.public_key())
    await expect(
        await api.post(
            f"/v1/communities/{world.slug}/log/witnesses",
            json={"vkey": format_verifier_key(witness)},
            headers=world.admin.auth,
        ),
        201,
    )
    checkpoint = await checkpoint_of(api, world)
    cosigned = add_signature(str(checkpoint["note"]), witness.name, witness_key)
    answer = await expect(
        await api.post(
            f"/v1/communities/{world.slug}/log/cosignatures",
            json={"note": cosigned},
            headers=world.treasurer.auth,
        ),
        200,
    )
    (line,) = answer["cosignatures"]
    assert line.startswith(f"\u2014 {witness.name} ")
    served = await expect(
        await api.get(f"/v1/communities/{world.slug}/log/checkpoint", headers=world.alice.auth), 200
    )
    assert served["cosignatures"] == [line]
    assert verify_note(str(served["note"]) + line, [witness]).signers == (witness,)
    stranger = add_signature(
        str(checkpoint["note"]), "stranger.example", Ed25519PrivateKey.generate()
    )
    refused = await expect(
        await api.post(
            f"/v1/communities/{world.slug}/log/cosignatures",
            json={"note": stranger},
            headers=world.treasurer.auth,
        ),
        422,
    )
    assert refused["code"] == "validation_error"


async def test_the_bundle_served_to_treasurers_verifies_offline(
    api: ApiClient, world: World, tmp_path: Path
) -> None:
    await expect(
        await api.post(
            "/v1/transactions",
            json=transfer(world, world.alice, world.bob, 15),
            headers=world.alice.auth,
        ),
        201,
    )
    await checkpoint_of(api, world)
    response = await api.get(
        f"/v1/communities/{world.slug}/log/bundle", headers=world.treasurer.auth
    )
    assert response.status == 200
    bundle = tmp_path / "bundle.jsonl"
    bundle.write_bytes(await response.read())
    result = verify_bundle(bundle)
    # The one asked for, and any the background checkpointer signed meanwhile.
    header = json.loads(bundle.read_bytes().split(b"\n", 1)[0])
    assert len(header["checkpoints"]) >= 1
    assert (result.problems, result.checkpoints_verified) == ([], len(header["checkpoints"]))
    await expect(
        await api.get(f"/v1/communities/{world.slug}/log/bundle", headers=world.alice.auth), 403
    )


async def test_a_receipt_proves_a_transaction_is_in_the_log(api: ApiClient, world: World) -> None:
    """A pending transaction, then confirmed: its receipt holds both entries, a
    signed checkpoint that includes them, and proofs that check out."""
    body = transfer(world, world.alice, world.bob, 25, pending=True)
    await expect(await api.post("/v1/transactions", json=body, headers=world.bob.auth), 201)
    await expect(
        await api.post(f"/v1/transactions/{body['id']}/confirm", headers=world.alice.auth), 200
    )
    receipt = await expect(
        await api.get(f"/v1/transactions/{body['id']}/receipt", headers=world.bob.auth), 200
    )
    keys = await expect(
        await api.get(f"/v1/communities/{world.slug}/log/keys", headers=world.bob.auth), 200
    )
    verifiers = [parse_verifier_key(key) for key in keys["keys"]]
    checkpoint = parse_checkpoint(verify_note(receipt["checkpoint"]["note"], verifiers).body)
    kinds = []
    for item in receipt["entries"]:
        assert merkle.verify_inclusion(
            merkle.leaf_hash(item["entry"].encode()),
            item["leaf_index"],
            checkpoint.tree_size,
            [base64.b64decode(node) for node in item["inclusion_proof"]],
            checkpoint.root_hash,
        )
        kinds.append(json.loads(item["entry"])["type"])
    assert kinds == ["transaction", "resolution"]


async def test_a_cosignature_v1_witness_is_accepted_and_a_future_one_refused(
    api: ApiClient, world: World
) -> None:
    """A witness registered with a cosignature/v1 key (type 0x04) hands in a
    timestamped cosignature (c2sp.org/tlog-cosignature): kept and served; one dated
    an hour ahead is refused and nothing of it is kept."""
    witness_key = Ed25519PrivateKey.generate()
    witness = Verifier.from_public_key(
        "witness.example/v1", witness_key.public_key(), COSIGNATURE_V1_TYPE
    )
    await expect(
        await api.post(
            f"/v1/communities/{world.slug}/log/witnesses",
            json={"vkey": format_verifier_key(witness)},
            headers=world.admin.auth,
        ),
        201,
    )
    checkpoint = await checkpoint_of(api, world)
    body = parse_note(str(checkpoint["note"])).body
    path = f"/v1/communities/{world.slug}/log/cosignatures"
    ahead = cosignature_of(body, witness.name, witness_key, int(time.time()) + 3600)
    refused = await expect(
        await api.post(
            path,
            json={"note": str(checkpoint["note"]) + format_signature_line(ahead)},
            headers=world.treasurer.auth,
        ),
        422,
    )
    assert "future" in refused["detail"]
    now = cosignature_of(body, witness.name, witness_key, int(time.time()))
    answer = await expect(
        await api.post(
            path,
            json={"note": str(checkpoint["note"]) + format_signature_line(now)},
            headers=world.treasurer.auth,
        ),
        200,
    )
    assert answer["cosignatures"] == [format_signature_line(now)]
    assert verify_note(str(checkpoint["note"]) + answer["cosignatures"][0], [witness]).signers
