"""Signed notes and checkpoints: the C2SP formats, signed and checked with Ed25519.

Known answers, cited where they are used:

- golang.org/x/mod (github.com/golang/mod), sumdb/note/note_test.go: the PeterNeumann and
  EnochRoot keys, their verifier keys, the signed note TestSign expects byte for byte, the
  signature lines of TestOpen and the malformed notes and keys it refuses;
- C2SP/C2SP signed-note.md and tlog-checkpoint.md: the example note and checkpoint.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given
from hypothesis import strategies as st

from timebank.log.merkle import EMPTY_ROOT, HASH_SIZE, TREE_SIZE_MAX
from timebank.log.note import (
    COSIGNATURE_V1_TYPE,
    NOTE_SIZE_MAX_BYTES,
    SIGNATURES_MAX,
    AmbiguousVerifiers,
    Checkpoint,
    InvalidKeyName,
    MalformedCheckpoint,
    MalformedNote,
    MalformedVerifierKey,
    Note,
    NoteError,
    NoteSignatureInvalid,
    NoteUnverified,
    Signature,
    VerifiedNote,
    Verifier,
    add_signature,
    cosignature_of,
    cosignature_time,
    ed25519_key_id,
    format_checkpoint,
    format_signature_line,
    format_verifier_key,
    is_valid_key_name,
    parse_checkpoint,
    parse_note,
    parse_verifier_key,
    sign_note,
    signature_of,
    verify_note,
)

# golang.org/x/mod sumdb/note/note_test.go (TestSign, TestOpen, TestNewVerifier).
PETER_PRIVATE_KEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VERIFIER_KEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VERIFIER_KEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIGNATURE_LINE = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotp"
    "RZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIGNATURE_LINE = (
    "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox"
    "33WWd1RvMc+QQ=\n"
)
# note_test.go's keys that are well formed but must be refused: a key of the wrong length and
# an unknown algorithm, each with a key id adjusted to match.
GO_BAD_VERIFIER_KEYS = [
    "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
    "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
]

# C2SP signed-note.md, the example note (its key is not published).
C2SP_NOTE_TEXT = (
    "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n"
)
C2SP_NOTE = (
    C2SP_NOTE_TEXT + "\n— quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITL"
    "lC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n"
)
# C2SP tlog-checkpoint.md, the example checkpoint.
C2SP_CHECKPOINT_BODY = (
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
)
C2SP_CHECKPOINT_SIGNATURE = (
    "— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcy"
    "v2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
)

LOG_NAME = "timebank.example/community/1"
WITNESS_NAME = "witness.example/w1"
ROOT = bytes(range(HASH_SIZE))


def peter_private_key() -> Ed25519PrivateKey:
    """The private key of note_test.go's PRIVATE+KEY+PeterNeumann: base64(0x01 || seed)."""
    encoded = PETER_PRIVATE_KEY.split("+", 4)[4]
    return Ed25519PrivateKey.from_private_bytes(base64.b64decode(encoded)[1:])


def peter() -> Verifier:
    return parse_verifier_key(PETER_VERIFIER_KEY)


def enoch() -> Verifier:
    return parse_verifier_key(ENOCH_VERIFIER_KEY)


def log_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes([1]) * 32)


def witness_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes([2]) * 32)


def verifier_of(name: str, key: Ed25519PrivateKey) -> Verifier:
    return Verifier.from_public_key(name, key.public_key())


def signed_checkpoint(tree_size: int = 7) -> str:
    body = format_checkpoint(Checkpoint(LOG_NAME, tree_size, ROOT))
    return sign_note(body, LOG_NAME, log_key())


def changed_character(text: str, position: int) -> str:
    return text[:position] + chr(ord(text[position]) + 1) + text[position + 1 :]


# Published vectors.


def test_signing_reproduces_the_go_note_byte_for_byte() -> None:
    """sumdb/note TestSign: PeterNeumann's key signs its text into exactly the published note
    (Ed25519 is deterministic), so the key id and line format agree with Go's."""
    expected = GO_TEXT + "\n" + PETER_SIGNATURE_LINE
    assert sign_note(GO_TEXT, "PeterNeumann", peter_private_key()) == expected


