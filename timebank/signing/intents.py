"""Signed transfer intents and acknowledgements: strict parsing, keys and signatures.

A member's device signs the RFC 8785 canonical JSON of a *transfer intent*:

    {"amount":90,"key_id":"<22 chars>","ledger":"<log origin>","memo_hash":"<64 hex>",
     "not_after":"2030-01-01T00:00:00Z","payee":"<uuid>","payer":"<uuid>",
     "tx_id":"<uuid>","type":"transfer","unit":"hours","v":1}

and the payee of a pending transaction signs an *acknowledgement* (`"type":"ack"`) naming the
transaction, the SHA-256 of what it acknowledges (`tx_hash`) and a decision.

The signature covers the exact bytes received. The server accepts those bytes only if they
are the one canonical spelling of what they say: UTF-8 JSON of an object, no duplicate key,
integers only (within I-JSON's ±(2^53-1)), and `rfc8785.dumps` of the parsed value equal to
the input byte for byte. So two different byte strings never mean the same intent, and what
is checked is what was signed.

Keys are Ed25519 (32 raw bytes) or ECDSA P-256 as WebCrypto exports and signs with it: a
65-byte uncompressed point and a 64-byte r||s signature (IEEE P1363) over SHA-256. A key's id
is the first 16 bytes of SHA-256(algorithm name || 0x00 || public key), base64url (22 chars).

Ed25519 signatures are verified by two implementations: the service's checks
(`verify_signature_strictly`) by libsodium (PyNaCl), the audit's replay of the log
(`verify_signature`) by OpenSSL (pyca/cryptography). Both apply RFC 8032's equation
without the cofactor and refuse an `S` at or above the group's order; libsodium also
refuses an `R` of small order, which only the key's holder can make verify (with
`R` the neutral element and `S` = k·a). So whatever the service accepts, the audit
accepts; a signature the service refused never reaches the log; and a bug in either
library stands in front of the other. libsodium verifies in about 60% of OpenSSL's
time (docs/scaling.md). Keys are checked the same way for both (`load_public_key`).

Everything here is pure. Refusals are `SignatureError`s with a stable `code`; the caller maps
them to its own errors (this module does not import the rest of Timebank).
"""

from __future__ import annotations

import binascii
import enum
import functools
import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, NamedTuple, cast

import nacl.bindings
import nacl.exceptions
import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from timebank.canonical import nesting_depth, plainly_canonical
from timebank.signing import edwards25519

INTENT_VERSION = 1
TRANSFER_TYPE = "transfer"
ACK_TYPE = "ack"
TRANSFER_INTENT_FIELDS = frozenset(
    {
        "v",
        "type",
        "ledger",
        "tx_id",
        "payer",
        "payee",
        "unit",
        "amount",
        "memo_hash",
        "not_after",
        "key_id",
    }
)
ACK_FIELDS = frozenset({"v", "type", "ledger", "tx_id", "tx_hash", "decision", "key_id"})
POOL_DECISION_TYPE = "pool_decision"
POOL_DECISION_FIELDS = frozenset({"v", "type", "ledger", "request_id", "decision", "key_id"})
POOL_DECISIONS = frozenset({"approve", "decline"})

# Signed documents are a few hundred bytes; the bounds keep a stranger's input cheap to refuse.
CANONICAL_SIZE_MAX_BYTES = 4096
# Public keys kept loaded (cryptography objects) by load_public_key.
LOADED_KEYS_MAX = 4096
NESTING_DEPTH_MAX = 8
# I-JSON (RFC 7493), which RFC 8785 requires: integers a binary64 float holds exactly.
INTEGER_MAX = 2**53 - 1
INTEGER_DIGITS_MAX = len(str(INTEGER_MAX))
AMOUNT_MIN = 1
AMOUNT_MAX = INTEGER_MAX
LEDGER_LENGTH_MAX = 256
BASE64URL_LENGTH_MAX = 8192

ED25519_PUBLIC_KEY_SIZE_BYTES = 32
P256_PUBLIC_KEY_SIZE_BYTES = 65
P256_UNCOMPRESSED_POINT_PREFIX = 0x04
P256_COORDINATE_SIZE_BYTES = 32
SIGNATURE_SIZE_BYTES = 64
KEY_ID_SIZE_BYTES = 16
KEY_ID_LENGTH = 22
KEY_ID_SEPARATOR = b"\x00"

SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# The same shape as the API's unit codes; equality with the transaction's unit is what counts.
UNIT_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,15}")
TIMESTAMP = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})Z")
CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class SignatureError(Exception):
    """A signed document or its signature was refused; never raised itself, only subclasses."""

    code: ClassVar[str] = "signature_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SignatureMalformed(SignatureError):
    """Not the one canonical spelling of a well-formed document, or bad base64url or key."""

    code = "signature_malformed"


class SignatureInvalid(SignatureError):
    """Well-formed, but the signature does not verify with the named key."""

    code = "signature_invalid"


class IntentWrongLedger(SignatureError):
    """Signed for another community's ledger (another log origin)."""

    code = "intent_wrong_ledger"


class IntentExpired(SignatureError):
    """Presented after its `not_after` time."""

    code = "intent_expired"


class IntentMismatch(SignatureError):
    """Says something other than the transaction does; `field` names the first difference."""

    code = "intent_mismatch"

    def __init__(self, field: str) -> None:
        super().__init__(f"the signed {field} differs from the transaction's")
        self.field = field


class KeyUnknown(SignatureError):
    """No key with this id is registered for the signer (raised by the caller)."""

    code = "key_unknown"


class KeyRevoked(SignatureError):
    """The key was registered but has been revoked (raised by the caller)."""

    code = "key_revoked"


class KeyAlgorithm(enum.StrEnum):
    """Device key algorithms; the value is the name hashed into the key id."""

    ED25519 = "ed25519"
    P256 = "p256"


class AckDecision(enum.StrEnum):
    """What the payee says of a pending transaction."""

    ACCEPT = "accept"
    DECLINE = "decline"


# --- base64url (RFC 4648 section 5, no padding) -------------------------------------------


_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
# By the number of characters in the last group of 4: the characters whose unused low
# bits (4 of the second, 2 of the third) are zero.
_WITH_ZERO_UNUSED_BITS = {2: frozenset("AQgw"), 3: frozenset("AEIMQUYcgkosw048")}


def b64url_encode(data: bytes) -> str:
    """Base64url without padding."""
    encoded = binascii.b2a_base64(data, newline=False).translate(_TO_URLSAFE)
    return encoded.rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict base64url: no padding, only the alphabet, zero trailing bits; else malformed."""
    if len(text) > BASE64URL_LENGTH_MAX:
        raise SignatureMalformed(f"base64url text is longer than {BASE64URL_LENGTH_MAX}")
    # No regular expression for the alphabet (it cost more than the decoding): the strict
    # decoder refuses any character outside the standard alphabet and padding, so only
    # the standard alphabet's own two and padding are looked for here.
    if len(text) % 4 == 1 or not text.isascii() or "+" in text or "/" in text or "=" in text:
        raise SignatureMalformed("not base64url without padding")
    padding = b"=" * (-len(text) % 4)
    standard = text.encode("ascii").translate(_FROM_URLSAFE) + padding
    try:
        data = binascii.a2b_base64(standard, strict_mode=True)
    except binascii.Error as error:
        raise SignatureMalformed("not base64url without padding") from error
    # Unused low bits must be zero, so that each value has one spelling: the last
    # character of 2 (or 3) in its group of 4 carries 4 (or 2) unused bits.
    spare = len(text) % 4
    if spare and text[-1] not in _WITH_ZERO_UNUSED_BITS[spare]:
        raise SignatureMalformed("base64url with non-zero trailing bits")
    return data


# --- keys and signatures --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verifier:
    """A device's public key, checked when loaded, ready to verify signatures."""

    algorithm: KeyAlgorithm
    public_key: bytes
    key: Ed25519PublicKey | ec.EllipticCurvePublicKey

    def __post_init__(self) -> None:
        assert isinstance(self.key, Ed25519PublicKey) == (self.algorithm is KeyAlgorithm.ED25519)

    @property
    def key_id(self) -> str:
        """The 22-character id the key is registered and named under."""
        return public_key_id(self.algorithm, self.public_key)

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True if `signature` (64 bytes) signs `message`; False for anything else.
        OpenSSL's verification: the audit's."""
        if len(signature) != SIGNATURE_SIZE_BYTES:
            return False
        try:
            # By the algorithm, not isinstance: an abstract class's check costs a
            # good share of a verification.
            if self.algorithm is KeyAlgorithm.ED25519:
                cast(Ed25519PublicKey, self.key).verify(signature, message)
            else:
                cast(ec.EllipticCurvePublicKey, self.key).verify(
                    _p1363_to_der(signature), message, ec.ECDSA(hashes.SHA256())
                )
        except InvalidSignature:
            return False
        return True

    def verify_strictly(self, message: bytes, signature: bytes) -> bool:
        """`verify`, by libsodium for Ed25519, which also refuses an `R` of small
        order: the service's verification. It accepts nothing `verify` refuses."""
        if self.algorithm is not KeyAlgorithm.ED25519:
            return self.verify(message, signature)
        if len(signature) != SIGNATURE_SIZE_BYTES:
            return False
        assert len(self.public_key) == ED25519_PUBLIC_KEY_SIZE_BYTES
        try:
            nacl.bindings.crypto_sign_open(signature + message, self.public_key)
        except nacl.exceptions.BadSignatureError:
            return False
        return True


