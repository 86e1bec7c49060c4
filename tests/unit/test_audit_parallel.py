"""The offline verifier on every core: reading, hashing and checking signatures ahead,
in worker processes and by chunks, changes nothing of what `verify_bundle` finds. A
bundle, whole or changed, gets the same problems from one process as from several,
at any chunk size; its first problem is the one the plain sequential replay raises;
and the quick canonical check accepts exactly the bytes RFC 8785 writes."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from bench.audit_bench import (
    ORIGIN,
    STARTED_AT,
    UNIT_CODE,
    BenchMember,
    Bundle,
    LoggedSignature,
    key_entry,
    resolution_entry,
    transaction_entry,
    write_bundle,
)
from timebank.log.audit import verify_bundle
from timebank.log.replay import Precomputed, Replay, ReplayError, apply_entry, parse_entry, replay
from timebank.signing import intents

TRANSACTIONS = 300
MEMBERS = 12
# Small chunks: the bundle spreads over many, as a big one does with the default.
CHUNK_ENTRIES = 16
PARALLEL_JOBS = 2

Lines = list[bytes]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    directory = tmp_path_factory.mktemp("bundle")
    return write_bundle(directory / "bundle.jsonl", TRANSACTIONS, members=MEMBERS, jobs=1)


def lines_of(bundle: Bundle) -> Lines:
    """The header, then the entries, one per line."""
    return bundle.path.read_bytes().rstrip(b"\n").split(b"\n")


def written(path: Path, lines: Lines) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def sequential_problem(path: Path) -> str | None:
    """What the plain replay (no precomputation, one entry after the other) raises."""
    header, *entries = path.read_bytes().rstrip(b"\n").split(b"\n")
    try:
        replay(entries, Replay(origin=json.loads(header)["origin"]))
    except ReplayError as error:
        return str(error)
    return None


def transaction_lines(lines: Lines) -> list[int]:
    return [number for number, line in enumerate(lines) if b'"type":"transaction"' in line]


def key_line_of(lines: Lines, transaction: bytes) -> int:
    key_id = json.loads(transaction)["signatures"][0]["key_id"]
    return next(
        number
        for number, line in enumerate(lines)
        if b'"type":"key"' in line and json.loads(line)["key_id"] == key_id
    )


def test_a_valid_bundle_verifies_alike_in_one_process_and_several(bundle: Bundle) -> None:
    """Whole chunks of one entry or many, a last partial chunk, checkpoints inside a
    chunk or not: the roots, the earlier checkpoint and the balances all hold."""
    results = [
        verify_bundle(bundle.path, earlier_checkpoint=bundle.earlier_checkpoint, jobs=jobs)
        for jobs in (1, PARALLEL_JOBS)  # one chunk: verified in this process either way
    ]
    for chunk_entries in (1, CHUNK_ENTRIES, 64):
        results.append(
            verify_bundle(
                bundle.path,
                earlier_checkpoint=bundle.earlier_checkpoint,
                jobs=PARALLEL_JOBS,
                chunk_entries=chunk_entries,
            )
        )
    for result in results:
        found = (result.size, result.checkpoints_verified, result.accounts, result.problems)
        assert found == (bundle.size, 2, MEMBERS, [])


def _changed_signature(lines: Lines) -> Lines:
    number = transaction_lines(lines)[TRANSACTIONS // 2]
    line = lines[number]
    position = line.index(b'"signature":"') + len(b'"signature":"') + 10
    replacement = b"B" if line[position : position + 1] == b"A" else b"A"
    return _replaced(lines, number, line[:position] + replacement + line[position + 1 :])


def _signature_of_another_transaction(lines: Lines) -> Lines:
    first, second = transaction_lines(lines)[100:102]
    signatures = lines[first][
        lines[first].index(b'"signatures":') : lines[first].index(b',"state"')
    ]
    line = lines[second]
    start, end = line.index(b'"signatures":'), line.index(b',"state"')
    return _replaced(lines, second, line[:start] + signatures + line[end:])


def _key_registered_after_its_use(lines: Lines) -> Lines:
    number = key_line_of(lines, lines[transaction_lines(lines)[40]])
    return [*lines[:number], *lines[number + 1 :], lines[number]]


def _key_revoked_before_a_signature(lines: Lines) -> Lines:
    number = transaction_lines(lines)[200]
    key_id = json.loads(lines[number])["signatures"][0]["key_id"]
    revocation = rfc8785.dumps({"key_id": key_id, "type": "key_revocation", "v": 1})
    return [*lines[:number], revocation, *lines[number:]]


def _key_registered_first_with_another_public_key(lines: Lines) -> Lines:
    """The workers' key hint (the first registration of an id) names a key that the
    replay refuses: a signature checked with it must not count."""
    numbers = [number for number, line in enumerate(lines) if b'"type":"key"' in line]
    real, other = json.loads(lines[numbers[0]]), json.loads(lines[numbers[1]])
    impostor = rfc8785.dumps({**real, "public_key": other["public_key"]})
    return [lines[0], impostor, *lines[1:]]


def _not_canonical(lines: Lines) -> Lines:
    number = transaction_lines(lines)[150]
    return _replaced(lines, number, lines[number].replace(b'"kind":', b'"kind": ', 1))


def _not_json(lines: Lines) -> Lines:
    number = transaction_lines(lines)[250]
    return _replaced(lines, number, lines[number][:-1])


def _unknown_version(lines: Lines) -> Lines:
    number = transaction_lines(lines)[7]
    return _replaced(lines, number, lines[number].replace(b'"v":1}', b'"v":2}'))


def _fraction_in_an_amount(lines: Lines) -> Lines:
    """Canonical still (RFC 8785 spells 42.5 so): left to rfc8785 by the quick check."""
    number = transaction_lines(lines)[60]
    line = lines[number]
    end = line.index(b"]]")
    return _replaced(lines, number, line[:end] + b".5" + line[end:])


def _transaction_removed(lines: Lines) -> Lines:
    number = transaction_lines(lines)[30]
    return [*lines[:number], *lines[number + 1 :]]


def _transactions_swapped(lines: Lines) -> Lines:
    first, second = transaction_lines(lines)[10:12]
    swapped = list(lines)
    swapped[first], swapped[second] = lines[second], lines[first]
    return swapped


def _replaced(lines: Lines, number: int, line: bytes) -> Lines:
    return [*lines[:number], line, *lines[number + 1 :]]


CHANGES: dict[str, Callable[[Lines], Lines]] = {
    "a signature's byte": _changed_signature,
    "another transaction's signature": _signature_of_another_transaction,
    "a key registered after its use": _key_registered_after_its_use,
    "a key revoked before a signature": _key_revoked_before_a_signature,
    "a key registered first with another public key": (
        _key_registered_first_with_another_public_key
    ),
    "a space in an entry": _not_canonical,
    "an entry cut short": _not_json,
    "an unknown entry version": _unknown_version,
    "a fraction in an amount": _fraction_in_an_amount,
    "a transaction removed": _transaction_removed,
    "two transactions swapped": _transactions_swapped,
}


@pytest.mark.parametrize("change", CHANGES)
def test_a_changed_bundle_gets_the_same_problems_from_several_processes(
    bundle: Bundle, tmp_path: Path, change: str
) -> None:
    """The problems are the same from one process and from several; the first names
    the entry, and the reason, that the sequential replay names."""
    path = written(tmp_path / "changed.jsonl", CHANGES[change](lines_of(bundle)))
    alone = verify_bundle(path, jobs=1).problems
    together = verify_bundle(path, jobs=PARALLEL_JOBS, chunk_entries=CHUNK_ENTRIES).problems
    assert together == alone
    assert together != []
    expected = sequential_problem(path)
    if expected is not None:
        assert together == [expected]


def transfer_intent(
    payer: BenchMember, payee: BenchMember, transaction_id: uuid.UUID, amount: int, key_id: str
) -> bytes:
    """The payer's intent for a transfer with no memo, made at the bundle's start."""
    return intents.make_transfer_intent(
        ledger=ORIGIN,
        tx_id=transaction_id,
        payer=payer.account_id,
        payee=payee.account_id,
        unit=UNIT_CODE,
        amount=amount,
        memo="",
        not_after=STARTED_AT + timedelta(minutes=5),
        key_id=key_id,
    )


def with_an_acknowledged_transfer(bundle: Bundle, *, ack_forged: bool) -> Lines:
    """The bundle's lines and a pending signed transfer, then the payee's signed
    acceptance of it (its signature changed by one bit when forged)."""
    payer, payee = bundle.members[:2]
    transaction_id, created_at, amount = uuid.UUID(int=2026, version=4), STARTED_AT, 60
    intent = transfer_intent(payer, payee, transaction_id, amount, payer.key_id)
    pending = transaction_entry(
        transaction_id=transaction_id,
        created_at=created_at,
        expires_at=created_at + timedelta(days=1),
        kind="exchange",
        memo="",
        postings=[(payer.account_id, -amount), (payee.account_id, amount)],
        state="pending",
        signature=LoggedSignature("intent", intent, signed_by(payer, intent), payer.key_id),
    )
    ack = intents.make_ack(
        ledger=ORIGIN,
        tx_id=transaction_id,
        tx_hash=intents.sha256_hex(intent),
        decision=intents.AckDecision.ACCEPT,
        key_id=payee.key_id,
    )
    signature = signed_by(payee, ack)
    if ack_forged:
        signature = bytes([signature[0] ^ 1]) + signature[1:]
    resolution = resolution_entry(
        transaction_id=transaction_id,
        resolved_at=created_at + timedelta(minutes=1),
        state="posted",
        signature=LoggedSignature("ack", ack, signature, payee.key_id),
    )
    return [*lines_of(bundle), pending, resolution]


def signed_by(member: BenchMember, message: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(member.private_key).sign(message)


@pytest.mark.parametrize("ack_forged", [False, True], ids=["signed", "forged"])
def test_an_acknowledgement_is_judged_alike_by_several_processes(
    bundle: Bundle, tmp_path: Path, ack_forged: bool
) -> None:
    """A payee's acknowledgement of a pending transfer holds, or fails at its entry,
    in one process and in several alike (the bundle's header, older, then disagrees
    on the size, roots and balances: the same problems too)."""
    lines = with_an_acknowledged_transfer(bundle, ack_forged=ack_forged)
    path = written(tmp_path / "acknowledged.jsonl", lines)
    alone = verify_bundle(path, jobs=1).problems
    together = verify_bundle(path, jobs=PARALLEL_JOBS, chunk_entries=CHUNK_ENTRIES).problems
    assert together == alone
    resolution_index = len(lines) - 2  # the header is no entry
    if ack_forged:
        assert together == [f"entry {resolution_index}: a signature does not verify"]
        assert sequential_problem(path) == together[0]
    else:
        assert sequential_problem(path) is None
        assert (
            together[0]
            == f"the bundle holds {bundle.size + 2} entries, its header says {bundle.size}"
        )


def test_a_signature_under_a_key_of_small_order_does_not_verify(
    bundle: Bundle, tmp_path: Path
) -> None:
    """A log that registered the neutral element as a member's key (as no version
    should have) and a transfer "signed" under it with R = neutral, S = 0, which
    OpenSSL's verification accepts for any message: the audit refuses the transfer's
    entry, in one process and in several alike (tests/unit/test_edwards25519.py)."""
    payer, payee = bundle.members[:2]
    identity = (1).to_bytes(32, "little")
    key_id = intents.public_key_id(intents.KeyAlgorithm.ED25519, identity)
    transaction_id, amount = uuid.UUID(int=2027, version=4), 30
    intent = transfer_intent(payer, payee, transaction_id, amount, key_id)
    forged = identity + bytes(32)
    lines = [
        *lines_of(bundle),
        key_entry(key_id=key_id, party_id=payer.party_id, algorithm="ed25519", public_key=identity),
        transaction_entry(
            transaction_id=transaction_id,
            created_at=STARTED_AT,
            expires_at=None,
            kind="exchange",
            memo="",
            postings=[(payer.account_id, -amount), (payee.account_id, amount)],
            state="posted",
            signature=LoggedSignature("intent", intent, forged, key_id),
        ),
    ]
    path = written(tmp_path / "small_order.jsonl", lines)
    alone = verify_bundle(path, jobs=1).problems
    together = verify_bundle(path, jobs=PARALLEL_JOBS, chunk_entries=CHUNK_ENTRIES).problems
    assert together == alone
    transfer_index = len(lines) - 2  # the header is no entry
    assert together[0] == f"entry {transfer_index}: a signature does not verify"


def replayed_to_first_transaction(bundle: Bundle) -> tuple[Replay, dict[str, object]]:
    """The state before the first transaction, and that transaction's entry."""
    header, *entries = lines_of(bundle)
    first = transaction_lines(lines_of(bundle))[0] - 1
    state = replay(entries[:first], Replay(origin=json.loads(header)["origin"]))
    return state, parse_entry(state.size, entries[first])