def test_key_id_and_verifier_key_match_the_published_ones() -> None:
    """The key id of PeterNeumann's public key is c74f20a3, and its verifier key formats to the
    published text, which parses back to the same verifier."""
    public_key = peter_private_key().public_key()
    verifier = Verifier.from_public_key("PeterNeumann", public_key)
    assert ed25519_key_id("PeterNeumann", public_key.public_bytes_raw()).hex() == "c74f20a3"
    assert format_verifier_key(verifier) == PETER_VERIFIER_KEY
    assert parse_verifier_key(PETER_VERIFIER_KEY) == verifier
    assert format_verifier_key(enoch()) == ENOCH_VERIFIER_KEY


def test_go_note_verifies_by_each_known_key_and_ignores_the_others() -> None:
    """sumdb/note TestOpen: with PeterNeumann known, his signature verifies and EnochRoot's is
    ignored; with both known, both are signers, in signature order."""
    note = GO_TEXT + "\n" + PETER_SIGNATURE_LINE + ENOCH_SIGNATURE_LINE
    assert verify_note(note, [peter()]) == VerifiedNote(GO_TEXT, (peter(),))
    assert verify_note(note, [enoch(), peter()]) == VerifiedNote(GO_TEXT, (peter(), enoch()))


@pytest.mark.parametrize(
    ("signatures", "known"),
    [
        pytest.param(PETER_SIGNATURE_LINE + ENOCH_SIGNATURE_LINE, [], id="no known key"),
        pytest.param(
            PETER_SIGNATURE_LINE.replace("PeterNeumann", "CarmenSandiego"),
            [peter()],
            id="known key id under another name",
        ),
        pytest.param(PETER_SIGNATURE_LINE.replace("x08g", "xxxx"), [peter()], id="another key id"),
    ],
)
def test_a_note_signed_by_no_known_key_is_unverified(
    signatures: str, known: list[Verifier]
) -> None:
    """sumdb/note TestOpen: a signature matches a known key only by name and key id together;
    others are ignored, and a note no known key signed is NoteUnverified."""
    with pytest.raises(NoteUnverified):
        verify_note(GO_TEXT + "\n" + signatures, known)


def test_duplicate_signatures_name_each_signer_once() -> None:
    """sumdb/note TestOpen: repeated signatures by a known key count once; repeated and damaged
    signatures by unknown keys are ignored."""
    damaged = ENOCH_SIGNATURE_LINE[:60] + "ABCD" + ENOCH_SIGNATURE_LINE[60:]
    signatures = PETER_SIGNATURE_LINE * 2 + ENOCH_SIGNATURE_LINE * 2 + damaged
    assert verify_note(GO_TEXT + "\n" + signatures, [peter()]).signers == (peter(),)


def test_a_known_keys_bad_signature_refuses_the_whole_note() -> None:
    """sumdb/note TestOpen: a damaged signature from a known key (right name and key id) is
    NoteSignatureInvalid, even beside a good one from another known key."""
    damaged = PETER_SIGNATURE_LINE[:60] + "ABCD" + PETER_SIGNATURE_LINE[60:]
    with pytest.raises(NoteSignatureInvalid):
        verify_note(GO_TEXT + "\n" + damaged, [peter()])
    with pytest.raises(NoteSignatureInvalid):
        verify_note(GO_TEXT + "\n" + ENOCH_SIGNATURE_LINE + damaged, [peter(), enoch()])


@pytest.mark.parametrize(
    "note",
    [
        pytest.param(GO_TEXT, id="no signatures"),
        pytest.param(GO_TEXT + "\n", id="empty signature block"),
        pytest.param(GO_TEXT + "\n" + PETER_SIGNATURE_LINE[:-1], id="no final newline"),
        pytest.param("\x01" + GO_TEXT + "\n" + PETER_SIGNATURE_LINE, id="control character"),
        pytest.param(b"\xff" + (GO_TEXT + "\n" + PETER_SIGNATURE_LINE).encode(), id="not UTF-8"),
        pytest.param(
            GO_TEXT + "\n" + PETER_SIGNATURE_LINE.replace("PeterNeumann", "Bad Name"),
            id="space in name",
        ),
        pytest.param(
            GO_TEXT + "\n" + PETER_SIGNATURE_LINE + "Unexpected line.\n", id="trailing line"
        ),
        pytest.param(GO_TEXT + "\n" + PETER_SIGNATURE_LINE * (SIGNATURES_MAX + 1), id="too many"),
    ],
)
def test_go_malformed_notes_are_refused(note: str | bytes) -> None:
    """sumdb/note TestOpen's malformed notes, and 101 signatures, are MalformedNote whatever
    keys are known."""
    with pytest.raises(MalformedNote):
        verify_note(note, [peter()])
    with pytest.raises(MalformedNote):
        parse_note(note)


