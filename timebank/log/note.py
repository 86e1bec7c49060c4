"""Signed notes (c2sp.org/signed-note) with Ed25519 keys, and the transparency-log checkpoints
they carry (c2sp.org/tlog-checkpoint).

A checkpoint body is three lines and optional extension lines, each ending in a newline:

    <origin>
    <tree size, decimal, no leading zeros>
    <root hash, standard base64>

A signed note is its body, an empty line, then one line per signature:

    — <key name> <base64(4-byte key id || Ed25519 signature of the body)>

where the key id is SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[:4]. A known key
is written as a *verifier key*, the text form of golang.org/x/mod/sumdb/note:
`<name>+<8 hex digits of key id>+<base64(0x01 || public key)>`.

Parsing is strict: one canonical form is accepted, anything else raises a `NoteError` (notes
and checkpoints come from strangers: witnesses, mirrors, auditors). Signing and formatting raise
the same errors on input they could not write canonically.

A witness's key is either a plain Ed25519 note key (type 0x01: its signature is of the note
text), or a c2sp.org/tlog-cosignature key (type 0x04, `cosignature/v1`): its key id is
SHA-256(name || 0x0A || 0x04 || public key)[:4], and its signature is a 64-bit big-endian
POSIX timestamp followed by the Ed25519 signature of

    cosignature/v1
    time <timestamp, decimal>
    <the whole checkpoint text>
"""

from __future__ import annotations

import base64
import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from timebank.log.merkle import HASH_SIZE, TREE_SIZE_MAX
from timebank.signing import edwards25519

SIGNATURE_LINE_PREFIX = "\u2014 "  # em dash, space
ED25519_SIGNATURE_TYPE = b"\x01"
# c2sp.org/tlog-cosignature: a timestamped Ed25519 cosignature (cosignature/v1).
COSIGNATURE_V1_TYPE = b"\x04"
SIGNATURE_TYPES = (ED25519_SIGNATURE_TYPE, COSIGNATURE_V1_TYPE)
TIMESTAMP_SIZE = 8
TIMESTAMP_MAX = 2**63 - 1
KEY_ID_SIZE = 4
ED25519_PUBLIC_KEY_SIZE = 32
ED25519_SIGNATURE_SIZE = 64
# The spec has verifiers accept at least 16 signatures; golang.org/x/mod/sumdb/note takes 100.
SIGNATURES_MAX = 100
# Far above a checkpoint with SIGNATURES_MAX signatures; refused before any parsing.
NOTE_SIZE_MAX_BYTES = 64 * 1024
CHECKPOINT_LINES_MIN = 3

# Signed notes may hold no ASCII control character but the newline.
CONTROL_CHARACTER = re.compile("[\x00-\x09\x0b-\x1f]")
TREE_SIZE_TEXT = re.compile("0|[1-9][0-9]{0,19}")
KEY_ID_TEXT = re.compile("[0-9a-f]{8}")


class NoteError(ValueError):
    """A note, checkpoint, key name or verifier key that is not in its canonical form, or a note
    whose signatures do not stand."""


class MalformedNote(NoteError):
    """The text is not a signed note: not UTF-8, a control character, no empty line before the
    signatures, a signature line out of form, too many signatures or too large."""


class MalformedCheckpoint(NoteError):
    """The note text is not a checkpoint: fewer than three lines, an empty line, a tree size
    with leading zeros, signs or out of range, or a root hash that is not 32 bytes in base64."""


class InvalidKeyName(NoteError):
    """A key name that is empty or holds a space, a plus sign or a control character."""


class MalformedVerifierKey(NoteError):
    """The text is not `<name>+<key id>+<base64(0x01 || Ed25519 public key)>`, or its key id
    does not belong to its name and key."""


class NoteSignatureInvalid(NoteError):
    """A signature by a known key (matching name and key id) does not verify: the note was
    altered or forged, and is refused whole."""