def test_a_result_computed_ahead_with_another_key_is_not_taken(bundle: Bundle) -> None:
    """A signature is judged with the key live at its position, whatever key the
    precomputation assumed (here every key id is given another member's key)."""
    state, entry = replayed_to_first_transaction(bundle)
    logged = list(state.keys.items())
    wrong_keys = {
        key_id: (key.algorithm, logged[(index + 1) % len(logged)][1].public_key)
        for index, (key_id, key) in enumerate(logged)
    }
    ahead = Precomputed()
    ahead.compute(entry, wrong_keys)
    assert len(ahead.verifications) == 1
    apply_entry(state, entry, ahead)
    assert entry["id"] in state.transactions


def test_a_result_computed_ahead_is_taken_when_its_inputs_match(bundle: Bundle) -> None:
    """A verdict computed ahead stands for checking the signature again: one of
    failure, put there on purpose, is what the replay reports."""
    state, entry = replayed_to_first_transaction(bundle)
    ahead = Precomputed()
    ahead.compute(entry, {key_id: (k.algorithm, k.public_key) for key_id, k in state.keys.items()})
    (inputs,) = ahead.verifications
    assert ahead.verifications[inputs] is None
    ahead.verifications[inputs] = "a verdict computed ahead"
    with pytest.raises(ReplayError, match=f"entry {state.size}: a verdict computed ahead"):
        apply_entry(state, entry, ahead)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats()
    | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=10,
)
SPELLINGS: dict[str, Callable[[object], bytes]] = {
    "rfc8785": rfc8785.dumps,  # type: ignore[dict-item]
    "sorted, compact": lambda value: json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode(),
    "sorted, compact, escaped": lambda value: json.dumps(
        value, sort_keys=True, separators=(",", ":")
    ).encode(),
    "unsorted, compact": lambda value: json.dumps(
        value, separators=(",", ":"), ensure_ascii=False
    ).encode(),
    "sorted, spaced": lambda value: json.dumps(value, sort_keys=True, ensure_ascii=False).encode(),
}