def test_go_verifier_key_manglings_are_refused() -> None:
    """sumdb/note TestNewVerifier: every proper substring of the verifier key, every one-
    character increment of it, and the two adjusted bad keys are MalformedVerifierKey."""
    key = PETER_VERIFIER_KEY
    substrings = {
        key[start:end]
        for start in range(len(key) + 1)
        for end in range(start + 1, len(key) + 1)
        if (start, end) != (0, len(key))
    }
    increments = {changed_character(key, position) for position in range(len(key))}
    accepted = []
    for text in sorted(substrings | increments) + GO_BAD_VERIFIER_KEYS:
        try:
            parse_verifier_key(text)
        except MalformedVerifierKey:
            continue
        accepted.append(text)
    assert accepted == []


@pytest.mark.parametrize("signature_type", [b"\x01", COSIGNATURE_V1_TYPE], ids=["note", "cosig"])
def test_a_log_or_witness_key_of_small_order_is_refused(signature_type: bytes) -> None:
    """The neutral element as a key: R = neutral, S = 0 is its signature of any text
    (the library alone accepts it), so a checkpoint "signed" by it proves nothing and
    its verifier key is refused, in text and as a value (tests/unit/test_edwards25519.py)."""
    identity = (1).to_bytes(32, "little")
    Ed25519PublicKey.from_public_bytes(identity).verify(identity + bytes(32), b"any text\n")
    key_id = ed25519_key_id("witness.example", identity, signature_type)
    text = f"witness.example+{key_id.hex()}+" + base64.b64encode(signature_type + identity).decode(
        "ascii"
    )
    with pytest.raises(MalformedVerifierKey, match="small order"):
        parse_verifier_key(text)
    with pytest.raises(MalformedVerifierKey, match="small order"):
        Verifier("witness.example", identity, signature_type)


def test_the_c2sp_example_note_parses() -> None:
    """signed-note.md's example: the text ends at the last empty line (it has another inside)
    and its one signature is a 4-byte key id and a 64-byte Ed25519 signature."""
    parsed = parse_note(C2SP_NOTE)
    assert parsed.body == C2SP_NOTE_TEXT
    assert [(s.name, len(s.key_id), len(s.signature)) for s in parsed.signatures] == [
        ("quasimodo.example/salvatore", 4, 64)
    ]
    with pytest.raises(NoteUnverified):
        verify_note(C2SP_NOTE, [peter()])


def test_the_c2sp_example_checkpoint_parses_and_formats_back() -> None:
    """tlog-checkpoint.md's example: origin, decimal size and base64 root, formatted back to
    the same text; its signed note parses with the log's name on the signature."""
    checkpoint = parse_checkpoint(C2SP_CHECKPOINT_BODY)
    assert checkpoint == Checkpoint(
        "example.com/behind-the-sofa",
        20852163,
        base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="),
    )
    assert format_checkpoint(checkpoint) == C2SP_CHECKPOINT_BODY
    parsed = parse_note(C2SP_CHECKPOINT_BODY + "\n" + C2SP_CHECKPOINT_SIGNATURE)
    assert parsed.body == C2SP_CHECKPOINT_BODY
    assert parsed.signatures[0].name == "example.com/behind-the-sofa"


# Our own round trips.


def test_a_signed_checkpoint_round_trips() -> None:
    """A checkpoint, formatted, signed by the log key, verified and parsed, is itself again."""
    checkpoint = Checkpoint(LOG_NAME, 7, ROOT, ("an extension line",))
    note = sign_note(format_checkpoint(checkpoint), LOG_NAME, log_key())
    verified = verify_note(note, [verifier_of(LOG_NAME, log_key())])
    assert verified.signers == (verifier_of(LOG_NAME, log_key()),)
    assert parse_checkpoint(verified.body) == checkpoint


