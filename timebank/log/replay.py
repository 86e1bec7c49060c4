"""Replaying a community's log: from its entries alone, in order, rebuild every
account's balance and check that each entry is possible at its position (known
accounts and units, balanced postings per unit, pending transactions resolved
once, signatures by keys live there). Pure: the offline verifier and
`timebank check` both use it.

The costly steps of a replay need no state: reading an entry (its canonical form),
reading what a signature signed (an intent or acknowledgement) and checking a
signature against a key. They are plain functions of their inputs, so a verifier
may compute them ahead, in other processes, as a `Precomputed`: the replay then
takes each result from it when the inputs match, and computes it otherwise. The
rules stay here, once, and the stateful replay stays sequential and cheap. Plain
transfers, the bulk of a log, have a quicker lane still (replay_transfers), which
only ever accepts what this replay accepts and leaves the rest to it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar, cast

import rfc8785

from timebank.canonical import plainly_canonical
from timebank.log.replay_pools import ENTRY_TYPES as POOL_ENTRY_TYPES
from timebank.log.replay_pools import PoolEntryError, PoolsReplay
from timebank.signing import intents

ENTRY_VERSION = 1
RESOLVED_STATES = frozenset({"posted", "voided", "expired"})
# RFC 8785 (I-JSON) integers; the quick canonical check leaves any other number to rfc8785.
INTEGER_MAX = 2**53 - 1
INTENT_FIELDS = ("ledger", "tx_id", "payer", "payee", "amount", "unit", "memo_hash")

T = TypeVar("T")


class ReplayError(Exception):
    """An entry that cannot be where it is: what the log says is impossible."""

    def __init__(self, leaf_index: int, reason: str) -> None:
        self.leaf_index = leaf_index
        self.reason = reason
        super().__init__(f"entry {leaf_index}: {reason}")

    def __reduce__(self) -> tuple[type[ReplayError], tuple[int, str]]:
        # Raised in a verifier's worker process and passed back whole.
        return (ReplayError, (self.leaf_index, self.reason))


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
    # Memo hashes of pending transactions, which a payer's intent signed at
    # confirmation names.
    pending_memos: dict[str, str] = field(default_factory=dict)
    # Organization party -> the member parties who act for it.
    agents: dict[str, set[str]] = field(default_factory=dict)
    signatures_policy: str = "optional"

    units: dict[str, str] = field(default_factory=dict)  # unit id -> code
    accounts: dict[str, AccountState] = field(default_factory=dict)
    # Pending transactions: id -> postings (account, amount).
    pending: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    transactions: set[str] = field(default_factory=set)
    pools: PoolsReplay = field(default_factory=PoolsReplay)
    size: int = 0

    def balances(self) -> dict[str, int]:
        return {account_id: state.balance for account_id, state in self.accounts.items()}


# Reading entries.


def parse_entry(leaf_index: int, raw: bytes) -> dict[str, Any]:
    """An entry's JSON object; it must be RFC 8785 canonical, byte for byte."""
    entry = plainly_canonical(raw)
    if entry is None:
        entry = _canonical(leaf_index, raw)
    if entry.get("v") != ENTRY_VERSION:
        raise ReplayError(leaf_index, f"unknown entry version {entry.get('v')!r}")
    return entry


def _canonical(leaf_index: int, raw: bytes) -> dict[str, Any]:
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
    return entry


# The costly pure steps, and their results computed ahead.


class IntentSays(NamedTuple):
    """What a transfer intent says, as the transaction's entry spells it."""

    ledger: str
    tx_id: str
    payer: str
    payee: str
    amount: int
    unit: str
    memo_hash: str


def read_signature(signature: Mapping[str, Any]) -> tuple[bytes, bytes]:
    """The signed bytes and the signature of a logged signature, base64url-decoded."""
    signed = intents.b64url_decode(signature["signed"])
    raw_signature = intents.b64url_decode(signature["signature"])
    return signed, raw_signature