def is_canonical(raw: bytes) -> bool:
    """RFC 8785's own definition: the canonical form of what it parses to."""
    try:
        return bool(rfc8785.dumps(json.loads(raw)) == raw)
    except (ValueError, rfc8785.CanonicalizationError):
        return False


@given(
    fields=st.dictionaries(st.text(max_size=4), JSON_VALUES, max_size=4),
    spelling=st.sampled_from(sorted(SPELLINGS)),
)
def test_an_entry_is_read_exactly_when_it_is_canonical(
    fields: dict[str, object], spelling: str
) -> None:
    """Floats, NaN, big integers, escapes, key order (UTF-16 against code points),
    spaces: the quick check accepts no spelling that RFC 8785 would not write."""
    entry = {**fields, "v": 1}
    try:
        raw = SPELLINGS[spelling](entry)
    except (ValueError, rfc8785.CanonicalizationError, UnicodeEncodeError):
        return
    try:
        parsed = parse_entry(0, raw)
    except ReplayError:
        parsed = None
    assert (parsed is not None) == is_canonical(raw)
    if parsed is not None:
        assert parsed == json.loads(raw)


def test_changes_at_random_are_found_alike(bundle: Bundle, tmp_path: Path) -> None:
    """One byte changed at random places: the same problems, and the first one is the
    sequential replay's when the replay fails."""
    lines = lines_of(bundle)
    generator = random.Random(8785)
    for _ in range(6):
        number = generator.randrange(1, len(lines))
        line = bytearray(lines[number])
        line[generator.randrange(len(line))] = generator.choice(b'0123456789abcdefAB,:"{}[] ')
        path = written(tmp_path / "random.jsonl", _replaced(lines, number, bytes(line)))
        alone = verify_bundle(path, jobs=1).problems
        together = verify_bundle(path, jobs=PARALLEL_JOBS, chunk_entries=CHUNK_ENTRIES).problems
        assert together == alone
        expected = sequential_problem(path)
        if expected is not None:
            assert together == [expected]
