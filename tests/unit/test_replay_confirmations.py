"""The replay of a payer's signed confirmation: a resolution may carry the payer's
transfer intent for a proposal the payer had not signed; it must confirm (posted),
say what the pending transaction does and be signed by the payer's key."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.audit_bench import (
    LoggedSignature,
    account_entry,
    key_entry,
    resolution_entry,
    transaction_entry,
    unit_entry,
)
from timebank.log.replay import Replay, ReplayError, replay
from timebank.signing import intents

ORIGIN = "timebank.test/town"
UNIT = "HOUR"
AT = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


class Scene:
    """Alice (payer, with a key) and Bob (payee, with a key), and Bob's proposal."""

    def __init__(self) -> None:
        self.alice, self.bob = uuid.uuid4(), uuid.uuid4()
        self.alice_account, self.bob_account = uuid.uuid4(), uuid.uuid4()
        self.keys = {party: Ed25519PrivateKey.generate() for party in (self.alice, self.bob)}
        self.proposal = uuid.uuid4()

    def key_id(self, party: uuid.UUID) -> str:
        return intents.public_key_id(intents.KeyAlgorithm.ED25519, self.public_key(party))

    def public_key(self, party: uuid.UUID) -> bytes:
        return (
            self.keys[party]
            .public_key()
            .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        )

    def opening(self) -> list[bytes]:
        unit_id = uuid.uuid4()
        entries = [
            unit_entry(
                unit_id=unit_id,
                code=UNIT,
                decimals=0,
                kind="time",
                default_min_balance=-600,
                default_max_balance=600,
            )
        ]
        for party, account in ((self.alice, self.alice_account), (self.bob, self.bob_account)):
            entries.append(
                account_entry(
                    account_id=account,
                    owner_id=party,
                    unit_code=UNIT,
                    purpose=None,
                    status="active",
                    min_balance=-600,
                    max_balance=600,
                )
            )
            entries.append(
                key_entry(
                    key_id=self.key_id(party),
                    party_id=party,
                    algorithm="ed25519",
                    public_key=self.public_key(party),
                )
            )
        entries.append(
            transaction_entry(
                transaction_id=self.proposal,
                created_at=AT,
                kind="exchange",
                memo="shelves",
                postings=[(self.alice_account, -45), (self.bob_account, 45)],
                state="pending",
                signature=None,
                expires_at=AT + timedelta(days=7),
            )
        )
        return entries

    def intent(self, signer: uuid.UUID, *, amount: int = 45) -> LoggedSignature:
        signed = intents.make_transfer_intent(
            ledger=ORIGIN,
            tx_id=self.proposal,
            payer=self.alice_account,
            payee=self.bob_account,
            unit=UNIT,
            amount=amount,
            memo="shelves",
            not_after=AT + timedelta(days=7),
            key_id=self.key_id(signer),
        )
        return LoggedSignature(
            "intent", signed, self.keys[signer].sign(signed), self.key_id(signer)
        )

    def replayed(self, state: str, signature: LoggedSignature) -> Replay:
        resolution = resolution_entry(
            transaction_id=self.proposal, resolved_at=AT, state=state, signature=signature
        )
        return replay([*self.opening(), resolution], Replay(origin=ORIGIN))


def test_a_confirmation_signed_by_the_payer_replays_and_posts() -> None:
    """The payer's intent naming the proposal's legs posts it."""
    scene = Scene()
    state = scene.replayed("posted", scene.intent(scene.alice))
    assert state.balances()[str(scene.alice_account)] == -45
    assert state.balances()[str(scene.bob_account)] == 45


@pytest.mark.parametrize(
    ("state", "signer", "amount", "reason"),
    [
        ("voided", "alice", 45, "a payer's intent on a voided resolution"),
        ("posted", "bob", 45, "signed for an account of"),
        ("posted", "alice", 46, "the signed intent does not match: ['amount']"),
    ],
)
def test_a_wrong_confirming_intent_is_an_impossible_entry(
    state: str, signer: str, amount: int, reason: str
) -> None:
    """Only a confirmation carries the payer's intent, by the payer's key, saying
    what the pending transaction does."""
    scene = Scene()
    party = scene.alice if signer == "alice" else scene.bob
    with pytest.raises(ReplayError) as raised:
        scene.replayed(state, scene.intent(party, amount=amount))
    assert reason in raised.value.reason