def test_a_witness_cosignature_is_added_and_verified() -> None:
    """A witness adds its signature after the log's; each key verifies alone, both together
    are both signers, and cosigning twice keeps one signature per key."""
    log, witness = verifier_of(LOG_NAME, log_key()), verifier_of(WITNESS_NAME, witness_key())
    cosigned = add_signature(signed_checkpoint(), WITNESS_NAME, witness_key())
    assert verify_note(cosigned, [log, witness]).signers == (log, witness)
    assert verify_note(cosigned, [witness]).signers == (witness,)
    assert verify_note(cosigned, [log]).signers == (log,)
    assert add_signature(cosigned, WITNESS_NAME, witness_key()) == cosigned
    body = parse_note(cosigned).body
    witness_line = format_signature_line(signature_of(body, WITNESS_NAME, witness_key()))
    assert cosigned.endswith(witness_line)
    assert len(parse_note(cosigned).signatures) == 2


def test_a_tampered_checkpoint_fails_verification() -> None:
    """Changing the tree size after signing makes the log's signature fail."""
    note = signed_checkpoint(tree_size=7).replace("\n7\n", "\n8\n", 1)
    with pytest.raises(NoteSignatureInvalid):
        verify_note(note, [verifier_of(LOG_NAME, log_key())])


def test_a_signature_by_another_key_under_the_same_name_is_ignored() -> None:
    """A key that shares the log's name but not its key id is unknown, so its signature is
    ignored rather than failed: the note is unverified, not invalid."""
    impostor = sign_note(format_checkpoint(Checkpoint(LOG_NAME, 7, ROOT)), LOG_NAME, witness_key())
    with pytest.raises(NoteUnverified):
        verify_note(impostor, [verifier_of(LOG_NAME, log_key())])


def test_ambiguous_verifiers_are_a_configuration_error() -> None:
    """Two different keys with the same name and key id cannot both be trusted: the public
    keys 56253 and 86747 (as 32-byte big-endian numbers) share key id 4a384c13 under LOG_NAME,
    found by a birthday search."""
    first = Verifier(LOG_NAME, (56253).to_bytes(32, "big"))
    second = Verifier(LOG_NAME, (86747).to_bytes(32, "big"))
    assert (first.key_id.hex(), second.key_id.hex()) == ("4a384c13", "4a384c13")
    with pytest.raises(AmbiguousVerifiers):
        verify_note(signed_checkpoint(), [first, second])


def test_the_same_verifier_twice_is_not_ambiguous() -> None:
    """Listing one key twice is harmless: it signs once."""
    log = verifier_of(LOG_NAME, log_key())
    assert verify_note(signed_checkpoint(), [log, log]).signers == (log,)


def test_signature_count_is_bounded() -> None:
    """SIGNATURES_MAX signatures are accepted; cosigning beyond them is MalformedNote."""
    keys = [Ed25519PrivateKey.from_private_bytes(bytes([n]) * 32) for n in range(SIGNATURES_MAX)]
    note = signed_checkpoint()
    for number, key in enumerate(keys[1:]):
        note = add_signature(note, f"witness.example/{number}", key)
    assert len(parse_note(note).signatures) == SIGNATURES_MAX
    with pytest.raises(MalformedNote):
        add_signature(note, WITNESS_NAME, witness_key())