def public_key_id(algorithm: KeyAlgorithm, public_key: bytes) -> str:
    """base64url(SHA-256(algorithm name || 0x00 || public key)[:16]): 22 characters.

    Naming only: it does not check the key (`load_public_key` does)."""
    named = algorithm.value.encode("ascii") + KEY_ID_SEPARATOR + public_key
    key_id = b64url_encode(hashlib.sha256(named).digest()[:KEY_ID_SIZE_BYTES])
    assert len(key_id) == KEY_ID_LENGTH
    return key_id


@functools.lru_cache(maxsize=LOADED_KEYS_MAX)
def load_public_key(algorithm: KeyAlgorithm, raw: bytes) -> Verifier:
    """The key as a `Verifier`, or `SignatureMalformed` if the bytes are not such a key.
    Loaded keys are kept (a verifier checks many signatures of each key)."""
    if algorithm == KeyAlgorithm.ED25519:
        return Verifier(KeyAlgorithm.ED25519, raw, _load_ed25519(raw))
    if algorithm == KeyAlgorithm.P256:
        return Verifier(KeyAlgorithm.P256, raw, _load_p256(raw))
    raise SignatureMalformed("unknown key algorithm")


def verify_signature(
    algorithm: KeyAlgorithm, public_key: bytes, message: bytes, signature: bytes
) -> bool:
    """True only for a well-formed key and a valid signature; never raises on bad bytes.
    The audit's verification (`Verifier.verify`)."""
    verifier = _loaded_or_none(algorithm, public_key)
    return verifier is not None and verifier.verify(message, signature)


def verify_signature_strictly(
    algorithm: KeyAlgorithm, public_key: bytes, message: bytes, signature: bytes
) -> bool:
    """`verify_signature` as the service verifies (`Verifier.verify_strictly`)."""
    verifier = _loaded_or_none(algorithm, public_key)
    return verifier is not None and verifier.verify_strictly(message, signature)


def _loaded_or_none(algorithm: KeyAlgorithm, public_key: bytes) -> Verifier | None:
    try:
        return load_public_key(algorithm, public_key)
    except SignatureMalformed:
        return None


def require_valid_signature(
    algorithm: KeyAlgorithm, public_key: bytes, message: bytes, signature: bytes
) -> None:
    """`verify_signature`, raising `SignatureInvalid` instead of returning False."""
    if not verify_signature(algorithm, public_key, message, signature):
        raise SignatureInvalid("the signature does not verify with the named key")


def _load_ed25519(raw: bytes) -> Ed25519PublicKey:
    if len(raw) != ED25519_PUBLIC_KEY_SIZE_BYTES:
        raise SignatureMalformed(f"an Ed25519 key is {ED25519_PUBLIC_KEY_SIZE_BYTES} bytes")
    # OpenSSL loads these and verifies signatures that anyone can make under them.
    if not edwards25519.is_acceptable_public_key(raw):
        raise SignatureMalformed(
            "not an Ed25519 public key: not the one spelling of a point of the curve, "
            "or a point of small order (anyone could sign with it)"
        )
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as error:
        raise SignatureMalformed("not an Ed25519 public key") from error


