"""Judging what members sign, against the community's keys and ledger: a transfer
intent must be the exact canonical bytes of what the transaction does, signed with
a live key of someone who may move the payer's account; an acknowledgement must
name the transaction's intent and be signed by its payee."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import TypeVar

from timebank.ledger.store import StoredSignature
from timebank.signing import intents
from timebank.signing.errors import (
    SIGNATURE_ERRORS,
    KeyNotAllowed,
    KeyRevoked,
    KeyUnknown,
    SignatureInvalid,
    SignatureMalformed,
)
from timebank.signing.keys import KeyStore, MemberKey
from timebank.signing.verifier import SignatureVerifier

T = TypeVar("T")


def refused(check: Callable[[], T]) -> T:
    """Runs a check of the intents module, its refusals as our named errors."""
    try:
        return check()
    except intents.SignatureError as error:
        raise SIGNATURE_ERRORS[error.code](error.message) from None


def decode(text: str, name: str) -> bytes:
    try:
        return intents.b64url_decode(text)
    except intents.SignatureError:
        raise SignatureMalformed(f"{name} is not base64url without padding") from None


async def live_key(
    keys: KeyStore,
    community_id: uuid.UUID,
    key_id: str,
    signers: Collection[uuid.UUID],
    *,
    cached: bool = False,
) -> MemberKey:
    """The registered, unrevoked key, belonging to one of `signers` (parties).
    `cached`: a live key seen within the cache's TTL will do, for writes whose
    database call refuses a revoked key itself (signed transfers)."""
    key = await keys.get(community_id, key_id, cached=cached)
    if key is None:
        raise KeyUnknown(f"no key {key_id} in this community", key_id=key_id)
    if key.revoked_at is not None:
        raise KeyRevoked(f"key {key_id} was revoked", key_id=key_id)
    if key.party_id not in signers:
        raise KeyNotAllowed(f"key {key_id} may not sign for this account", key_id=key_id)
    return key


async def verified(
    verifier: SignatureVerifier, key: MemberKey, message: bytes, signature: bytes
) -> None:
    if not await verifier.verify(
        intents.KeyAlgorithm(key.algorithm), key.public_key, message, signature
    ):
        raise SignatureInvalid(f"the signature does not verify with key {key.key_id}")


async def verified_intent(
    keys: KeyStore,
    verifier: SignatureVerifier,
    *,
    community_id: uuid.UUID,
    origin: str,
    signed: bytes,
    signature: bytes,
    tx_id: uuid.UUID,
    payer: uuid.UUID,
    payee: uuid.UUID,
    unit: str,
    amount: int,
    memo: str,
    signers: Collection[uuid.UUID],
) -> StoredSignature:
    """The payer's intent, checked through and through, ready to store."""
    key_id = refused(
        lambda: intents.agreed_key_id(
            signed,
            ledger=origin,
            tx_id=tx_id,
            payer=payer,
            payee=payee,
            unit=unit,
            amount=amount,
            memo=memo,
            now=datetime.now(UTC),
        )
    )
    key = await live_key(keys, community_id, key_id, signers, cached=True)
    await verified(verifier, key, signed, signature)
    return StoredSignature("intent", signed, signature, key.key_id)


async def verified_ack(
    keys: KeyStore,
    verifier: SignatureVerifier,
    *,
    community_id: uuid.UUID,
    origin: str,
    signed: bytes,
    signature: bytes,
    tx_id: uuid.UUID,
    intent: bytes,
    decision: intents.AckDecision,
    signers: Collection[uuid.UUID],
) -> StoredSignature:
    """The payee's acknowledgement of the transaction's intent, with this decision."""
    ack = refused(lambda: intents.parse_ack(signed))
    refused(
        lambda: intents.check_ack(
            ack, ledger=origin, tx_id=tx_id, tx_hash=intents.sha256_hex(intent)
        )
    )
    if ack.decision is not decision:
        raise SignatureMalformed(f"this acknowledgement says {ack.decision.value}")
    key = await live_key(keys, community_id, ack.key_id, signers)
    await verified(verifier, key, signed, signature)
    return StoredSignature("ack", signed, signature, key.key_id)


async def verified_pool_decision(
    keys: KeyStore,
    verifier: SignatureVerifier,
    *,
    community_id: uuid.UUID,
    origin: str,
    signed: bytes,
    signature: bytes,
    request_id: uuid.UUID,
    decision: str,
    manager_id: uuid.UUID,
) -> StoredSignature:
    """A pool manager's signed decision on a request, by a key of theirs live now."""
    document = refused(lambda: intents.parse_pool_decision(signed))
    refused(
        lambda: intents.check_pool_decision(
            document, ledger=origin, request_id=request_id, decision=decision
        )
    )
    key = await live_key(keys, community_id, document.key_id, {manager_id})
    await verified(verifier, key, signed, signature)
    return StoredSignature("decision", signed, signature, key.key_id)