@pytest.mark.parametrize(
    "name", ["", "a b", "a+b", "a\tb", "a\nb", "a\u00a0b", "a\u2003b", "a\x7fb"]
)
def test_invalid_key_names_are_refused(name: str) -> None:
    """A key name is non-empty, with no Unicode space, '+' or control character: signing,
    building a verifier and computing a key id all refuse it."""
    assert is_valid_key_name(name) is False
    with pytest.raises(InvalidKeyName):
        sign_note(C2SP_CHECKPOINT_BODY, name, log_key())
    with pytest.raises(InvalidKeyName):
        Verifier(name, bytes(32))
    with pytest.raises(InvalidKeyName):
        ed25519_key_id(name, bytes(32))


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("no final newline", id="no final newline"),
        pytest.param("line\x00\n", id="control character"),
        pytest.param("\ud800\n", id="lone surrogate"),
        pytest.param("x" * NOTE_SIZE_MAX_BYTES + "\n", id="too large"),
        pytest.param("a\n\n\u2014 a AAAAAAAA", id="text whose last line passes for a signature"),
    ],
)
def test_bodies_that_would_not_parse_back_are_not_signed(body: str) -> None:
    """sign_note refuses a text it could not write as a note that parses back to that text."""
    with pytest.raises(MalformedNote):
        sign_note(body, LOG_NAME, log_key())


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("", id="empty"),
        pytest.param("origin\n5\n", id="two lines"),
        pytest.param("origin\n5\nROOT", id="no final newline"),
        pytest.param("\n5\nROOT\n", id="empty origin"),
        pytest.param("origin\n05\nROOT\n", id="leading zero"),
        pytest.param("origin\n+5\nROOT\n", id="plus sign"),
        pytest.param("origin\n-1\nROOT\n", id="negative"),
        pytest.param("origin\n 5\nROOT\n", id="space"),
        pytest.param("origin\n5_000\nROOT\n", id="underscore"),
        pytest.param("origin\n\u0665\nROOT\n", id="non-ASCII digit"),
        pytest.param(f"origin\n{TREE_SIZE_MAX + 1}\nROOT\n", id="size over 2**64 - 1"),
        pytest.param("origin\n5\nAAAA\n", id="short root"),
        pytest.param("origin\n5\nROOT\n\n", id="empty extension line"),
        pytest.param("origin\n5\nROOT \n", id="space after root"),
        pytest.param("origin\r\n5\nROOT\n", id="carriage return"),
        pytest.param("origin\n5\n" + "A" * 43 + "\n", id="root without padding"),
        pytest.param("origin\n5\n" + "A" * 42 + "B=\n", id="root with spare bits set"),
    ],
)
def test_malformed_checkpoints_are_refused(body: str) -> None:
    """parse_checkpoint accepts one canonical form only: three or more non-empty lines, a
    decimal size without sign, space or leading zero up to 2**64 - 1, and a canonical base64
    root of 32 bytes."""
    root_text = base64.b64encode(ROOT).decode()
    with pytest.raises(MalformedCheckpoint):
        parse_checkpoint(body.replace("ROOT", root_text))


@pytest.mark.parametrize(
    "checkpoint",
    [
        pytest.param(Checkpoint("", 1, ROOT), id="empty origin"),
        pytest.param(Checkpoint("a\nb", 1, ROOT), id="newline in origin"),
        pytest.param(Checkpoint("origin", -1, ROOT), id="negative size"),
        pytest.param(Checkpoint("origin", TREE_SIZE_MAX + 1, ROOT), id="size too large"),
        pytest.param(Checkpoint("origin", True, ROOT), id="boolean size"),
        pytest.param(Checkpoint("origin", 1, ROOT[:-1]), id="short root"),
        pytest.param(Checkpoint("origin", 1, ROOT, ("",)), id="empty extension"),
        pytest.param(Checkpoint("origin", 1, ROOT, ("a\nb",)), id="two-line extension"),
    ],
)
def test_checkpoints_that_would_not_parse_back_are_not_formatted(checkpoint: Checkpoint) -> None:
    """format_checkpoint refuses any checkpoint whose text would not parse back to it."""
    with pytest.raises(MalformedCheckpoint):
        format_checkpoint(checkpoint)


def test_the_empty_and_the_largest_trees_have_checkpoints() -> None:
    """Size 0 (with the empty root) and size 2**64 - 1 both format and parse back."""
    for checkpoint in (
        Checkpoint(LOG_NAME, 0, EMPTY_ROOT),
        Checkpoint(LOG_NAME, TREE_SIZE_MAX, ROOT),
    ):
        assert parse_checkpoint(format_checkpoint(checkpoint)) == checkpoint


def test_parsed_signatures_keep_name_key_id_and_signature() -> None:
    """parse_note splits each line into the key's name, its 4-byte id and the signature."""
    encoded = PETER_SIGNATURE_LINE.split()[-1]
    signature = Signature("PeterNeumann", bytes.fromhex("c74f20a3"), base64.b64decode(encoded)[4:])
    assert parse_note(GO_TEXT + "\n" + PETER_SIGNATURE_LINE) == Note(GO_TEXT, (signature,))


# Properties.

NOTE_CHARACTER = st.characters(exclude_categories=("Cc", "Cs"))
LINE = st.text(alphabet=NOTE_CHARACTER, min_size=1, max_size=30)
# Python's str.isspace covers the Unicode spaces (Zs, Zl, Zp) and controls (Cc) the spec bans.
KEY_NAME = st.text(
    alphabet=st.characters(
        exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp"), exclude_characters="+"
    ),
    min_size=1,
    max_size=30,
)


