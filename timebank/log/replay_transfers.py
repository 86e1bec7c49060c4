"""Plain transfers, the bulk of a community's log, on a quick lane of the replay.

Most entries are transfers between two accounts, posted at once, signed by their
payer's device or not signed at all. When such an entry has its one canonical
spelling, it is read with one regular expression instead of decoding JSON, and
everything about it that needs no state is checked where the entry is read (in a
verifier's worker): its form, its signature with the key the worker was given,
and that the payer's intent names this log, this transaction, its two accounts,
its amount and its memo. What needs the state at the entry's position (accounts
opened, their unit and owner, the key live and the payer's) is checked by
`apply_plain_transfer`, with a few lookups, before it posts the transfer.

This lane only ever accepts: an entry it does not read, or whose checks do not all
hold, takes the careful lane (`parse_entry`, `apply_entry`), which names what is
wrong. So what the verifier finds, and how it words it, is the careful lane's;
only the time it takes changes. Pure, like the rest of the replay."""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Mapping, Sequence

from timebank.log.replay import INTEGER_MAX, LoggedKey, Replay, read_plain_intent
from timebank.signing import intents

# A JSON string's text as RFC 8785 writes it when it needs no escape: printable ASCII
# but the quote and the backslash. Anything else (an escape, other characters) is left
# to the careful lane, which decides whether it is canonical.
_PLAIN_TEXT = "[ !#-\\[\\]-~]*"
# An integer as RFC 8785 writes it, but zero (a posting is never zero): at most 16
# digits; its bound (I-JSON's) is checked once read.
_NONZERO_INTEGER = "(-?[1-9][0-9]{0,15})"
# A posted transfer between two accounts, with its payer's signed intent or with no
# signature, exactly as the log writes it (sql/0007_member_keys.sql): keys sorted, no
# space. Each group's value is what json.loads would read (no escape to undo).
_PLAIN_TRANSFER = re.compile(
    f'\\{{"category":(?:null|"{_PLAIN_TEXT}"),"created_at":"{_PLAIN_TEXT}"'
    f',"expires_at":(?:null|"{_PLAIN_TEXT}"),"id":"({_PLAIN_TEXT})","kind":"{_PLAIN_TEXT}"'
    f',"memo_sha256":"({_PLAIN_TEXT})"'
    f',"postings":\\[\\["({_PLAIN_TEXT})",{_NONZERO_INTEGER}\\]'
    f',\\["({_PLAIN_TEXT})",{_NONZERO_INTEGER}\\]\\]'
    f',"reverses":(?:null|"{_PLAIN_TEXT}")'
    f'(?:,"signatures":\\[\\{{"key_id":"({_PLAIN_TEXT})","purpose":"intent"'
    ',"signature":"([A-Za-z0-9_-]*)","signed":"([A-Za-z0-9_-]*)"\\}\\])?'
    ',"state":"posted","type":"transaction","v":1\\}'
)


PlainTransfer = tuple[str, str, str, int, str | None, str | None]
"""What the quick lane read of a plain transfer, its stateless checks passed:
(transaction id, the account debited, the account credited, the amount (> 0), and
for a signed transfer the unit its intent names and the key id it was signed under,
else None and None). A plain tuple: a verifier's workers send many of them."""


# A signature still to check: the loaded key, the signed bytes, the signature.
PendingSignature = tuple[intents.Verifier, bytes, bytes]


def read_plain_transfer(
    raw: bytes, origin: str | None, keys: Mapping[str, LoggedKey]
) -> PlainTransfer | None:
    """The entry as a plain transfer, if it is one in its canonical spelling whose
    signature (if any) verifies with `keys`' key of its id and whose intent says
    what it does in the log of `origin` (None: any); else None (the careful lane)."""
    (transfer,) = read_plain_transfers([raw], origin, keys)
    return transfer


def read_plain_transfers(
    lines: Sequence[bytes], origin: str | None, keys: Mapping[str, LoggedKey]
) -> list[PlainTransfer | None]:
    """`read_plain_transfer` of each entry; the signatures are checked together, once
    all are read (back to back, verifications run faster: the crypto's code and data
    stay in the processor's caches)."""
    transfers: list[PlainTransfer | None] = []
    pending: list[tuple[int, PendingSignature]] = []
    for raw in lines:
        read = read_unverified_transfer(raw, origin, keys)
        if read is None:
            transfers.append(None)
            continue
        transfer, signature = read
        if signature is not None:
            pending.append((len(transfers), signature))
        transfers.append(transfer)
    for offset, (verifier, signed, raw_signature) in pending:
        if not verifier.verify(signed, raw_signature):
            transfers[offset] = None
    return transfers