def read_intent(signed: bytes) -> IntentSays:
    """What a payer's intent says: from its canonical spelling when it has it (the
    common case, several times faster), else as parse_transfer_intent reads it."""
    quick = read_plain_intent(signed)
    if quick is not None:
        return quick
    intent = intents.parse_transfer_intent(signed)
    return IntentSays(
        ledger=intent.ledger,
        tx_id=str(intent.tx_id),
        payer=str(intent.payer),
        payee=str(intent.payee),
        amount=intent.amount,
        unit=intent.unit,
        memo_hash=intent.memo_hash,
    )


def read_plain_intent(signed: bytes) -> IntentSays | None:
    """What a transfer intent says, read from its one canonical spelling without
    decoding JSON; None if it is not so spelt or says what parse_transfer_intent
    refuses (read_intent then reads it the careful way)."""
    fields = intents.plain_intent_fields(signed)
    if fields is None:
        return None
    return IntentSays(
        fields.ledger,
        fields.tx_id,
        fields.payer,
        fields.payee,
        fields.amount,
        fields.unit,
        fields.memo_hash,
    )


def verification_problem(
    algorithm: str, public_key: str, signed: bytes, raw_signature: bytes
) -> str | None:
    """Why the logged key (algorithm, base64url public key) does not verify the
    signature, or None when it does."""
    try:
        public_key_bytes = intents.b64url_decode(public_key)
    except intents.SignatureError:
        return "a logged key cannot be read"
    if not intents.verify_signature(
        intents.KeyAlgorithm(algorithm), public_key_bytes, signed, raw_signature
    ):
        return "a signature does not verify"
    return None


def _outcome(step: Callable[..., T], *arguments: Any) -> T | Exception:
    """The step's value, or the exception it raised (kept, to be raised where the
    value is used, as if the step ran there)."""
    try:
        return step(*arguments)
    except Exception as error:  # any: it is raised again, unchanged
        return error


def _result(outcome: T | Exception) -> T:
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


LoggedKey = tuple[str, str]
"""A key as logged: (algorithm, base64url public key)."""

_ABSENT = object()


class Precomputed:
    """Results of the replay's costly pure steps, computed ahead and keyed by their
    inputs, so that taking one is the same as computing it. Empty, it computes all.
    Plain values and exceptions only: it crosses process boundaries by the chunk."""

    def __init__(self) -> None:
        self.decoded_signatures: dict[tuple[str, str], tuple[bytes, bytes] | Exception] = {}
        self.read_intents: dict[bytes, IntentSays | Exception] = {}
        self.read_acks: dict[bytes, intents.Ack | Exception] = {}
        self.verifications: dict[tuple[str, str, bytes, bytes], str | Exception | None] = {}

    def compute(self, entry: dict[str, Any], keys: Mapping[str, LoggedKey]) -> None:
        """Computes ahead what replaying `entry` will ask, checking each signature
        with the key `keys` has under its key id (the first registered)."""
        kind = entry.get("type")
        signatures = entry.get("signatures")
        if kind == "pool_decision" and isinstance(entry.get("signature"), dict):
            signatures = [entry["signature"]]
        elif kind not in ("transaction", "resolution") or not isinstance(signatures, list):
            return
        for signature in signatures:
            if isinstance(signature, dict):
                self._compute_signature(kind, signature, keys)

    def _compute_signature(
        self, kind: str, signature: dict[str, Any], keys: Mapping[str, LoggedKey]
    ) -> None:
        encoded = _encoded(signature)
        if encoded is None:
            return
        decoded = self.decoded_signatures[encoded] = _outcome(read_signature, signature)
        if isinstance(decoded, Exception):
            return
        signed, raw_signature = decoded
        purpose = signature.get("purpose")
        if purpose == "intent":
            self.read_intents[signed] = _outcome(read_intent, signed)
        elif kind == "resolution" and purpose == "ack":
            self.read_acks[signed] = _outcome(intents.parse_ack, signed)
        key_id = signature.get("key_id")
        key = keys.get(key_id) if isinstance(key_id, str) else None
        if key is not None:
            self.verifications[(*key, signed, raw_signature)] = _outcome(
                verification_problem, *key, signed, raw_signature
            )

    def signature(self, signature: Mapping[str, Any]) -> tuple[bytes, bytes]:
        encoded = _encoded(signature)
        known = self.decoded_signatures.get(encoded) if encoded is not None else None
        return _result(known) if known is not None else read_signature(signature)

    def intent(self, signed: bytes) -> IntentSays:
        known = self.read_intents.get(signed)
        return _result(known) if known is not None else read_intent(signed)

    def ack(self, signed: bytes) -> intents.Ack:
        known = self.read_acks.get(signed)
        return _result(known) if known is not None else intents.parse_ack(signed)

    def verification(self, key: KeyState, signed: bytes, raw_signature: bytes) -> str | None:
        known: object = _ABSENT
        if isinstance(key.algorithm, str) and isinstance(key.public_key, str):
            inputs = (key.algorithm, key.public_key, signed, raw_signature)
            known = self.verifications.get(inputs, _ABSENT)
        if known is _ABSENT:
            return verification_problem(key.algorithm, key.public_key, signed, raw_signature)
        return _result(cast(str | Exception | None, known))