def _load_p256(raw: bytes) -> ec.EllipticCurvePublicKey:
    # Only the uncompressed form WebCrypto exports, so that a key has one spelling (and id).
    if len(raw) != P256_PUBLIC_KEY_SIZE_BYTES or raw[0] != P256_UNCOMPRESSED_POINT_PREFIX:
        raise SignatureMalformed("a P-256 key is a 65-byte uncompressed point (0x04||X||Y)")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError as error:
        raise SignatureMalformed("not a point on P-256") from error


def _p1363_to_der(signature: bytes) -> bytes:
    """WebCrypto's r||s (two 32-byte big-endian integers) as the DER that OpenSSL verifies."""
    r = int.from_bytes(signature[:P256_COORDINATE_SIZE_BYTES], "big")
    s = int.from_bytes(signature[P256_COORDINATE_SIZE_BYTES:], "big")
    return encode_dss_signature(r, s)


# --- strict canonical JSON ------------------------------------------------------------------


def parse_canonical(data: bytes) -> dict[str, Any]:
    """The JSON object `data` spells, if `data` is exactly its RFC 8785 form; else malformed.

    Refused: over 4 KiB, nesting deeper than 8, not UTF-8, not JSON, not an object, duplicate
    keys at any depth, any number that is not an integer within ±(2^53-1), lone surrogates,
    and any spelling other than the canonical one (whitespace, key order, escapes)."""
    if len(data) > CANONICAL_SIZE_MAX_BYTES:
        raise SignatureMalformed(f"a signed document is at most {CANONICAL_SIZE_MAX_BYTES} bytes")
    quick = plainly_canonical(data)
    if quick is not None and nesting_depth(quick) <= NESTING_DEPTH_MAX:
        return quick
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SignatureMalformed("not UTF-8") from error
    if _nesting_depth(text) > NESTING_DEPTH_MAX:
        raise SignatureMalformed(f"nested deeper than {NESTING_DEPTH_MAX}")
    parsed = _load_json(text)
    if not isinstance(parsed, dict):
        raise SignatureMalformed("not a JSON object")
    if _canonical_bytes(parsed) != data:
        raise SignatureMalformed("not canonical (RFC 8785)")
    return parsed


def _load_json(text: str) -> Any:
    try:
        return json.loads(
            text,
            object_pairs_hook=_object_without_duplicates,
            parse_float=_refuse_float,
            parse_constant=_refuse_constant,
            parse_int=_bounded_integer,
        )
    except json.JSONDecodeError as error:
        raise SignatureMalformed("not JSON") from error


def _canonical_bytes(value: dict[str, Any]) -> bytes:
    try:
        return rfc8785.dumps(value)
    # rfc8785 refuses a lone surrogate in a string with its own error, but in a key with the
    # UnicodeEncodeError of sorting keys by their UTF-16 encoding.
    except (rfc8785.CanonicalizationError, UnicodeEncodeError) as error:
        raise SignatureMalformed("cannot be canonicalised (lone surrogate?)") from error


def _nesting_depth(text: str) -> int:
    """The deepest bracket nesting outside strings, found before `json` recurses into it."""
    depth = deepest = 0
    in_string = escaped = False
    for character in text:
        if in_string:
            if escaped:
                escaped = False
            elif character == "\\":
                escaped = True
            elif character == '"':
                in_string = False
        elif character == '"':
            in_string = True
        elif character in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif character in "]}":
            depth -= 1
    return deepest


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise SignatureMalformed("duplicate key")
    return result


def _refuse_float(text: str) -> Any:
    raise SignatureMalformed("numbers must be integers (no fraction, no exponent)")


def _refuse_constant(text: str) -> Any:
    raise SignatureMalformed("NaN and Infinity are not JSON")


def _bounded_integer(text: str) -> int:
    # The length first, so that a long digit string is refused before int() reads it.
    if len(text.lstrip("-")) > INTEGER_DIGITS_MAX:
        raise SignatureMalformed(f"integers must be within ±{INTEGER_MAX}")
    value = int(text)
    if abs(value) > INTEGER_MAX:
        raise SignatureMalformed(f"integers must be within ±{INTEGER_MAX}")
    return value