def read_unverified_transfer(
    raw: bytes, origin: str | None, keys: Mapping[str, LoggedKey]
) -> tuple[PlainTransfer, PendingSignature | None] | None:
    """`read_plain_transfer`, but the signature left to check: the transfer and what
    its signature needs checked (None for an unsigned transfer)."""
    match = _PLAIN_TRANSFER.fullmatch(raw.decode("latin-1"))  # the pattern takes only ASCII
    if match is None:
        return None
    (
        transaction_id,
        memo_sha256,
        first_account,
        first_text,
        second_account,
        second_text,
        key_id,
        signature_text,
        signed_text,
    ) = match.groups()
    first_amount, second_amount = int(first_text), int(second_text)
    if first_amount + second_amount != 0 or abs(first_amount) > INTEGER_MAX:
        return None
    if first_amount < 0:
        payer, payee, amount = first_account, second_account, second_amount
    else:
        payer, payee, amount = second_account, first_account, first_amount
    if key_id is None:
        return (transaction_id, payer, payee, amount, None, None), None
    key = keys.get(key_id)
    verifier = _loaded_key(*key) if key is not None else None
    if verifier is None:
        return None
    try:
        signed = intents.b64url_decode(signed_text)
        raw_signature = intents.b64url_decode(signature_text)
    except intents.SignatureError:
        return None
    said = read_plain_intent(signed)
    if (
        said is None
        or (origin is not None and said.ledger != origin)
        or said.tx_id != transaction_id
        or said.payer != payer
        or said.payee != payee
        or said.amount != amount
        or said.memo_hash != memo_sha256
    ):
        return None
    transfer = (transaction_id, payer, payee, amount, said.unit, key_id)
    return transfer, (verifier, signed, raw_signature)


@functools.lru_cache(maxsize=intents.LOADED_KEYS_MAX)
def _loaded_key(algorithm: str, public_key: str) -> intents.Verifier | None:
    """A logged key (algorithm, base64url public key), loaded once; None if it cannot be."""
    try:
        return intents.load_public_key(
            intents.KeyAlgorithm(algorithm), intents.b64url_decode(public_key)
        )
    except (ValueError, intents.SignatureError):  # an unknown algorithm, a bad key
        return None


def apply_plain_transfer(
    state: Replay, transfer: PlainTransfer, keys: Mapping[str, LoggedKey]
) -> bool:
    """Posts the transfer read by `read_plain_transfer(..., keys)` at leaf `state.size`
    (the caller counts it) if what it needs of the state holds: new, between opened
    accounts of one unit (the intent's), signed by a key live here, the one in `keys`,
    of the payer's owner or an agent of it. False, with nothing changed, otherwise
    (the careful lane's turn)."""
    return apply_plain_transfers(state, [transfer], 0, keys) == 1


def apply_plain_transfers(
    state: Replay,
    transfers: Sequence[PlainTransfer | None],
    start: int,
    keys: Mapping[str, LoggedKey],
) -> int:
    """`apply_plain_transfer` of the transfers from `start` on, one after the other,
    up to the first that is None or is not applied: how many were (the caller counts
    them). One loop, the state's tables at hand: the replay's bulk costs little."""
    accounts, transactions, live_keys, agents = (
        state.accounts,
        state.transactions,
        state.keys,
        state.agents,
    )
    applied = 0
    for transfer in itertools.islice(transfers, start, None):
        if transfer is None:
            break
        transaction_id, payer_id, payee_id, amount, unit, key_id = transfer
        payer, payee = accounts.get(payer_id), accounts.get(payee_id)
        if (
            payer is None
            or payee is None
            or payer.unit != payee.unit
            or transaction_id in transactions
        ):
            break
        if key_id is not None:
            key, logged = live_keys.get(key_id), keys.get(key_id)
            if (
                key is None
                or logged is None
                or key.revoked
                or unit != payer.unit
                or key.algorithm != logged[0]
                or key.public_key != logged[1]
                or (key.party != payer.owner and key.party not in agents.get(payer.owner, ()))
            ):
                break
        transactions.add(transaction_id)
        payer.balance -= amount
        payee.balance += amount
        applied += 1
    return applied
