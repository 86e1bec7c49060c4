"""The replay's quick lane for plain transfers changes nothing of what the replay
finds. Every plain transfer of a bundle takes it, to the state the careful lane
leaves; an entry changed anyhow is taken only when the careful lane takes it too,
to the same state; and whatever the state at the entry's position says against it
(a key revoked, swapped or not the payer's, an account missing or of another unit,
a transaction seen before) sends it back to the careful lane, which names it."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.audit_bench import ORIGIN, Bundle, write_bundle
from timebank.log.replay import (
    LoggedKey,
    Replay,
    ReplayError,
    apply_entry,
    parse_entry,
    replay,
)
from timebank.log.replay_transfers import (
    apply_plain_transfer,
    read_plain_transfer,
    read_plain_transfers,
)

TRANSACTIONS = 40
MEMBERS = 6


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    directory = tmp_path_factory.mktemp("bundle")
    return write_bundle(directory / "bundle.jsonl", TRANSACTIONS, members=MEMBERS, jobs=1)


def entries_of(bundle: Bundle) -> list[bytes]:
    return bundle.path.read_bytes().rstrip(b"\n").split(b"\n")[1:]  # the header aside


def opening_and_transfers(bundle: Bundle) -> tuple[list[bytes], list[bytes]]:
    entries = entries_of(bundle)
    first = next(n for n, raw in enumerate(entries) if b'"type":"transaction"' in raw)
    return entries[:first], entries[first:]


def logged_keys(state: Replay) -> dict[str, LoggedKey]:
    """The workers' hint: each key id's key as first registered."""
    return {key_id: (key.algorithm, key.public_key) for key_id, key in state.keys.items()}


def opened(bundle: Bundle, origin: str | None = ORIGIN) -> Replay:
    """The state after the bundle's opening entries: accounts and keys, no transfer."""
    opening, _ = opening_and_transfers(bundle)
    return replay(opening, Replay(origin=origin))


def seen(state: Replay) -> tuple[dict[str, int], set[str], int]:
    return state.balances(), set(state.transactions), state.size


def test_every_transfer_of_a_bundle_takes_the_quick_lane_to_the_same_state(
    bundle: Bundle,
) -> None:
    """The bench's signed transfers (the bulk of a log) all read as plain, and
    applied on the quick lane give the balances and transactions of the careful one."""
    _, transfers = opening_and_transfers(bundle)
    state = opened(bundle)
    keys = logged_keys(state)
    careful = replay(transfers, copy.deepcopy(state))
    read = read_plain_transfers(transfers, ORIGIN, keys)
    assert None not in read
    for transfer in read:
        assert transfer is not None
        assert apply_plain_transfer(state, transfer, keys)
        state.size += 1
    assert seen(state) == seen(careful)


def test_an_unsigned_transfer_takes_the_quick_lane_too(bundle: Bundle) -> None:
    """Without its signatures, a transfer is read plain, with no key to check."""
    _, transfers = opening_and_transfers(bundle)
    fields = json.loads(transfers[0])
    del fields["signatures"]
    raw = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    state = opened(bundle)
    transfer = read_plain_transfer(raw, ORIGIN, logged_keys(state))
    assert transfer is not None
    assert transfer[4:] == (None, None)
    careful = copy.deepcopy(state)
    apply_entry(careful, parse_entry(careful.size, raw))
    assert apply_plain_transfer(state, transfer, {})
    assert seen(state) == seen(careful)


def careful_outcome(state: Replay, raw: bytes) -> tuple[dict[str, int], set[str], int] | str:
    """What the careful lane makes of the entry: the state after it, or its problem."""
    state = copy.deepcopy(state)
    try:
        apply_entry(state, parse_entry(state.size, raw))
    except ReplayError as error:
        return str(error)
    return seen(state)


CHANGED_BYTES = b'"\\ -0123456789abcdefAQgw{}[],:.eE\xc3\x7f'