# --- transfer intents -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TransferIntent:
    """What a payer's device signed: move `amount` of `unit` from payer to payee, once."""

    ledger: str
    tx_id: uuid.UUID
    payer: uuid.UUID
    payee: uuid.UUID
    unit: str
    amount: int
    memo_hash: str
    not_after: datetime
    key_id: str


_UUID_SPELLING = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# A transfer intent in its one canonical spelling (RFC 8785: keys sorted, no space,
# nothing to escape), each value in a form the careful reading accepts (a key id
# whose last character leaves no trailing bits): text matching this is canonical
# and is read without decoding JSON. Anything else is read the careful way.
_TRANSFER_INTENT_SPELLING = re.compile(
    '\\{"amount":([1-9][0-9]{0,15}),"key_id":"([A-Za-z0-9_-]{21}[AQgw])"'
    ',"ledger":"([^"\\\\\x00-\x1f\x7f-\x9f]{1,256})","memo_hash":"([0-9a-f]{64})"'
    ',"not_after":"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z)"'
    f',"payee":"({_UUID_SPELLING})","payer":"({_UUID_SPELLING})","tx_id":"({_UUID_SPELLING})"'
    ',"type":"transfer","unit":"([A-Za-z][A-Za-z0-9_-]{0,15})","v":1\\}'
)


def parse_transfer_intent(data: bytes) -> TransferIntent:
    """The intent `data` spells canonically, with exactly its fields; else `SignatureMalformed`."""
    quick = _plainly_spelled_intent(data)
    if quick is not None:
        return quick
    return _carefully_read_intent(data)


def _carefully_read_intent(data: bytes) -> TransferIntent:
    fields = parse_canonical(data)
    _require_header(fields, TRANSFER_INTENT_FIELDS, TRANSFER_TYPE)
    intent = TransferIntent(
        ledger=_read_ledger(fields),
        tx_id=_read_uuid(fields, "tx_id"),
        payer=_read_uuid(fields, "payer"),
        payee=_read_uuid(fields, "payee"),
        unit=_read_unit(fields),
        amount=_read_amount(fields),
        memo_hash=_read_sha256_hex(fields, "memo_hash"),
        not_after=_read_timestamp(fields, "not_after"),
        key_id=_read_key_id(fields),
    )
    if intent.payer == intent.payee:
        raise SignatureMalformed("payer and payee must be different accounts")
    return intent


class PlainIntentFields(NamedTuple):
    """A plainly spelled transfer intent's values, as its text has them."""

    amount: int
    key_id: str
    ledger: str
    memo_hash: str
    not_after: datetime
    payee: str
    payer: str
    tx_id: str
    unit: str


def plain_intent_fields(data: bytes) -> PlainIntentFields | None:
    """The intent's values, if `data` has the common canonical spelling and every
    value is as parse_transfer_intent requires; None: read it the careful way
    (which then says what is wrong, if anything). Shared by the service and the
    log's replay, which keeps the identifiers as text."""
    if len(data) > CANONICAL_SIZE_MAX_BYTES:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    match = _TRANSFER_INTENT_SPELLING.fullmatch(text)
    if match is None:
        return None
    amount_text, key_id, ledger, memo_hash_hex, moment, payee, payer, tx_id, unit = match.groups()
    amount = int(amount_text)
    if amount > AMOUNT_MAX or payer == payee:
        return None
    try:
        # Digits only, by the pattern: fromisoformat() checks the ranges (no 13th
        # month, no 30 February, no second 60) as datetime() does, in C.
        not_after = datetime.fromisoformat(moment)
    except ValueError:
        return None
    assert not_after.tzinfo is UTC
    return PlainIntentFields(
        amount, key_id, ledger, memo_hash_hex, not_after, payee, payer, tx_id, unit
    )


def _plainly_spelled_intent(data: bytes) -> TransferIntent | None:
    fields = plain_intent_fields(data)
    return None if fields is None else _intent_of_plain_fields(fields)