class NoteUnverified(NoteError):
    """No known key signed the note; its text must be ignored."""


class AmbiguousVerifiers(ValueError):
    """Two different verifiers share a name and key id, so a signature could not tell them
    apart: a configuration error, not a property of any note."""


def is_valid_key_name(name: str) -> bool:
    """Whether `name` may name a key: non-empty, without spaces, '+' or control characters."""
    return bool(name) and all(_is_key_name_character(character) for character in name)


def _is_key_name_character(character: str) -> bool:
    if character == "+" or character.isspace():
        return False
    return unicodedata.category(character) not in ("Cc", "Cs")


def ed25519_key_id(
    name: str, public_key: bytes, signature_type: bytes = ED25519_SIGNATURE_TYPE
) -> bytes:
    """The 4-byte key id of an Ed25519 key: SHA-256(name || 0x0A || type || public key)[:4],
    type 0x01 for note signatures, 0x04 for cosignature/v1."""
    _require_key_name(name)
    material = name.encode("utf-8") + b"\n" + signature_type + public_key
    return hashlib.sha256(material).digest()[:KEY_ID_SIZE]


def cosigned_message(body: str, timestamp: int) -> bytes:
    """What a cosignature/v1 signs: its header, its time, then the checkpoint's text."""
    return f"cosignature/v1\ntime {timestamp}\n{body}".encode()


@dataclass(frozen=True)
class Verifier:
    """A known Ed25519 key, by name and 32-byte raw public key, for note signatures (type
    0x01) or timestamped cosignatures (type 0x04, cosignature/v1)."""

    name: str
    public_key: bytes
    signature_type: bytes = ED25519_SIGNATURE_TYPE

    def __post_init__(self) -> None:
        _require_key_name(self.name)
        if len(self.public_key) != ED25519_PUBLIC_KEY_SIZE:
            raise MalformedVerifierKey(f"an Ed25519 public key has {ED25519_PUBLIC_KEY_SIZE} bytes")
        # A log or witness key under which anyone can sign would prove nothing.
        if not edwards25519.is_acceptable_public_key(self.public_key):
            raise MalformedVerifierKey(
                "not an Ed25519 public key: a point of small order (anyone could sign with "
                "it), or a second spelling of a point"
            )
        if self.signature_type not in SIGNATURE_TYPES:
            raise MalformedVerifierKey(f"signature type {self.signature_type.hex()} is unknown")

    @classmethod
    def from_public_key(
        cls,
        name: str,
        public_key: Ed25519PublicKey,
        signature_type: bytes = ED25519_SIGNATURE_TYPE,
    ) -> Verifier:
        return cls(name, public_key.public_bytes_raw(), signature_type)

    @property
    def key_id(self) -> bytes:
        return ed25519_key_id(self.name, self.public_key, self.signature_type)

    @property
    def is_cosigner(self) -> bool:
        return self.signature_type == COSIGNATURE_V1_TYPE

    def verifies(self, message: bytes, signature: bytes) -> bool:
        """Whether `signature` is this key's Ed25519 signature of `message`."""
        if len(signature) != ED25519_SIGNATURE_SIZE:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def verifies_note(self, body: str, signature: bytes) -> bool:
        """Whether `signature` (a note signature line's bytes after the key id) is this key's
        signature of the note text: plain, or a timestamped cosignature/v1."""
        if not self.is_cosigner:
            return self.verifies(body.encode("utf-8"), signature)
        if len(signature) != TIMESTAMP_SIZE + ED25519_SIGNATURE_SIZE:
            return False
        timestamp = int.from_bytes(signature[:TIMESTAMP_SIZE], "big")
        if timestamp > TIMESTAMP_MAX:
            return False
        return self.verifies(cosigned_message(body, timestamp), signature[TIMESTAMP_SIZE:])