def _encoded(signature: Mapping[str, Any]) -> tuple[str, str] | None:
    """The base64url texts of a signature, when both are text (a usable key)."""
    signed, raw_signature = signature.get("signed"), signature.get("signature")
    if isinstance(signed, str) and isinstance(raw_signature, str):
        return signed, raw_signature
    return None


# Replaying.


def replay(entries: Iterable[bytes], state: Replay | None = None) -> Replay:
    """Applies entries (raw bytes, from leaf `state.size` on) to a state."""
    state = state if state is not None else Replay()
    for raw in entries:
        apply_entry(state, parse_entry(state.size, raw))
        state.size += 1
    return state


def apply_entry(state: Replay, entry: dict[str, Any], ahead: Precomputed | None = None) -> None:
    """Applies the entry at leaf `state.size` (the caller counts it), taking what
    `ahead` holds of its costly steps."""
    index = state.size
    ahead = ahead if ahead is not None else Precomputed()
    kind = entry.get("type")
    try:
        if kind == "unit":
            state.units[entry["unit"]] = entry["code"]
        elif kind == "account":
            _apply_account(state, entry)
        elif kind == "transaction":
            _apply_transaction(state, index, entry, ahead)
        elif kind == "resolution":
            _apply_resolution(state, index, entry, ahead)
        elif kind == "key":
            _apply_key(state, index, entry)
        elif kind == "key_revocation":
            _apply_key_revocation(state, index, entry)
        elif kind == "agent":
            state.agents.setdefault(entry["organization"], set()).add(entry["member"])
        elif kind == "policy":
            state.signatures_policy = entry["signatures"]
        elif kind in POOL_ENTRY_TYPES:
            if kind == "pool_decision" and entry.get("signature") is not None:
                _check_decision_signature(state, index, entry, ahead)
            state.pools.apply(entry, state.transactions, state.accounts)
        else:
            raise ReplayError(index, f"unknown entry type {kind!r}")
    except PoolEntryError as error:
        raise ReplayError(index, str(error)) from None
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


def _apply_transaction(
    state: Replay, index: int, entry: dict[str, Any], ahead: Precomputed
) -> None:
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
    pending = entry["state"] == "pending"
    for signature in entry.get("signatures") or ():
        signed = _check_intent_signature(
            state,
            index,
            (transaction_id, entry["memo_sha256"], postings, pending),
            signature,
            ahead,
        )
        if pending:
            state.pending_intents[transaction_id] = signed
    state.transactions.add(transaction_id)
    if pending:
        state.pending[transaction_id] = postings
        state.pending_memos[transaction_id] = entry["memo_sha256"]
    elif entry["state"] == "posted":
        _post(state, postings)
    else:
        raise ReplayError(index, f"a transaction written as {entry['state']!r}")