def _intent_of_plain_fields(fields: PlainIntentFields) -> TransferIntent:
    return TransferIntent(
        ledger=fields.ledger,
        tx_id=uuid.UUID(fields.tx_id),
        payer=uuid.UUID(fields.payer),
        payee=uuid.UUID(fields.payee),
        unit=fields.unit,
        amount=fields.amount,
        memo_hash=fields.memo_hash,
        not_after=fields.not_after,
        key_id=fields.key_id,
    )


def make_transfer_intent(
    *,
    ledger: str,
    tx_id: uuid.UUID,
    payer: uuid.UUID,
    payee: uuid.UUID,
    unit: str,
    amount: int,
    memo: str,
    not_after: datetime,
    key_id: str,
) -> bytes:
    """The canonical bytes a device signs; `not_after` is rounded down to the second.

    Raises `SignatureMalformed` for anything `parse_transfer_intent` would refuse."""
    fields = {
        "v": INTENT_VERSION,
        "type": TRANSFER_TYPE,
        "ledger": ledger,
        "tx_id": str(tx_id),
        "payer": str(payer),
        "payee": str(payee),
        "unit": unit,
        "amount": amount,
        "memo_hash": memo_hash(memo),
        "not_after": format_timestamp(not_after),
        "key_id": key_id,
    }
    data = _canonical_bytes(fields)
    parse_transfer_intent(data)
    return data


def check_intent(
    intent: TransferIntent,
    *,
    ledger: str,
    tx_id: uuid.UUID,
    payer: uuid.UUID,
    payee: uuid.UUID,
    unit: str,
    amount: int,
    memo: str,
    now: datetime,
) -> None:
    """Require the intent to say exactly what the transaction does, in time.

    Raises, in this order: `IntentWrongLedger`, `IntentExpired` (now > not_after; the second
    itself is still valid), then `IntentMismatch` for the first differing field of tx_id,
    payer, payee, unit, amount, memo."""
    assert now.tzinfo is not None, "now must be timezone-aware"
    if intent.ledger != ledger:
        raise IntentWrongLedger("the intent was signed for another ledger")
    if now > intent.not_after:
        raise IntentExpired(f"the intent expired at {format_timestamp(intent.not_after)}")
    signed_and_actual: tuple[tuple[str, object, object], ...] = (
        ("tx_id", intent.tx_id, tx_id),
        ("payer", intent.payer, payer),
        ("payee", intent.payee, payee),
        ("unit", intent.unit, unit),
        ("amount", intent.amount, amount),
        ("memo", intent.memo_hash, memo_hash(memo)),
    )
    for field, signed, actual in signed_and_actual:
        if signed != actual:
            raise IntentMismatch(field)


def agreed_key_id(
    data: bytes,
    *,
    ledger: str,
    tx_id: uuid.UUID,
    payer: uuid.UUID,
    payee: uuid.UUID,
    unit: str,
    amount: int,
    memo: str,
    now: datetime,
) -> str:
    """The key id of the transfer intent `data`, which must say exactly this, in time:
    `parse_transfer_intent` and `check_intent` in one, with their refusals.

    The service's hot path: an intent in the common canonical spelling
    (`plain_intent_fields`) is compared field by field as the text it spells (an
    identifier as `str(uuid)` spells it: lowercase, hyphenated), building no UUID,
    datetime or TransferIntent; anything else, in order or not, is read and checked
    the careful way, which names what is wrong."""
    assert now.tzinfo is not None, "now must be timezone-aware"
    fields = plain_intent_fields(data)
    if (
        fields is not None
        and now <= fields.not_after
        and fields.ledger == ledger
        and fields.tx_id == str(tx_id)
        and fields.payer == str(payer)
        and fields.payee == str(payee)
        and fields.unit == unit
        and fields.amount == amount
        and fields.memo_hash == _memo_hash_or_none(memo)
    ):
        return fields.key_id
    # As parse_transfer_intent reads it, the plain spelling not read a second time.
    intent = _carefully_read_intent(data) if fields is None else _intent_of_plain_fields(fields)
    check_intent(
        intent,
        ledger=ledger,
        tx_id=tx_id,
        payer=payer,
        payee=payee,
        unit=unit,
        amount=amount,
        memo=memo,
        now=now,
    )
    return intent.key_id