def format_verifier_key(verifier: Verifier) -> str:
    """`<name>+<hex key id>+<base64(type || public key)>`, as golang.org/x/mod/sumdb/note."""
    encoded = _encode_base64(verifier.signature_type + verifier.public_key)
    return f"{verifier.name}+{verifier.key_id.hex()}+{encoded}"


def parse_verifier_key(text: str) -> Verifier:
    """The verifier a verifier key's text names; MalformedVerifierKey unless it is canonical
    (lowercase hex, canonical base64) and its key id matches its name and key."""
    name, _, rest = text.partition("+")
    key_id_text, _, encoded = rest.partition("+")
    if not is_valid_key_name(name) or not KEY_ID_TEXT.fullmatch(key_id_text):
        raise MalformedVerifierKey("expected <name>+<8 lowercase hex digits>+<base64 key>")
    decoded = _decode_base64(encoded)
    if decoded is None or len(decoded) != 1 + ED25519_PUBLIC_KEY_SIZE:
        raise MalformedVerifierKey("the key is not base64 of a type byte and 32 bytes")
    if decoded[:1] not in SIGNATURE_TYPES:
        raise MalformedVerifierKey(
            f"signature type {decoded[0]:#04x} is neither Ed25519 (0x01) nor cosignature/v1 (0x04)"
        )
    verifier = Verifier(name, decoded[1:], decoded[:1])
    if verifier.key_id.hex() != key_id_text:
        raise MalformedVerifierKey(f"key id {key_id_text} does not belong to this name and key")
    return verifier


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: who (origin), how many leaves, and the RFC 9162 root hash."""

    origin: str
    tree_size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()


def format_checkpoint(checkpoint: Checkpoint) -> str:
    """The checkpoint's note text; MalformedCheckpoint if it could not be parsed back."""
    problem = _checkpoint_problem(checkpoint)
    if problem is not None:
        raise MalformedCheckpoint(problem)
    lines = [
        checkpoint.origin,
        str(checkpoint.tree_size),
        _encode_base64(checkpoint.root_hash),
        *checkpoint.extensions,
    ]
    return "".join(line + "\n" for line in lines)


def parse_checkpoint(body: str) -> Checkpoint:
    """The checkpoint a note text states; MalformedCheckpoint unless it is exactly what
    `format_checkpoint` writes."""
    if len(body) > NOTE_SIZE_MAX_BYTES or not body.endswith("\n"):
        raise MalformedCheckpoint("a checkpoint is at most a note's size and ends in a newline")
    lines = body[:-1].split("\n")
    if len(lines) < CHECKPOINT_LINES_MIN:
        raise MalformedCheckpoint("a checkpoint has an origin, a tree size and a root hash")
    origin, size_text, root_text, *extensions = lines
    if not TREE_SIZE_TEXT.fullmatch(size_text):
        raise MalformedCheckpoint("the tree size is not a decimal without leading zeros")
    root_hash = _decode_base64(root_text)
    if root_hash is None:
        raise MalformedCheckpoint("the root hash is not canonical base64")
    checkpoint = Checkpoint(origin, int(size_text), root_hash, tuple(extensions))
    problem = _checkpoint_problem(checkpoint)
    if problem is not None:
        raise MalformedCheckpoint(problem)
    return checkpoint


def _checkpoint_problem(checkpoint: Checkpoint) -> str | None:
    if not _is_note_line(checkpoint.origin):
        return "the origin must be a non-empty line of note text"
    if isinstance(checkpoint.tree_size, bool) or not 0 <= checkpoint.tree_size <= TREE_SIZE_MAX:
        return f"the tree size must be a whole number from 0 to {TREE_SIZE_MAX}"
    if len(checkpoint.root_hash) != HASH_SIZE:
        return f"the root hash must be {HASH_SIZE} bytes"
    if not all(_is_note_line(line) for line in checkpoint.extensions):
        return "extension lines must be non-empty lines of note text"
    return None


class Signature(NamedTuple):
    """One signature line: the key's name, its 4-byte id and the signature bytes."""

    name: str
    key_id: bytes
    signature: bytes