def _apply_resolution(state: Replay, index: int, entry: dict[str, Any], ahead: Precomputed) -> None:
    transaction_id = entry["id"]
    postings = state.pending.pop(transaction_id, None)
    if postings is None:
        raise ReplayError(index, f"transaction {transaction_id} is not pending")
    if entry["state"] not in RESOLVED_STATES:
        raise ReplayError(index, f"a resolution to {entry['state']!r}")
    memo_sha256 = state.pending_memos.pop(transaction_id)
    for signature in entry.get("signatures") or ():
        if signature.get("purpose") == "intent":
            _check_confirming_intent(state, index, entry, (memo_sha256, postings), signature, ahead)
        else:
            _check_ack_signature(state, index, entry, postings, signature, ahead)
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


SignedTransaction = tuple[str, str, list[tuple[str, int]], bool]
"""What a payer's intent is checked against: (transaction id, memo hash,
postings, whether still pending)."""


def _check_confirming_intent(
    state: Replay,
    index: int,
    entry: dict[str, Any],
    pending: tuple[str, list[tuple[str, int]]],
    signature: dict[str, Any],
    ahead: Precomputed,
) -> None:
    """A payer's intent logged with a resolution confirms what the payee proposed:
    only a confirmation (posted) carries one, of a transaction its payer had not
    signed, and it says what the pending transaction does, as a signed post's."""
    transaction_id = entry["id"]
    if entry["state"] != "posted" or transaction_id in state.pending_intents:
        raise ReplayError(
            index, f"a payer's intent on a {entry['state']} resolution of a signed transaction"
        )
    memo_sha256, postings = pending
    # Pending: a levy's or overflow's leg was judged when the payee proposed it.
    _check_intent_signature(
        state, index, (transaction_id, memo_sha256, postings, True), signature, ahead
    )


def _check_intent_signature(
    state: Replay,
    index: int,
    transaction: SignedTransaction,
    signature: dict[str, Any],
    ahead: Precomputed,
) -> bytes:
    """The payer's intent says what the transaction does, names this log, and was
    signed by a key live here belonging to the payer (or an agent of it). Returns
    the intent's signed bytes."""
    transaction_id, memo_sha256, postings, pending = transaction
    key, signed, raw_signature, purpose = _signed_with(state, index, signature, ahead)
    if purpose != "intent":
        raise ReplayError(index, f"a transaction carries a {purpose!r} signature")
    try:
        said = ahead.intent(signed)
    except intents.SignatureError as error:
        raise ReplayError(index, f"a malformed intent: {error.message}") from None
    # A levied transfer: the payer's and payee's legs, then the levy's credit.
    levied = _levy_fits(state, postings, said.amount, pending=pending)
    core = postings[:2] if levied else postings
    payer = next((account for account, amount in core if amount < 0), None)
    payee = next((account for account, amount in core if amount > 0), None)
    expected = {
        "ledger": state.origin if state.origin is not None else said.ledger,
        "tx_id": transaction_id,
        "payer": payer,
        "payee": payee,
        "amount": said.amount if levied else next((m for _, m in core if m > 0), None),
        "unit": state.accounts[payer].unit if payer is not None else None,
        "memo_hash": memo_sha256,
    }
    different = [name for name in INTENT_FIELDS if expected[name] != getattr(said, name)]
    if len(core) != 2 or different:
        raise ReplayError(index, f"the signed intent does not match: {different or 'postings'}")
    assert payer is not None
    _require_signer(state, index, key, state.accounts[payer].owner)
    _require_verified(index, key, signed, raw_signature, ahead)
    return signed