@given(
    transfer_number=st.integers(min_value=0, max_value=TRANSACTIONS - 1),
    position=st.integers(min_value=0),
    byte=st.sampled_from(list(CHANGED_BYTES)),
    change=st.sampled_from(["replace", "insert", "delete"]),
    origin=st.sampled_from([ORIGIN, None, "elsewhere.example/log"]),
)
def test_a_changed_entry_takes_the_quick_lane_only_where_the_careful_one_goes(
    bundle: Bundle, transfer_number: int, position: int, byte: int, change: str, origin: str | None
) -> None:
    """One byte replaced, inserted or deleted anywhere in a signed transfer (a quote, a
    backslash, a space, a digit, a sign, base64url, JSON's punctuation, non-ASCII...),
    in a log of its origin, of another or of any: if the quick lane takes it, the
    careful lane takes it too, to the same state."""
    _, transfers = opening_and_transfers(bundle)
    raw = transfers[transfer_number]
    at = position % len(raw)
    if change == "replace":
        changed = raw[:at] + bytes([byte]) + raw[at + 1 :]
    elif change == "insert":
        changed = raw[:at] + bytes([byte]) + raw[at:]
    else:
        changed = raw[:at] + raw[at + 1 :]
    state = opened(bundle, origin)
    keys = logged_keys(state)
    transfer = read_plain_transfer(changed, origin, keys)
    if transfer is None:
        return
    careful = careful_outcome(state, changed)
    assert apply_plain_transfer(state, transfer, keys)
    assert careful == seen(state)


def _revoked(state: Replay, entry: dict[str, object]) -> None:
    state.keys[_key_id(entry)].revoked = True


def _of_another_party(state: Replay, entry: dict[str, object]) -> None:
    state.keys[_key_id(entry)].party = "another party"


def _another_key_under_its_id(state: Replay, entry: dict[str, object]) -> None:
    key_id = _key_id(entry)
    other = next(key for other_id, key in state.keys.items() if other_id != key_id)
    state.keys[key_id].public_key = other.public_key


def _unknown_key(state: Replay, entry: dict[str, object]) -> None:
    del state.keys[_key_id(entry)]


def _payer_not_opened(state: Replay, entry: dict[str, object]) -> None:
    del state.accounts[_postings(entry)[0][0]]


def _payee_of_another_unit(state: Replay, entry: dict[str, object]) -> None:
    state.accounts[_postings(entry)[1][0]].unit = "another unit"


def _both_of_another_unit(state: Replay, entry: dict[str, object]) -> None:
    for account, _ in _postings(entry):
        state.accounts[account].unit = "another unit"


def _seen_before(state: Replay, entry: dict[str, object]) -> None:
    state.transactions.add(str(entry["id"]))


def _key_id(entry: dict[str, object]) -> str:
    signatures = entry["signatures"]
    assert isinstance(signatures, list)
    return str(signatures[0]["key_id"])


def _postings(entry: dict[str, object]) -> list[tuple[str, int]]:
    postings = entry["postings"]
    assert isinstance(postings, list)
    return [(str(account), int(amount)) for account, amount in postings]


STATE_CHANGES: dict[str, Callable[[Replay, dict[str, object]], None]] = {
    "the key revoked": _revoked,
    "the key of another party": _of_another_party,
    "another key under its id": _another_key_under_its_id,
    "the key unknown": _unknown_key,
    "the payer's account not opened": _payer_not_opened,
    "the payee's account of another unit": _payee_of_another_unit,
    "both accounts of another unit than the intent's": _both_of_another_unit,
    "the transaction seen before": _seen_before,
}


@pytest.mark.parametrize("change", STATE_CHANGES)
def test_what_the_state_says_against_a_transfer_leaves_it_to_the_careful_lane(
    bundle: Bundle, change: str
) -> None:
    """The quick lane declines, changing nothing, and the careful lane names the problem."""
    _, transfers = opening_and_transfers(bundle)
    raw = transfers[0]
    state = opened(bundle)
    keys = logged_keys(state)  # read as the workers read it, before the change
    transfer = read_plain_transfer(raw, ORIGIN, keys)
    assert transfer is not None
    STATE_CHANGES[change](state, json.loads(raw))
    before = seen(state)
    assert not apply_plain_transfer(state, transfer, keys)
    assert seen(state) == before
    assert isinstance(careful_outcome(state, raw), str)


def test_an_agent_of_the_payer_signs_on_both_lanes_alike(bundle: Bundle) -> None:
    """A key of an agent of the payer's owner (an organization's member) signs for it."""
    _, transfers = opening_and_transfers(bundle)
    raw = transfers[0]
    state = opened(bundle)
    keys = logged_keys(state)
    transfer = read_plain_transfer(raw, ORIGIN, keys)
    assert transfer is not None
    entry = json.loads(raw)
    payer_owner = state.accounts[_postings(entry)[0][0]].owner
    state.keys[_key_id(entry)].party = "an agent"
    state.agents[payer_owner] = {"an agent"}
    careful = careful_outcome(state, raw)
    assert apply_plain_transfer(state, transfer, keys)
    assert careful == seen(state)
