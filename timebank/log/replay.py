"""Replaying a community's log: from its entries alone, in order, rebuild every
account's balance and check that each entry is possible at its position (known
accounts and units, balanced postings per unit, pending transactions resolved
once). Pure: the offline verifier and `timebank check` both use it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import rfc8785

from timebank.signing import intents

ENTRY_VERSION = 1
RESOLVED_STATES = frozenset({"posted", "voided", "expired"})


class ReplayError(Exception):
    """An entry that cannot be where it is: what the log says is impossible."""

    def __init__(self, leaf_index: int, reason: str) -> None:
        self.leaf_index = leaf_index
        self.reason = reason
        super().__init__(f"entry {leaf_index}: {reason}")


@dataclass
class AccountState:
    unit: str
    owner: str
    status: str
    min_balance: int
    max_balance: int
    balance: int = 0


@dataclass
class KeyState:
    algorithm: str
    public_key: str  # base64url, as logged
    party: str
    revoked: bool = False


@dataclass
class Replay:
    """The state the entries so far describe."""

    # The log's origin, which signed intents must name; None skips that check.
    origin: str | None = None
    keys: dict[str, KeyState] = field(default_factory=dict)
    # Signed intents of pending transactions, which acknowledgements hash.
    pending_intents: dict[str, bytes] = field(default_factory=dict)
    # Organization party -> the member parties who act for it.
    agents: dict[str, set[str]] = field(default_factory=dict)
    signatures_policy: str = "optional"

    units: dict[str, str] = field(default_factory=dict)  # unit id -> code
    accounts: dict[str, AccountState] = field(default_factory=dict)
    # Pending transactions: id -> postings (account, amount).
    pending: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    transactions: set[str] = field(default_factory=set)
    size: int = 0

    def balances(self) -> dict[str, int]:
        return {account_id: state.balance for account_id, state in self.accounts.items()}


def parse_entry(leaf_index: int, raw: bytes) -> dict[str, Any]:
    """An entry's JSON object; it must be RFC 8785 canonical, byte for byte."""
    try:
        entry = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise ReplayError(leaf_index, f"not JSON: {error}") from None
    if not isinstance(entry, dict):
        raise ReplayError(leaf_index, "not a JSON object")
    try:
        canonical = rfc8785.dumps(entry)
    except rfc8785.CanonicalizationError as error:
        raise ReplayError(leaf_index, f"cannot be canonical: {error}") from None
    if canonical != raw:
        raise ReplayError(leaf_index, "not in RFC 8785 canonical form")
    if entry.get("v") != ENTRY_VERSION:
        raise ReplayError(leaf_index, f"unknown entry version {entry.get('v')!r}")
    return entry


def replay(entries: Iterable[bytes], state: Replay | None = None) -> Replay:
    """Applies entries (raw bytes, from leaf `state.size` on) to a state."""
    state = state if state is not None else Replay()
    for raw in entries:
        apply_entry(state, parse_entry(state.size, raw))
        state.size += 1
    return state


def apply_entry(state: Replay, entry: dict[str, Any]) -> None:
    index = state.size
    kind = entry.get("type")
    try:
        if kind == "unit":
            state.units[entry["unit"]] = entry["code"]
        elif kind == "account":
            _apply_account(state, entry)
        elif kind == "transaction":
            _apply_transaction(state, index, entry)
        elif kind == "resolution":
            _apply_resolution(state, index, entry)
        elif kind == "key":
            _apply_key(state, index, entry)
        elif kind == "key_revocation":
            _apply_key_revocation(state, index, entry)
        elif kind == "agent":
            state.agents.setdefault(entry["organization"], set()).add(entry["member"])
        elif kind == "policy":
            state.signatures_policy = entry["signatures"]
        else:
            raise ReplayError(index, f"unknown entry type {kind!r}")
    except (KeyError, TypeError, ValueError) as error:
        raise ReplayError(index, f"malformed {kind} entry: {error!r}") from None


def _apply_account(state: Replay, entry: dict[str, Any]) -> None:
    account_id = entry["account"]
    known = state.accounts.get(account_id)
    balance = known.balance if known is not None else 0
    state.accounts[account_id] = AccountState(
        unit=entry["unit"],
        owner=entry["owner"],
        status=entry["status"],
        min_balance=int(entry["min_balance"]),
        max_balance=int(entry["max_balance"]),
        balance=balance,
    )


def _apply_transaction(state: Replay, index: int, entry: dict[str, Any]) -> None:
    transaction_id = entry["id"]
    if transaction_id in state.transactions:
        raise ReplayError(index, f"transaction {transaction_id} appears twice")
    postings = [(str(account), int(amount)) for account, amount in entry["postings"]]
    totals: dict[str, int] = {}
    for account_id, amount in postings:
        account = state.accounts.get(account_id)
        if account is None:
            raise ReplayError(index, f"account {account_id} is not opened before its use")
        if isinstance(amount, bool) or amount == 0:
            raise ReplayError(index, f"a posting of {amount!r}")
        totals[account.unit] = totals.get(account.unit, 0) + amount
    unbalanced = {unit: total for unit, total in totals.items() if total != 0}
    if unbalanced:
        raise ReplayError(index, f"postings do not balance per unit: {unbalanced}")
    for signature in entry.get("signatures") or ():
        _check_intent_signature(state, index, entry, postings, signature)
    state.transactions.add(transaction_id)
    if entry["state"] == "pending":
        state.pending[transaction_id] = postings
    elif entry["state"] == "posted":
        _post(state, postings)
    else:
        raise ReplayError(index, f"a transaction written as {entry['state']!r}")