def _levy_fits(
    state: Replay, postings: list[tuple[str, int]], amount: object, *, pending: bool
) -> bool:
    """Whether three legs are a transfer of `amount` with what the community's
    pools take from it: the payer pays the amount and their share of a levy, the
    payee gets the amount less theirs, and the third account gets the levy a rule
    in force gives, or, where an overflow to it is in force, also what would have
    taken the payee above their maximum (the payee then ends at it)."""
    if len(postings) != 3 or isinstance(amount, bool) or not isinstance(amount, int):
        return False
    (_, payer_leg), (payee, payee_leg), (third_account, third) = postings
    payer_share, payee_cut = -payer_leg - amount, amount - payee_leg
    if payer_share < 0 or payee_cut < 0 or payer_share + payee_cut != third:
        return False
    if third in state.pools.levies_possible(third_account, amount):
        return True
    if third_account not in state.pools.overflows.values():
        return False
    account = state.accounts.get(payee)
    return pending or (account is not None and account.balance + payee_leg == account.max_balance)


def _check_ack_signature(
    state: Replay,
    index: int,
    entry: dict[str, Any],
    postings: list[tuple[str, int]],
    signature: dict[str, Any],
    ahead: Precomputed,
) -> None:
    """The payee's acknowledgement names the transaction's intent and agrees with
    the resolution."""
    key, signed, raw_signature, purpose = _signed_with(state, index, signature, ahead)
    intent = state.pending_intents.get(entry["id"])
    if purpose != "ack" or intent is None:
        raise ReplayError(index, "an acknowledgement of a transaction without a signed intent")
    try:
        ack = ahead.ack(signed)
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
    _require_verified(index, key, signed, raw_signature, ahead)


def _check_decision_signature(
    state: Replay, index: int, entry: dict[str, Any], ahead: Precomputed
) -> None:
    """A manager's signed decision names this log, this request and this decision,
    and was signed by a key of the manager's live here."""
    key, signed, raw_signature, purpose = _signed_with(state, index, entry["signature"], ahead)
    if purpose != "decision":
        raise ReplayError(index, f"a decision carries a {purpose!r} signature")
    try:
        said = intents.parse_pool_decision(signed)
    except intents.SignatureError as error:
        raise ReplayError(index, f"a malformed decision: {error.message}") from None
    expected = (state.origin or said.ledger, entry["request"], entry["decision"])
    if (said.ledger, str(said.request_id), said.decision) != expected:
        raise ReplayError(index, "the signed decision does not match the logged one")
    if key.party != entry["manager"]:
        raise ReplayError(index, f"the key of {key.party} signed for manager {entry['manager']}")
    _require_verified(index, key, signed, raw_signature, ahead)


def _signed_with(
    state: Replay, index: int, signature: dict[str, Any], ahead: Precomputed
) -> tuple[KeyState, bytes, bytes, str]:
    key = state.keys.get(signature["key_id"])
    if key is None:
        raise ReplayError(index, f"key {signature['key_id']} is not registered before its use")
    if key.revoked:
        raise ReplayError(index, f"key {signature['key_id']} was revoked before this signature")
    try:
        signed, raw_signature = ahead.signature(signature)
    except intents.SignatureError as error:
        raise ReplayError(index, f"a signature that cannot be read: {error.message}") from None
    return key, signed, raw_signature, str(signature["purpose"])


def _require_signer(state: Replay, index: int, key: KeyState, owner: str) -> None:
    if key.party != owner and key.party not in state.agents.get(owner, set()):
        raise ReplayError(index, f"the key of {key.party} signed for an account of {owner}")


def _require_verified(
    index: int, key: KeyState, signed: bytes, raw_signature: bytes, ahead: Precomputed
) -> None:
    problem = ahead.verification(key, signed, raw_signature)
    if problem is not None:
        raise ReplayError(index, problem)


def _post(state: Replay, postings: list[tuple[str, int]]) -> None:
    for account_id, amount in postings:
        state.accounts[account_id].balance += amount