def _memo_hash_or_none(memo: str) -> str | None:
    """memo_hash, or None for a memo it refuses (the careful reading then says why)."""
    try:
        return memo_hash(memo)
    except SignatureMalformed:
        return None


def memo_hash(memo: str) -> str:
    """Lowercase hex SHA-256 of the memo's UTF-8 bytes."""
    if not memo:
        return EMPTY_MEMO_HASH
    try:
        encoded = memo.encode("utf-8")
    except UnicodeEncodeError as error:
        raise SignatureMalformed("the memo is not valid Unicode text") from error
    return sha256_hex(encoded)


def sha256_hex(data: bytes) -> str:
    """Lowercase hex SHA-256: an ack's `tx_hash` is this of the intent's exact bytes."""
    return hashlib.sha256(data).hexdigest()


# Most transfers carry no memo: its hash, once.
EMPTY_MEMO_HASH = sha256_hex(b"")


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 UTC to the second, "YYYY-MM-DDTHH:MM:SSZ", rounded down."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise SignatureMalformed("a timestamp must be timezone-aware")
    utc = moment.astimezone(UTC).replace(microsecond=0, tzinfo=None)
    # isoformat, not strftime: it pads the year to four digits.
    return utc.isoformat() + "Z"


# --- acknowledgements -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ack:
    """What a payee's device signed about a pending transaction."""

    ledger: str
    tx_id: uuid.UUID
    tx_hash: str
    decision: AckDecision
    key_id: str


def parse_ack(data: bytes) -> Ack:
    """The acknowledgement `data` spells canonically; else `SignatureMalformed`."""
    fields = parse_canonical(data)
    _require_header(fields, ACK_FIELDS, ACK_TYPE)
    return Ack(
        ledger=_read_ledger(fields),
        tx_id=_read_uuid(fields, "tx_id"),
        tx_hash=_read_sha256_hex(fields, "tx_hash"),
        decision=_read_decision(fields),
        key_id=_read_key_id(fields),
    )


def make_ack(
    *, ledger: str, tx_id: uuid.UUID, tx_hash: str, decision: AckDecision, key_id: str
) -> bytes:
    """The canonical bytes a payee's device signs; `SignatureMalformed` if unparseable."""
    fields = {
        "v": INTENT_VERSION,
        "type": ACK_TYPE,
        "ledger": ledger,
        "tx_id": str(tx_id),
        "tx_hash": tx_hash,
        "decision": str(decision),
        "key_id": key_id,
    }
    data = _canonical_bytes(fields)
    parse_ack(data)
    return data


def check_ack(ack: Ack, *, ledger: str, tx_id: uuid.UUID, tx_hash: str) -> None:
    """Require the ack to name this ledger, this transaction and this hash of it."""
    if ack.ledger != ledger:
        raise IntentWrongLedger("the acknowledgement was signed for another ledger")
    if ack.tx_id != tx_id:
        raise IntentMismatch("tx_id")
    if ack.tx_hash != tx_hash:
        raise IntentMismatch("tx_hash")


# --- field readers --------------------------------------------------------------------------


def _require_header(fields: dict[str, Any], expected: frozenset[str], type_name: str) -> None:
    if fields.keys() != expected:
        missing = sorted(expected - fields.keys())
        unexpected = sorted(fields.keys() - expected)
        raise SignatureMalformed(f"wrong fields: missing {missing}, unexpected {unexpected}")
    version = fields["v"]
    # type() and not ==: JSON true would equal 1.
    if type(version) is not int or version != INTENT_VERSION:
        raise SignatureMalformed(f"v must be {INTENT_VERSION}")
    if fields["type"] != type_name:
        raise SignatureMalformed(f"type must be {type_name!r}")


def _read_string(fields: dict[str, Any], name: str) -> str:
    value = fields[name]
    if not isinstance(value, str):
        raise SignatureMalformed(f"{name} must be a string")
    return value


def _read_ledger(fields: dict[str, Any]) -> str:
    ledger = _read_string(fields, "ledger")
    if not 0 < len(ledger) <= LEDGER_LENGTH_MAX or CONTROL_CHARACTER.search(ledger):
        raise SignatureMalformed(
            f"ledger must be a log origin: 1 to {LEDGER_LENGTH_MAX} characters, no control"
        )
    return ledger


