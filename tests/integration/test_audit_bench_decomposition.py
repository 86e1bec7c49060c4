"""The audit benchmark's decomposition of the signed path: its measure with the
signatures not verified differs from the signed path by the verification alone.
The rest of the path (the intent's checks, the key, the signature stored and
logged) runs the same."""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from bench import audit_bench
from bench.audit_bench import (
    COMMUNITY_SLUG,
    UncheckedVerifier,
    ledger_side,
    signed_operation,
    signed_transfer,
)
from timebank.signing import intents
from timebank.signing.errors import SignatureInvalid

FORGED_SIGNATURE = bytes(64)


async def test_the_unverified_measure_skips_the_verification_and_nothing_else(
    create_database: Callable[[], Awaitable[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A small side: two members, a small pool.
    monkeypatch.setattr(audit_bench, "LEDGER_MEMBERS", 2)
    monkeypatch.setattr(audit_bench, "CALLERS", 2)
    side = await ledger_side(await create_database(), tmp_path, logged=True)
    try:
        origin = await side.log.origin(side.community_id, COMMUNITY_SLUG)
        generator = random.Random(1)
        refused, accepted = (
            dataclasses.replace(made, signature=FORGED_SIGNATURE)
            for made in (signed_transfer(side, origin, generator) for _ in range(2))
        )
        with pytest.raises(SignatureInvalid):
            await signed_operation(side, [refused], origin)(generator)
        unverified = signed_operation(side, [accepted], origin, UncheckedVerifier())
        assert await unverified(generator) == 1

        written = await side.pool.fetch(
            "SELECT id FROM transactions WHERE community_id = $1", side.community_id
        )
        assert [row["id"] for row in written] == [accepted.request.id]
        # Stored and logged as a verified one would be: its intent and signature in
        # the transaction's log entry.
        entry = await side.pool.fetchval(
            "SELECT entry FROM log_entries WHERE community_id = $1 AND transaction_id = $2",
            side.community_id,
            accepted.request.id,
        )
        [logged] = json.loads(entry)["signatures"]
        assert logged["key_id"] == accepted.payer.key_id
        assert logged["signature"] == intents.b64url_encode(FORGED_SIGNATURE)
        assert logged["signed"] == intents.b64url_encode(accepted.signed)
    finally:
        await side.pool.close()
        side.verifier.close()