@given(
    origin=LINE,
    tree_size=st.integers(min_value=0, max_value=TREE_SIZE_MAX),
    root_hash=st.binary(min_size=HASH_SIZE, max_size=HASH_SIZE),
    extensions=st.lists(LINE, max_size=3).map(tuple),
)
def test_any_checkpoint_round_trips(
    origin: str, tree_size: int, root_hash: bytes, extensions: tuple[str, ...]
) -> None:
    """Every valid checkpoint formats to a text that parses back to it."""
    checkpoint = Checkpoint(origin, tree_size, root_hash, extensions)
    assert parse_checkpoint(format_checkpoint(checkpoint)) == checkpoint


@given(lines=st.lists(st.text(alphabet=NOTE_CHARACTER, max_size=20), min_size=1), name=KEY_NAME)
def test_any_text_signed_under_any_name_verifies(lines: list[str], name: str) -> None:
    """Any note text (including empty lines) signed under any valid name verifies to itself."""
    text = "".join(line + "\n" for line in lines)
    verifier = verifier_of(name, log_key())
    assert verify_note(sign_note(text, name, log_key()), [verifier]) == VerifiedNote(
        text, (verifier,)
    )


@given(note=st.one_of(st.text(max_size=300), st.binary(max_size=300)))
def test_parsing_anything_raises_only_note_errors(note: str | bytes) -> None:
    """Arbitrary text or bytes either parse or raise a NoteError, nothing else."""
    with contextlib.suppress(NoteError):
        parse_note(note)
    with contextlib.suppress(NoteError):
        parse_checkpoint(note if isinstance(note, str) else note.decode("latin-1"))


# c2sp.org/tlog-cosignature: cosignature/v1 (type 0x04).


def test_a_cosignature_v1_key_id_is_the_spec_hash_with_type_4() -> None:
    """SHA-256(name || "\\n" || 0x04 || public key)[:4], as tlog-cosignature says; the
    same key's note key (type 0x01) has another id; vkeys round trip with their type."""
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes_raw()
    cosigner = Verifier.from_public_key("witness.example/w1", key.public_key(), COSIGNATURE_V1_TYPE)
    expected = hashlib.sha256(b"witness.example/w1\n\x04" + raw).digest()[:4]
    assert cosigner.key_id == expected
    assert Verifier("witness.example/w1", raw).key_id != expected
    text = format_verifier_key(cosigner)
    assert base64.b64decode(text.split("+", 2)[2])[:1] == b"\x04"
    assert parse_verifier_key(text) == cosigner


def test_a_cosignature_v1_signs_its_header_time_and_the_whole_checkpoint() -> None:
    """The signed message is "cosignature/v1\\ntime <t>\\n" and the checkpoint text; the
    signature bytes are the 8-byte big-endian time then Ed25519's 64. A changed time, a
    changed checkpoint, or a plain note signature by the same key do not verify."""
    key = Ed25519PrivateKey.generate()
    cosigner = Verifier.from_public_key("witness.example/w1", key.public_key(), COSIGNATURE_V1_TYPE)
    body = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    signature = cosignature_of(body, cosigner.name, key, 1679315147)
    assert signature.key_id == cosigner.key_id
    assert signature.signature[:8] == (1679315147).to_bytes(8, "big")
    key.public_key().verify(
        signature.signature[8:],
        b"cosignature/v1\ntime 1679315147\n" + body.encode(),
    )
    assert cosignature_time(signature) == 1679315147
    note = body + "\n" + format_signature_line(signature)
    assert verify_note(note, [cosigner]).signers == (cosigner,)
    later = signature.signature[:7] + bytes([signature.signature[7] ^ 1]) + signature.signature[8:]
    with pytest.raises(NoteSignatureInvalid):
        verify_note(
            body + "\n" + format_signature_line(signature._replace(signature=later)), [cosigner]
        )
    other_body = body.replace("20852163", "20852164")
    with pytest.raises(NoteSignatureInvalid):
        verify_note(other_body + "\n" + format_signature_line(signature), [cosigner])
    plain = signature_of(body, cosigner.name, key)._replace(key_id=cosigner.key_id)
    with pytest.raises(NoteSignatureInvalid):
        verify_note(body + "\n" + format_signature_line(plain), [cosigner])