def _read_uuid(fields: dict[str, Any], name: str) -> uuid.UUID:
    text = _read_string(fields, name)
    try:
        value = uuid.UUID(text)
    except ValueError as error:
        raise SignatureMalformed(f"{name} must be a UUID") from error
    # uuid.UUID also takes braces, "urn:uuid:", no hyphens and capitals: one spelling only.
    if str(value) != text:
        raise SignatureMalformed(f"{name} must be a UUID in lowercase hyphenated form")
    return value


def _read_unit(fields: dict[str, Any]) -> str:
    unit = _read_string(fields, "unit")
    if not UNIT_CODE.fullmatch(unit):
        raise SignatureMalformed("unit must be a unit code")
    return unit


def _read_amount(fields: dict[str, Any]) -> int:
    amount = fields["amount"]
    if type(amount) is not int or not AMOUNT_MIN <= amount <= AMOUNT_MAX:
        raise SignatureMalformed(f"amount must be a whole number from {AMOUNT_MIN} to {AMOUNT_MAX}")
    return amount


def _read_sha256_hex(fields: dict[str, Any], name: str) -> str:
    value = _read_string(fields, name)
    if not SHA256_HEX.fullmatch(value):
        raise SignatureMalformed(f"{name} must be 64 lowercase hex digits (SHA-256)")
    return value


def _read_timestamp(fields: dict[str, Any], name: str) -> datetime:
    text = _read_string(fields, name)
    match = TIMESTAMP.fullmatch(text)
    if match is None:
        raise SignatureMalformed(f"{name} must be YYYY-MM-DDTHH:MM:SSZ")
    year, month, day, hour, minute, second = (int(part) for part in match.groups())
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError as error:
        raise SignatureMalformed(f"{name} is not a real UTC time") from error


def _read_key_id(fields: dict[str, Any]) -> str:
    key_id = _read_string(fields, "key_id")
    if len(key_id) != KEY_ID_LENGTH or len(b64url_decode(key_id)) != KEY_ID_SIZE_BYTES:
        raise SignatureMalformed(f"key_id must be {KEY_ID_LENGTH} base64url characters")
    return key_id


def _read_decision(fields: dict[str, Any]) -> AckDecision:
    decision = _read_string(fields, "decision")
    try:
        return AckDecision(decision)
    except ValueError as error:
        raise SignatureMalformed("decision must be 'accept' or 'decline'") from error


# --- pool managers' decisions -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PoolDecision:
    """What a pool manager's device signed about a request for help."""

    ledger: str
    request_id: uuid.UUID
    decision: str  # "approve" or "decline"
    key_id: str


def parse_pool_decision(data: bytes) -> PoolDecision:
    """The decision `data` spells canonically; else `SignatureMalformed`."""
    fields = parse_canonical(data)
    _require_header(fields, POOL_DECISION_FIELDS, POOL_DECISION_TYPE)
    decision = _read_string(fields, "decision")
    if decision not in POOL_DECISIONS:
        raise SignatureMalformed("decision must be 'approve' or 'decline'")
    return PoolDecision(
        ledger=_read_ledger(fields),
        request_id=_read_uuid(fields, "request_id"),
        decision=decision,
        key_id=_read_key_id(fields),
    )


def make_pool_decision(*, ledger: str, request_id: uuid.UUID, decision: str, key_id: str) -> bytes:
    """The canonical bytes a manager's device signs; `SignatureMalformed` if unparseable."""
    fields = {
        "v": INTENT_VERSION,
        "type": POOL_DECISION_TYPE,
        "ledger": ledger,
        "request_id": str(request_id),
        "decision": decision,
        "key_id": key_id,
    }
    data = _canonical_bytes(fields)
    parse_pool_decision(data)
    return data


def check_pool_decision(
    signed: PoolDecision, *, ledger: str, request_id: uuid.UUID, decision: str
) -> None:
    """Require the decision to name this ledger, this request and this decision."""
    if signed.ledger != ledger:
        raise IntentWrongLedger("the decision was signed for another ledger")
    if signed.request_id != request_id:
        raise IntentMismatch("request_id")
    if signed.decision != decision:
        raise IntentMismatch("decision")