def _apply_resolution(state: Replay, index: int, entry: dict[str, Any]) -> None:
    transaction_id = entry["id"]
    postings = state.pending.pop(transaction_id, None)
    if postings is None:
        raise ReplayError(index, f"transaction {transaction_id} is not pending")
    if entry["state"] not in RESOLVED_STATES:
        raise ReplayError(index, f"a resolution to {entry['state']!r}")
    for signature in entry.get("signatures") or ():
        _check_ack_signature(state, index, entry, postings, signature)
    state.pending_intents.pop(transaction_id, None)
    if entry["state"] == "posted":
        _post(state, postings)


def _apply_key(state: Replay, index: int, entry: dict[str, Any]) -> None:
    key_id = entry["key_id"]
    if key_id in state.keys:
        raise ReplayError(index, f"key {key_id} is registered twice")
    state.keys[key_id] = KeyState(entry["algorithm"], entry["public_key"], entry["party"])


def _apply_key_revocation(state: Replay, index: int, entry: dict[str, Any]) -> None:
    key = state.keys.get(entry["key_id"])
    if key is None or key.revoked:
        raise ReplayError(index, f"key {entry['key_id']} is not a live key to revoke")
    key.revoked = True


def _check_intent_signature(
    state: Replay,
    index: int,
    entry: dict[str, Any],
    postings: list[tuple[str, int]],
    signature: dict[str, Any],
) -> None:
    """The payer's intent says what the transaction does, names this log, and was
    signed by a key live here belonging to the payer (or an agent of it)."""
    key, signed, raw_signature, purpose = _signed_with(state, index, signature)
    if purpose != "intent":
        raise ReplayError(index, f"a transaction carries a {purpose!r} signature")
    try:
        intent = intents.parse_transfer_intent(signed)
    except intents.SignatureError as error:
        raise ReplayError(index, f"a malformed intent: {error.message}") from None
    payer = next((account for account, amount in postings if amount < 0), None)
    payee = next((account for account, amount in postings if amount > 0), None)
    expected = {
        "ledger": state.origin if state.origin is not None else intent.ledger,
        "tx_id": entry["id"],
        "payer": payer,
        "payee": payee,
        "amount": next((amount for _, amount in postings if amount > 0), None),
        "unit": state.accounts[payer].unit if payer is not None else None,
        "memo_hash": entry["memo_sha256"],
    }
    said = {
        "ledger": intent.ledger,
        "tx_id": str(intent.tx_id),
        "payer": str(intent.payer),
        "payee": str(intent.payee),
        "amount": intent.amount,
        "unit": intent.unit,
        "memo_hash": intent.memo_hash,
    }
    different = [name for name in expected if expected[name] != said[name]]
    if len(postings) != 2 or different:
        raise ReplayError(index, f"the signed intent does not match: {different or 'postings'}")
    assert payer is not None
    _require_signer(state, index, key, state.accounts[payer].owner)
    _require_verified(index, key, signed, raw_signature)
    if entry["state"] == "pending":
        state.pending_intents[entry["id"]] = signed


def _check_ack_signature(
    state: Replay,
    index: int,
    entry: dict[str, Any],
    postings: list[tuple[str, int]],
    signature: dict[str, Any],
) -> None:
    """The payee's acknowledgement names the transaction's intent and agrees with
    the resolution."""
    key, signed, raw_signature, purpose = _signed_with(state, index, signature)
    intent = state.pending_intents.get(entry["id"])
    if purpose != "ack" or intent is None:
        raise ReplayError(index, "an acknowledgement of a transaction without a signed intent")
    try:
        ack = intents.parse_ack(signed)
        intents.check_ack(
            ack,
            ledger=state.origin if state.origin is not None else ack.ledger,
            tx_id=uuid.UUID(entry["id"]),
            tx_hash=intents.sha256_hex(intent),
        )
    except intents.SignatureError as error:
        raise ReplayError(index, f"the acknowledgement does not match: {error.message}") from None
    wanted = "accept" if entry["state"] == "posted" else "decline"
    if ack.decision.value != wanted:
        raise ReplayError(
            index, f"an acknowledgement saying {ack.decision.value} of a {entry['state']}"
        )
    payee = next(account for account, amount in postings if amount > 0)
    _require_signer(state, index, key, state.accounts[payee].owner)
    _require_verified(index, key, signed, raw_signature)


def _signed_with(
    state: Replay, index: int, signature: dict[str, Any]
) -> tuple[KeyState, bytes, bytes, str]:
    key = state.keys.get(signature["key_id"])
    if key is None:
        raise ReplayError(index, f"key {signature['key_id']} is not registered before its use")
    if key.revoked:
        raise ReplayError(index, f"key {signature['key_id']} was revoked before this signature")
    try:
        signed = intents.b64url_decode(signature["signed"])
        raw_signature = intents.b64url_decode(signature["signature"])
    except intents.SignatureError as error:
        raise ReplayError(index, f"a signature that cannot be read: {error.message}") from None
    return key, signed, raw_signature, str(signature["purpose"])


def _require_signer(state: Replay, index: int, key: KeyState, owner: str) -> None:
    if key.party != owner and key.party not in state.agents.get(owner, set()):
        raise ReplayError(index, f"the key of {key.party} signed for an account of {owner}")


def _require_verified(index: int, key: KeyState, signed: bytes, raw_signature: bytes) -> None:
    try:
        public_key = intents.b64url_decode(key.public_key)
    except intents.SignatureError:
        raise ReplayError(index, "a logged key cannot be read") from None
    if not intents.verify_signature(
        intents.KeyAlgorithm(key.algorithm), public_key, signed, raw_signature
    ):
        raise ReplayError(index, "a signature does not verify")


def _post(state: Replay, postings: list[tuple[str, int]]) -> None:
    for account_id, amount in postings:
        state.accounts[account_id].balance += amount