class Note(NamedTuple):
    """A signed note taken apart: its text (with the final newline) and signature lines."""

    body: str
    signatures: tuple[Signature, ...]


@dataclass(frozen=True)
class VerifiedNote:
    """A note whose known signatures all verify: its text, and the keys that signed it."""

    body: str
    signers: tuple[Verifier, ...]


def sign_note(body: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """The signed note of `body` with one signature by `private_key` under `name`."""
    _require_note_body(body)
    note = body + "\n" + format_signature_line(signature_of(body, name, private_key))
    _note_text(note)  # the signature must fit within the size limit as well
    return note


def add_signature(note: str | bytes, name: str, private_key: Ed25519PrivateKey) -> str:
    """`note` with a signature by `private_key` under `name` added (or replacing that key's
    earlier one), for a witness to cosign. It does not check the other signatures: verify the
    note first."""
    parsed = parse_note(note)
    added = signature_of(parsed.body, name, private_key)
    kept = [s for s in parsed.signatures if (s.name, s.key_id) != (added.name, added.key_id)]
    if len(kept) >= SIGNATURES_MAX:
        raise MalformedNote(f"a note holds at most {SIGNATURES_MAX} signatures")
    lines = [format_signature_line(signature) for signature in (*kept, added)]
    cosigned = parsed.body + "\n" + "".join(lines)
    _note_text(cosigned)  # the signature must fit within the size limit as well
    return cosigned


def signature_of(body: str, name: str, private_key: Ed25519PrivateKey) -> Signature:
    """The signature by `private_key` under `name` of a note text (e.g. a witness's cosignature,
    to be kept as its `format_signature_line`)."""
    key_id = ed25519_key_id(name, private_key.public_key().public_bytes_raw())
    return Signature(name, key_id, private_key.sign(body.encode("utf-8")))


def cosignature_of(
    body: str, name: str, private_key: Ed25519PrivateKey, timestamp: int
) -> Signature:
    """A witness's cosignature/v1 of a checkpoint text at `timestamp` (POSIX seconds)."""
    if not 0 <= timestamp <= TIMESTAMP_MAX:
        raise NoteError("a cosignature's timestamp is 0 to 2^63 - 1")
    key_id = ed25519_key_id(name, private_key.public_key().public_bytes_raw(), COSIGNATURE_V1_TYPE)
    signed = private_key.sign(cosigned_message(body, timestamp))
    return Signature(name, key_id, timestamp.to_bytes(TIMESTAMP_SIZE, "big") + signed)


def cosignature_time(signature: Signature) -> int | None:
    """The timestamp of a cosignature/v1's signature bytes (None if they are not one)."""
    if len(signature.signature) != TIMESTAMP_SIZE + ED25519_SIGNATURE_SIZE:
        return None
    return int.from_bytes(signature.signature[:TIMESTAMP_SIZE], "big")


def format_signature_line(signature: Signature) -> str:
    """`— <name> <base64(key id || signature)>` and a newline."""
    _require_key_name(signature.name)
    encoded = _encode_base64(signature.key_id + signature.signature)
    return f"{SIGNATURE_LINE_PREFIX}{signature.name} {encoded}\n"


def parse_note(note: str | bytes) -> Note:
    """A signed note's text and signatures, unverified; MalformedNote unless well formed.
    The text ends at the last empty line; bytes must be UTF-8."""
    text = _note_text(note)
    separator = text.rfind("\n\n")
    if separator < 0:
        raise MalformedNote("no empty line separates the text from the signatures")
    body, signature_block = text[: separator + 1], text[separator + 2 :]
    if not signature_block.endswith("\n"):
        raise MalformedNote("a note ends with signature lines, each ending in a newline")
    lines = signature_block[:-1].split("\n")
    if len(lines) > SIGNATURES_MAX:
        raise MalformedNote(f"a note holds at most {SIGNATURES_MAX} signatures")
    return Note(body, tuple(_parse_signature_line(line) for line in lines))


def _parse_signature_line(line: str) -> Signature:
    if not line.startswith(SIGNATURE_LINE_PREFIX):
        raise MalformedNote("a signature line starts with an em dash and a space")
    name, space, encoded = line[len(SIGNATURE_LINE_PREFIX) :].partition(" ")
    if not space or not is_valid_key_name(name):
        raise MalformedNote("a signature line holds a key name, a space and base64")
    decoded = _decode_base64(encoded)
    if decoded is None or len(decoded) <= KEY_ID_SIZE:
        raise MalformedNote("a signature is canonical base64 of a key id and signature bytes")
    return Signature(name, decoded[:KEY_ID_SIZE], decoded[KEY_ID_SIZE:])


def verify_note(note: str | bytes, verifiers: Sequence[Verifier]) -> VerifiedNote:
    """The note's text and the known keys that signed it (each once, in signature order).

    Signatures by unknown keys (another name or key id) are ignored, as the spec requires.
    Raises MalformedNote if the note is malformed, NoteSignatureInvalid if any known key's
    signature fails, NoteUnverified if no known key signed, and AmbiguousVerifiers if two
    verifiers share a name and key id."""
    known = _verifiers_by_identity(verifiers)
    parsed = parse_note(note)
    signers: list[Verifier] = []
    for signature in parsed.signatures:
        verifier = known.get((signature.name, signature.key_id))
        if verifier is None:
            continue
        if not verifier.verifies_note(parsed.body, signature.signature):
            raise NoteSignatureInvalid(f"the signature of {signature.name} does not verify")
        if verifier not in signers:
            signers.append(verifier)
    if not signers:
        raise NoteUnverified("no known key signed this note")
    return VerifiedNote(parsed.body, tuple(signers))


def _verifiers_by_identity(verifiers: Sequence[Verifier]) -> dict[tuple[str, bytes], Verifier]:
    known: dict[tuple[str, bytes], Verifier] = {}
    for verifier in verifiers:
        identity = (verifier.name, verifier.key_id)
        if known.setdefault(identity, verifier) != verifier:
            raise AmbiguousVerifiers(f"two keys named {verifier.name} share one key id")
    return known


def _note_text(note: str | bytes) -> str:
    if len(note) > NOTE_SIZE_MAX_BYTES:
        raise MalformedNote(f"a note has at most {NOTE_SIZE_MAX_BYTES} bytes")
    try:
        encoded = note if isinstance(note, bytes) else note.encode("utf-8")
        text = encoded.decode("utf-8")
    except UnicodeError as error:
        raise MalformedNote("a note is UTF-8 text") from error
    if len(encoded) > NOTE_SIZE_MAX_BYTES:
        raise MalformedNote(f"a note has at most {NOTE_SIZE_MAX_BYTES} bytes")
    if CONTROL_CHARACTER.search(text):
        raise MalformedNote("a note holds no control character but the newline")
    return text


def _require_note_body(body: str) -> None:
    # Without its final newline, the text's last line could pass for a signature line.
    if not body.endswith("\n"):
        raise MalformedNote("a note's text ends in a newline")
    _note_text(body)


def _is_note_line(line: str) -> bool:
    if not line or "\n" in line or CONTROL_CHARACTER.search(line):
        return False
    try:
        line.encode("utf-8")
    except UnicodeError:
        return False
    return True


def _require_key_name(name: str) -> None:
    if not is_valid_key_name(name):
        raise InvalidKeyName(f"{name!r} is not a key name: empty, or a space, '+' or control")


def _encode_base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _decode_base64(text: str) -> bytes | None:
    """Standard base64 in its one canonical spelling (padding, zero spare bits), else None."""
    try:
        decoded = base64.b64decode(text, validate=True)
    except ValueError:
        return None
    return decoded if _encode_base64(decoded) == text else None
