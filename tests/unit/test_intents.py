"""Signed transfer intents and acknowledgements: strict canonical JSON, keys, signatures.

Known answers, cited where they are used:

- RFC 8785 (JSON Canonicalization Scheme) section 3.2.2, the sample with "numbers", "string"
  and "literals", and section 3.2.3, the property-sorting sample (UTF-16 code unit order);
- RFC 8032 (EdDSA) section 7.1, Ed25519 TEST 1 and TEST 2;
- RFC 6979 (deterministic ECDSA) appendix A.2.5, P-256 with SHA-256, message "sample": the
  public key and the (r, s) pair, which is exactly what WebCrypto's raw r||s format carries.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import assume, given
from hypothesis import strategies as st

from timebank.log import replay
from timebank.signing import intents
from timebank.signing.intents import (
    CANONICAL_SIZE_MAX_BYTES,
    INTEGER_MAX,
    NESTING_DEPTH_MAX,
    Ack,
    AckDecision,
    IntentExpired,
    IntentMismatch,
    IntentWrongLedger,
    KeyAlgorithm,
    KeyRevoked,
    KeyUnknown,
    SignatureError,
    SignatureInvalid,
    SignatureMalformed,
    TransferIntent,
    b64url_decode,
    b64url_encode,
    check_ack,
    check_intent,
    load_public_key,
    make_ack,
    make_transfer_intent,
    memo_hash,
    parse_ack,
    parse_canonical,
    parse_transfer_intent,
    public_key_id,
    require_valid_signature,
    sha256_hex,
    verify_signature,
)

# RFC 8032 section 7.1, TEST 1 (empty message) and TEST 2 (one octet, 0x72).
RFC8032_TEST_1 = (
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
    "",
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
    "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
)
RFC8032_TEST_2 = (
    "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
    "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
    "72",
    "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
    "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
)

# RFC 6979 appendix A.2.5: P-256 key pair, and the SHA-256 signature of "sample".
RFC6979_P256_PUBLIC_KEY = bytes.fromhex(
    "04"
    "60fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6"
    "7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299"
)
RFC6979_MESSAGE = b"sample"
RFC6979_R = 0xEFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716
RFC6979_S = 0xF7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8
# The order of P-256's base point (SEC 2 / FIPS 186-4), to build the (r, n - s) twin.
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

LEDGER = "timebank.example/riverside"
OTHER_LEDGER = "timebank.example/hillside"
TX_ID = uuid.UUID("0b7e6a52-4a57-4f0e-9d2b-6c1d5b0e9a11")
PAYER = uuid.UUID("1d3c1f7e-2b8a-4c55-8e0f-3a9b7c6d5e21")
PAYEE = uuid.UUID("2e4d2a8f-3c9b-4d66-9f10-4bac8d7e6f32")
OTHER_ACCOUNT = uuid.UUID("3f5e3b90-4dac-4e77-a021-5cbd9e8f7043")
UNIT = "hours"
AMOUNT_MINUTES = 90
MEMO = "Gardening, two afternoons"
NOT_AFTER = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
BEFORE_EXPIRY = NOT_AFTER - timedelta(minutes=5)
KEY_ID = public_key_id(KeyAlgorithm.P256, RFC6979_P256_PUBLIC_KEY)


def p1363(r: int, s: int) -> bytes:
    """r||s, two 32-byte big-endian integers: WebCrypto's ECDSA signature format."""
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def flip_bit(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def intent_fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "v": 1,
        "type": "transfer",
        "ledger": LEDGER,
        "tx_id": str(TX_ID),
        "payer": str(PAYER),
        "payee": str(PAYEE),
        "unit": UNIT,
        "amount": AMOUNT_MINUTES,
        "memo_hash": memo_hash(MEMO),
        "not_after": "2030-01-01T12:00:00Z",
        "key_id": KEY_ID,
    }
    fields.update(overrides)
    return fields


def intent_bytes() -> bytes:
    return make_transfer_intent(
        ledger=LEDGER,
        tx_id=TX_ID,
        payer=PAYER,
        payee=PAYEE,
        unit=UNIT,
        amount=AMOUNT_MINUTES,
        memo=MEMO,
        not_after=NOT_AFTER,
        key_id=KEY_ID,
    )


def check(intent: TransferIntent, **overrides: Any) -> None:
    """check_intent against the transaction the intent was made for, with overrides."""
    actual: dict[str, Any] = {
        "ledger": LEDGER,
        "tx_id": TX_ID,
        "payer": PAYER,
        "payee": PAYEE,
        "unit": UNIT,
        "amount": AMOUNT_MINUTES,
        "memo": MEMO,
        "now": BEFORE_EXPIRY,
    }
    actual.update(overrides)
    check_intent(intent, **actual)


def nesting_depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((nesting_depth(item) for item in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((nesting_depth(item) for item in value), default=0)
    return 0


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-INTEGER_MAX, max_value=INTEGER_MAX)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)
json_objects = st.dictionaries(st.text(max_size=6), json_values, max_size=5)


# --- RFC 8785 canonical JSON ----------------------------------------------------------------

# RFC 8785 section 3.2.2: the sample's "string" and "literals" members (our documents hold
# no floats), written as the RFC writes the input, and as its canonical output writes them.
RFC8785_SAMPLE_INPUT = (
    b"{\n"
    b'  "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",\n'
    b'  "literals": [null, true, false]\n'
    b"}"
)
RFC8785_SAMPLE_OUTPUT = (
    b'{"literals":[null,true,false],"string":"\xe2\x82\xac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
)


def test_rfc8785_sample_output_is_accepted() -> None:
    """The canonical form of RFC 8785's sample parses to what the RFC's input says."""
    expected = {"literals": [None, True, False], "string": '\u20ac$\x0f\nA\'B"\\\\"/'}
    actual = parse_canonical(RFC8785_SAMPLE_OUTPUT)
    assert actual == expected
    assert json.loads(RFC8785_SAMPLE_INPUT) == expected


def test_rfc8785_sample_input_is_refused() -> None:
    """The same value spelt as the RFC's input (whitespace, order, escapes) is refused."""
    with pytest.raises(SignatureMalformed, match="not canonical"):
        parse_canonical(RFC8785_SAMPLE_INPUT)


@pytest.mark.parametrize(
    "number",
    # RFC 8785 section 3.2.2 "numbers": the input spellings, then the canonical ones.
    [
        *(b"333333333.33333329", b"1E30", b"4.50", b"2e-3", b"0.000000000000000000000000001"),
        *(b"333333333.3333333", b"1e+30", b"4.5", b"0.002", b"1e-27"),
    ],
)
def test_rfc8785_sample_numbers_are_refused_even_when_canonical(number: bytes) -> None:
    """Only integers are accepted: every number of the RFC's sample is a float, so refused."""
    with pytest.raises(SignatureMalformed, match="integers"):
        parse_canonical(b'{"numbers":[' + number + b"]}")


# RFC 8785 section 3.2.3: keys sorted by their UTF-16 code units.
RFC8785_SORTING_OUTPUT = (
    '{"\\r":"Carriage Return","1":"One","\u0080":"Control",'
    '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
    '"\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
).encode()
RFC8785_SORTING_INPUT_ORDER = (
    '{"\u20ac":"Euro Sign","\\r":"Carriage Return",'
    '"\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One",'
    '"\U0001f600":"Emoji: Grinning Face","\u0080":"Control",'
    '"\u00f6":"Latin Small Letter O With Diaeresis"}'
).encode()


def test_rfc8785_sorting_sample_in_utf16_order_is_accepted() -> None:
    """The RFC's sorted sample parses; an emoji (a surrogate pair) sorts before U+FB33."""
    actual = parse_canonical(RFC8785_SORTING_OUTPUT)
    assert list(actual) == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]


def test_rfc8785_sorting_sample_in_input_order_is_refused() -> None:
    """The same members in the RFC's input order (compact, no whitespace) are refused."""
    with pytest.raises(SignatureMalformed, match="not canonical"):
        parse_canonical(RFC8785_SORTING_INPUT_ORDER)


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        (b'{"a":"\\u0042"}', b'{"a":"B"}'),
        (b'{"a":"\\/"}', b'{"a":"/"}'),
        (b'{"a":"\\u000F"}', b'{"a":"\\u000f"}'),
        (b'{"a":"\\u000a"}', b'{"a":"\\n"}'),
        (b'{"a":"\\u20ac"}', b'{"a":"\xe2\x82\xac"}'),
        (b'{"a":"\\ud83d\\ude00"}', b'{"a":"\xf0\x9f\x98\x80"}'),
        (b'{"\\u0061":1}', b'{"a":1}'),
    ],
)
def test_escapes_written_differently_are_refused(written: bytes, canonical: bytes) -> None:
    """Each character has one spelling (the RFC 8785 sample's escapes); others are refused."""
    assert parse_canonical(canonical) == json.loads(written)
    with pytest.raises(SignatureMalformed, match="not canonical"):
        parse_canonical(written)


@pytest.mark.parametrize(
    "data",
    [b'{ "a":1}', b'{"a": 1}', b'{"a":1}\n', b' {"a":1}', b'{"b":1,"a":2}', b'{"a":-0}'],
)
def test_whitespace_key_order_and_minus_zero_are_refused(data: bytes) -> None:
    """Valid JSON that is not byte-for-byte its canonical form is refused."""
    with pytest.raises(SignatureMalformed, match="not canonical"):
        parse_canonical(data)


@pytest.mark.parametrize(
    "data",
    [b'{"a":1,"a":1}', b'{"a":1,"b":{"c":1,"c":2}}', b'{"a":[{"b":1,"b":1}]}', b'{"a":1,"a":2}'],
)
def test_duplicate_keys_are_refused_at_any_depth(data: bytes) -> None:
    """A duplicate key is refused at the top level, in a nested object and in an array."""
    with pytest.raises(SignatureMalformed, match="duplicate key"):
        parse_canonical(data)


@pytest.mark.parametrize(
    "number", [b"1.0", b"1e3", b"1E3", b"0.5", b"-0.0", b"NaN", b"Infinity", b"-Infinity"]
)
def test_non_integer_numbers_are_refused(number: bytes) -> None:
    """Floats, exponents, NaN and the infinities are refused wherever they stand."""
    with pytest.raises(SignatureMalformed):
        parse_canonical(b'{"a":[' + number + b"]}")


@pytest.mark.parametrize("number", [2**53, -(2**53), 10**30, -(10**400)])
def test_integers_beyond_ijson_are_refused(number: int) -> None:
    """Integers a binary64 float cannot hold exactly (beyond +-(2^53 - 1)) are refused."""
    with pytest.raises(SignatureMalformed, match="integers"):
        parse_canonical(b'{"a":' + str(number).encode() + b"}")


def test_integers_at_the_ijson_bounds_are_accepted() -> None:
    """+-(2^53 - 1) are the largest integers accepted."""
    data = b'{"a":-9007199254740991,"b":9007199254740991}'
    assert parse_canonical(data) == {"a": -INTEGER_MAX, "b": INTEGER_MAX}


@pytest.mark.parametrize("data", [b'{"a":"\\ud800"}', b'{"a":"\\udc00x"}', b'{"\\ud83d":1}'])
def test_lone_surrogates_are_refused(data: bytes) -> None:
    """A lone surrogate escape is not text: RFC 8785 cannot write it, so it is refused."""
    with pytest.raises(SignatureMalformed):
        parse_canonical(data)


@pytest.mark.parametrize(
    "data",
    [b"", b"[]", b"1", b'"a"', b"null", b'{"a":"\xff"}', b'\xef\xbb\xbf{"a":1}', b"{", b"{'a':1}"],
)
def test_anything_but_a_utf8_json_object_is_refused(data: bytes) -> None:
    """Not UTF-8, a byte order mark, not JSON, or JSON that is not an object: refused."""
    with pytest.raises(SignatureMalformed):
        parse_canonical(data)


def test_size_is_bounded() -> None:
    """A document over 4 KiB is refused before it is parsed, even if canonical."""
    filler = "x" * CANONICAL_SIZE_MAX_BYTES
    with pytest.raises(SignatureMalformed, match="at most"):
        parse_canonical(rfc8785.dumps({"a": filler}))


def test_nesting_is_bounded() -> None:
    """Nesting deeper than the bound is refused before the JSON parser recurses into it."""
    deep: Any = 1
    for _ in range(NESTING_DEPTH_MAX - 1):  # the object itself is one level
        deep = [deep]
    parse_canonical(rfc8785.dumps({"a": deep}))
    with pytest.raises(SignatureMalformed, match="nested"):
        parse_canonical(rfc8785.dumps({"a": [deep]}))
    with pytest.raises(SignatureMalformed, match="nested"):
        parse_canonical(b"[" * (CANONICAL_SIZE_MAX_BYTES - 1))


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    """Brackets and escaped quotes inside a string are text, not structure."""
    data = rfc8785.dumps({"a": '\\"[[[[[[[[[[[[{{{{{{{{{{'})
    assert parse_canonical(data) == {"a": '\\"[[[[[[[[[[[[{{{{{{{{{{'}


@given(st.binary(max_size=200))
def test_random_bytes_raise_nothing_but_signature_errors(data: bytes) -> None:
    """Any bytes either parse to an object or raise SignatureMalformed, for both parsers."""
    with contextlib.suppress(SignatureMalformed):
        assert isinstance(parse_canonical(data), dict)
    with contextlib.suppress(SignatureMalformed):
        parse_transfer_intent(data)


# Text made of JSON's own characters reaches far deeper into the parser than random bytes.
json_like_text = st.text(alphabet='{}[]",:0123456789.eE+-\\/ubfnrtaNIy\u20ac ', max_size=60)


@given(json_like_text)
def test_json_like_text_raises_nothing_but_signature_errors(text: str) -> None:
    """Near-JSON text either parses to an object or raises SignatureMalformed."""
    with contextlib.suppress(SignatureMalformed):
        assert isinstance(parse_canonical(text.encode()), dict)


@given(st.data())
def test_a_corrupted_intent_raises_nothing_but_signature_errors(data: st.DataObject) -> None:
    """An intent with one byte replaced, inserted or removed parses or is malformed."""
    original = intent_bytes()
    index = data.draw(st.integers(min_value=0, max_value=len(original) - 1))
    byte = data.draw(st.binary(min_size=0, max_size=1))
    replace = data.draw(st.booleans())
    corrupted = original[:index] + byte + original[index + int(replace) :]
    with contextlib.suppress(SignatureMalformed):
        parse_transfer_intent(corrupted)


@given(json_objects)
def test_canonical_bytes_of_any_object_parse_back_to_it(value: dict[str, Any]) -> None:
    """Whatever RFC 8785 writes (integers, strings, literals, arrays, objects) parses back."""
    assume(nesting_depth(value) <= NESTING_DEPTH_MAX)
    assert parse_canonical(rfc8785.dumps(value)) == value


@given(json_objects.filter(bool))
def test_indented_json_of_any_object_is_refused(value: dict[str, Any]) -> None:
    """The same object spelt with indentation is never accepted."""
    with pytest.raises(SignatureMalformed):
        parse_canonical(json.dumps(value, indent=1).encode())


# --- base64url ------------------------------------------------------------------------------


@given(st.binary(max_size=100))
def test_base64url_round_trips_without_padding(data: bytes) -> None:
    """Encoding uses the URL alphabet without '='; decoding gives the bytes back."""
    text = b64url_encode(data)
    assert "=" not in text
    assert b64url_decode(text) == data


@pytest.mark.parametrize(
    "text", ["AA==", "AA=", "A", "AB", "AAB", "AA+/", "AA/_", "AA\n", " AA", "\u00c0A", "AA.A"]
)
def test_base64url_decoding_is_strict(text: str) -> None:
    """Padding, other alphabets, whitespace, bad lengths and non-zero trailing bits refused."""
    with pytest.raises(SignatureMalformed):
        b64url_decode(text)


def reference_b64url_decode(text: str) -> bytes | None:
    """Base64url as defined: only the URL alphabet, no padding, and the one spelling of
    its bytes (decoding, then encoding again, gives the same text); None otherwise."""
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text) or len(text) % 4 == 1:
        return None
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    return data if base64.urlsafe_b64encode(data).decode().rstrip("=") == text else None


@given(st.text(alphabet="AQgwBZaz09-_+/= \n.\u00c0", max_size=12))
def test_base64url_decoding_takes_exactly_the_one_spelling(text: str) -> None:
    """Any mix of the URL alphabet, the standard one's characters, padding, space and
    others: decoded exactly when it is the unpadded base64url spelling of its bytes."""
    expected = reference_b64url_decode(text)
    try:
        decoded: bytes | None = b64url_decode(text)
    except SignatureMalformed:
        decoded = None
    assert expected == decoded


def test_base64url_known_answers() -> None:
    """RFC 4648 section 10's "foob" and "fooba", in the URL alphabet without padding."""
    assert b64url_encode(b"foob") == "Zm9vYg"
    assert b64url_decode("Zm9vYmE") == b"fooba"
    assert b64url_decode("-_8") == b"\xfb\xff"


# --- keys and signatures --------------------------------------------------------------------


@pytest.mark.parametrize("vector", [RFC8032_TEST_1, RFC8032_TEST_2], ids=["test-1", "test-2"])
def test_rfc8032_ed25519_vectors_verify(vector: tuple[str, str, str, str]) -> None:
    """RFC 8032's key signs its message to its signature, which verifies here."""
    secret, public, message, signature = (bytes.fromhex(part) for part in vector)
    private_key = Ed25519PrivateKey.from_private_bytes(secret)
    assert private_key.sign(message) == signature
    assert verify_signature(KeyAlgorithm.ED25519, public, message, signature)
    require_valid_signature(KeyAlgorithm.ED25519, public, message, signature)


@pytest.mark.parametrize(
    ("vector", "other_vector"),
    [(RFC8032_TEST_1, RFC8032_TEST_2), (RFC8032_TEST_2, RFC8032_TEST_1)],
    ids=["test-1", "test-2"],
)
def test_rfc8032_ed25519_vectors_fail_when_changed(
    vector: tuple[str, str, str, str], other_vector: tuple[str, str, str, str]
) -> None:
    """A flipped bit, a truncation, another message or another key fails to verify."""
    _, public, message, signature = (bytes.fromhex(part) for part in vector)
    other_public = bytes.fromhex(other_vector[1])
    for index in (0, 31, 32, 63):
        flipped = flip_bit(signature, index)
        assert not verify_signature(KeyAlgorithm.ED25519, public, message, flipped)
    assert not verify_signature(KeyAlgorithm.ED25519, public, message + b"!", signature)
    assert not verify_signature(KeyAlgorithm.ED25519, public, message, signature[:-1])
    assert not verify_signature(KeyAlgorithm.ED25519, other_public, message, signature)


def test_rfc6979_p256_signature_verifies_as_webcrypto_r_s() -> None:
    """RFC 6979's P-256 key and (r, s), as 0x04||X||Y and r||s, verify over "sample"."""
    signature = p1363(RFC6979_R, RFC6979_S)
    assert verify_signature(KeyAlgorithm.P256, RFC6979_P256_PUBLIC_KEY, RFC6979_MESSAGE, signature)
    assert not verify_signature(KeyAlgorithm.P256, RFC6979_P256_PUBLIC_KEY, b"test", signature), (
        "the same signature does not cover RFC 6979's other message"
    )


def test_p256_signatures_are_malleable() -> None:
    """(r, n - s) verifies as well as (r, s): never use a signature's bytes as an identifier."""
    twin = p1363(RFC6979_R, P256_ORDER - RFC6979_S)
    assert verify_signature(KeyAlgorithm.P256, RFC6979_P256_PUBLIC_KEY, RFC6979_MESSAGE, twin)


def test_p256_signature_from_cryptography_verifies_as_r_s_only() -> None:
    """A DER signature converted to r||s verifies; the DER itself or a flipped bit does not."""
    private_key = ec.derive_private_key(0x5EED, ec.SECP256R1())
    public_key = private_key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    message = intent_bytes()
    der = private_key.sign(message, ec.ECDSA(hashes.SHA256()))
    signature = p1363(*decode_dss_signature(der))
    assert verify_signature(KeyAlgorithm.P256, public_key, message, signature)
    assert not verify_signature(KeyAlgorithm.P256, public_key, message, der)
    for index in (0, 31, 32, 63):
        flipped = flip_bit(signature, index)
        assert not verify_signature(KeyAlgorithm.P256, public_key, message, flipped)
    assert not verify_signature(KeyAlgorithm.P256, public_key, message + b" ", signature)


@pytest.mark.parametrize(
    "signature",
    [
        *(p1363(0, 0), p1363(0, RFC6979_S), p1363(RFC6979_R, 0), p1363(P256_ORDER, RFC6979_S)),
        *(b"\xff" * 64, b"", bytes(65)),
    ],
)
def test_out_of_range_p256_signatures_are_false_not_errors(signature: bytes) -> None:
    """r or s of zero or not below the order, or a wrong length, is simply not valid."""
    assert not verify_signature(
        KeyAlgorithm.P256, RFC6979_P256_PUBLIC_KEY, RFC6979_MESSAGE, signature
    )


@pytest.mark.parametrize(
    "public_key",
    [
        b"",
        RFC6979_P256_PUBLIC_KEY[:33],
        b"\x02" + RFC6979_P256_PUBLIC_KEY[1:],
        RFC6979_P256_PUBLIC_KEY[:-1],
        RFC6979_P256_PUBLIC_KEY + b"\x00",
        flip_bit(RFC6979_P256_PUBLIC_KEY, 64),
        b"\x04" + bytes(64),
    ],
    ids=["empty", "compressed", "prefix-02", "short", "long", "off-curve", "zero-point"],
)
def test_malformed_p256_keys_are_refused(public_key: bytes) -> None:
    """Only an uncompressed point on P-256 loads; verify_signature says False instead."""
    with pytest.raises(SignatureMalformed):
        load_public_key(KeyAlgorithm.P256, public_key)
    signature = p1363(RFC6979_R, RFC6979_S)
    assert not verify_signature(KeyAlgorithm.P256, public_key, RFC6979_MESSAGE, signature)


@pytest.mark.parametrize("size_bytes", [0, 31, 33, 65])
def test_ed25519_keys_of_the_wrong_size_are_refused(size_bytes: int) -> None:
    """An Ed25519 public key is 32 bytes, nothing else."""
    with pytest.raises(SignatureMalformed):
        load_public_key(KeyAlgorithm.ED25519, bytes(size_bytes))


def test_require_valid_signature_raises_signature_invalid() -> None:
    """A signature that does not verify raises the signature_invalid code."""
    _, public, _, signature = (bytes.fromhex(part) for part in RFC8032_TEST_2)
    with pytest.raises(SignatureInvalid) as raised:
        require_valid_signature(KeyAlgorithm.ED25519, public, b"other", signature)
    assert raised.value.code == "signature_invalid"


@given(
    st.sampled_from(KeyAlgorithm),
    st.binary(max_size=80) | st.just(RFC6979_P256_PUBLIC_KEY),
    st.binary(max_size=64),
    st.binary(max_size=80),
)
def test_verify_signature_never_raises(
    algorithm: KeyAlgorithm, public_key: bytes, message: bytes, signature: bytes
) -> None:
    """Any key, message and signature bytes give True or False, never an exception."""
    assert verify_signature(algorithm, public_key, message, signature) in (True, False)


def test_key_ids_follow_the_documented_formula() -> None:
    """A key id is base64url(SHA-256(name || 0x00 || key)[:16]): 22 characters."""
    public = bytes.fromhex(RFC8032_TEST_1[1])
    digest = hashlib.sha256(b"ed25519\x00" + public).digest()
    expected = b64url_encode(digest[:16])
    actual = public_key_id(KeyAlgorithm.ED25519, public)
    assert actual == expected
    assert len(actual) == 22
    assert load_public_key(KeyAlgorithm.ED25519, public).key_id == expected


def test_key_ids_differ_by_algorithm() -> None:
    """The algorithm's name is hashed in, so the same bytes under two names differ."""
    raw = RFC6979_P256_PUBLIC_KEY
    ed25519_id = public_key_id(KeyAlgorithm.ED25519, raw)
    p256_id = public_key_id(KeyAlgorithm.P256, raw)
    assert len(ed25519_id) == len(p256_id) == 22
    assert ed25519_id != p256_id


# --- transfer intents -----------------------------------------------------------------------


def test_a_made_intent_parses_back_to_what_was_made() -> None:
    """make_transfer_intent writes canonical bytes that parse_transfer_intent reads back."""
    expected = TransferIntent(
        ledger=LEDGER,
        tx_id=TX_ID,
        payer=PAYER,
        payee=PAYEE,
        unit=UNIT,
        amount=AMOUNT_MINUTES,
        memo_hash=hashlib.sha256(MEMO.encode()).hexdigest(),
        not_after=NOT_AFTER,
        key_id=KEY_ID,
    )
    data = intent_bytes()
    assert parse_transfer_intent(data) == expected
    assert data == rfc8785.dumps(intent_fields())
    assert data.startswith(b'{"amount":90,"key_id":')


def test_not_after_is_written_in_utc_rounded_down_to_the_second() -> None:
    """Any aware time is written as UTC "YYYY-MM-DDTHH:MM:SSZ", never later than given."""
    moment = datetime(2030, 1, 1, 13, 0, 0, 999_999, tzinfo=timezone(timedelta(hours=1)))
    data = make_transfer_intent(
        ledger=LEDGER,
        tx_id=TX_ID,
        payer=PAYER,
        payee=PAYEE,
        unit=UNIT,
        amount=AMOUNT_MINUTES,
        memo=MEMO,
        not_after=moment,
        key_id=KEY_ID,
    )
    assert b'"not_after":"2030-01-01T12:00:00Z"' in data
    assert parse_transfer_intent(data).not_after == NOT_AFTER


def test_making_an_intent_refuses_what_parsing_would() -> None:
    """A naive time, a zero amount or payer == payee cannot be made."""
    made: dict[str, Any] = {
        "ledger": LEDGER,
        "tx_id": TX_ID,
        "payer": PAYER,
        "payee": PAYEE,
        "unit": UNIT,
        "amount": AMOUNT_MINUTES,
        "memo": MEMO,
        "not_after": NOT_AFTER,
        "key_id": KEY_ID,
    }
    for override in ({"not_after": datetime(2030, 1, 1)}, {"amount": 0}, {"payee": PAYER}):
        with pytest.raises(SignatureMalformed):
            make_transfer_intent(**(made | override))


@pytest.mark.parametrize(
    "overrides",
    [
        {"v": 2},
        {"v": True},
        {"v": "1"},
        {"type": "ack"},
        {"ledger": ""},
        {"ledger": "timebank.example\nforged"},
        {"ledger": 7},
        {"tx_id": str(TX_ID).upper()},
        {"tx_id": "{" + str(TX_ID) + "}"},
        {"tx_id": TX_ID.hex},
        {"tx_id": "not-a-uuid"},
        {"payer": str(PAYEE)},
        {"payee": None},
        {"unit": ""},
        {"unit": "1hours"},
        {"unit": "h" * 17},
        {"amount": 0},
        {"amount": -90},
        {"amount": True},
        {"amount": "90"},
        {"memo_hash": memo_hash(MEMO).upper()},
        {"memo_hash": memo_hash(MEMO)[:63]},
        {"not_after": "2030-01-01T12:00:00.5Z"},
        {"not_after": "2030-01-01T12:00:00+00:00"},
        {"not_after": "2030-01-01 12:00:00Z"},
        {"not_after": "2030-02-30T12:00:00Z"},
        {"not_after": "2030-01-01T24:00:00Z"},
        {"not_after": 1893499200},
        {"key_id": KEY_ID[:21]},
        {"key_id": "A" * 21 + "B"},
        {"key_id": KEY_ID[:21] + "="},
        {"extra": 1},
    ],
    ids=lambda overrides: "-".join(f"{key}={value!r}"[:40] for key, value in overrides.items()),
)
def test_an_intent_with_a_wrong_field_is_refused(overrides: dict[str, Any]) -> None:
    """Each field has one type and one form; anything else is malformed."""
    data = rfc8785.dumps(intent_fields(**overrides))
    with pytest.raises(SignatureMalformed):
        parse_transfer_intent(data)


@pytest.mark.parametrize("missing", sorted(intent_fields()))
def test_an_intent_missing_a_field_is_refused(missing: str) -> None:
    """Every field is required."""
    fields = intent_fields()
    del fields[missing]
    with pytest.raises(SignatureMalformed, match="wrong fields"):
        parse_transfer_intent(rfc8785.dumps(fields))


def test_an_intent_not_in_canonical_form_is_refused() -> None:
    """A valid intent re-spelt (indented) is refused: only the bytes signed count."""
    with pytest.raises(SignatureMalformed, match="not canonical"):
        parse_transfer_intent(json.dumps(intent_fields(), indent=2).encode())


@given(st.sampled_from(sorted(intent_fields())), json_values)
def test_any_field_replaced_by_any_value_parses_or_is_malformed(field: str, value: Any) -> None:
    """Replacing one field with an arbitrary JSON value never raises anything else."""
    assume(nesting_depth(value) < NESTING_DEPTH_MAX)
    with contextlib.suppress(SignatureMalformed):
        parse_transfer_intent(rfc8785.dumps(intent_fields(**{field: value})))


def test_an_intent_matching_its_transaction_passes() -> None:
    """The same ledger, ids, unit, amount and memo, before not_after: no error."""
    check(parse_transfer_intent(intent_bytes()))


def test_an_intent_is_valid_until_the_second_of_not_after_itself() -> None:
    """now == not_after is still in time; one second later it has expired."""
    intent = parse_transfer_intent(intent_bytes())
    check(intent, now=NOT_AFTER)
    with pytest.raises(IntentExpired) as raised:
        check(intent, now=NOT_AFTER + timedelta(seconds=1))
    assert raised.value.code == "intent_expired"


def test_an_intent_for_another_ledger_is_refused_first() -> None:
    """Another community's intent is intent_wrong_ledger, even when also expired."""
    intent = parse_transfer_intent(intent_bytes())
    with pytest.raises(IntentWrongLedger) as raised:
        check(intent, ledger=OTHER_LEDGER, now=NOT_AFTER + timedelta(days=1))
    assert raised.value.code == "intent_wrong_ledger"


@pytest.mark.parametrize(
    ("field", "actual"),
    [
        ("tx_id", uuid.UUID("4a6f4ca1-5ebd-4f88-b132-6dcea0908154")),
        ("payer", OTHER_ACCOUNT),
        ("payee", OTHER_ACCOUNT),
        ("unit", "eur"),
        ("amount", AMOUNT_MINUTES + 1),
        ("memo", MEMO + "."),
    ],
)
def test_an_intent_saying_something_else_is_a_mismatch(field: str, actual: object) -> None:
    """Any difference from the transaction raises intent_mismatch naming the field."""
    intent = parse_transfer_intent(intent_bytes())
    with pytest.raises(IntentMismatch) as raised:
        check(intent, **{field: actual})
    assert raised.value.code == "intent_mismatch"
    assert raised.value.field == field
    assert field in raised.value.message


def test_memo_hash_is_sha256_of_utf8() -> None:
    """memo_hash is lowercase hex SHA-256 of the memo's UTF-8 bytes (empty memo included)."""
    assert memo_hash("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert memo_hash("caf\u00e9") == hashlib.sha256(b"caf\xc3\xa9").hexdigest()
    with pytest.raises(SignatureMalformed):
        memo_hash("\ud800")


# --- acknowledgements -----------------------------------------------------------------------


def ack_bytes(decision: AckDecision = AckDecision.ACCEPT) -> bytes:
    return make_ack(
        ledger=LEDGER,
        tx_id=TX_ID,
        tx_hash=sha256_hex(intent_bytes()),
        decision=decision,
        key_id=KEY_ID,
    )


@pytest.mark.parametrize("decision", list(AckDecision))
def test_a_made_ack_parses_back_to_what_was_made(decision: AckDecision) -> None:
    """make_ack writes canonical bytes that parse_ack reads back, for either decision."""
    expected = Ack(
        ledger=LEDGER,
        tx_id=TX_ID,
        tx_hash=hashlib.sha256(intent_bytes()).hexdigest(),
        decision=decision,
        key_id=KEY_ID,
    )
    data = ack_bytes(decision)
    assert parse_ack(data) == expected
    assert b'"type":"ack"' in data


@pytest.mark.parametrize(
    "overrides",
    [
        *({"decision": "maybe"}, {"decision": "ACCEPT"}, {"type": "transfer"}),
        *({"tx_hash": "00"}, {"v": 2}, {"amount": 1}),
    ],
)
def test_an_ack_with_a_wrong_field_is_refused(overrides: dict[str, Any]) -> None:
    """Only accept or decline, type ack, a 64-hex tx_hash and exactly the ack's fields."""
    fields: dict[str, Any] = {
        "v": 1,
        "type": "ack",
        "ledger": LEDGER,
        "tx_id": str(TX_ID),
        "tx_hash": sha256_hex(intent_bytes()),
        "decision": "accept",
        "key_id": KEY_ID,
    }
    with pytest.raises(SignatureMalformed):
        parse_ack(rfc8785.dumps(fields | overrides))


def test_an_intent_is_not_an_ack_nor_an_ack_an_intent() -> None:
    """The type field keeps the two documents apart even under one key."""
    with pytest.raises(SignatureMalformed):
        parse_ack(intent_bytes())
    with pytest.raises(SignatureMalformed):
        parse_transfer_intent(ack_bytes())


def test_check_ack_names_ledger_transaction_and_hash() -> None:
    """An ack for another ledger, transaction or hash is refused with the right code."""
    ack = parse_ack(ack_bytes())
    tx_hash = sha256_hex(intent_bytes())
    check_ack(ack, ledger=LEDGER, tx_id=TX_ID, tx_hash=tx_hash)
    with pytest.raises(IntentWrongLedger):
        check_ack(ack, ledger=OTHER_LEDGER, tx_id=TX_ID, tx_hash=tx_hash)
    with pytest.raises(IntentMismatch, match="tx_id"):
        check_ack(ack, ledger=LEDGER, tx_id=OTHER_ACCOUNT, tx_hash=tx_hash)
    with pytest.raises(IntentMismatch, match="tx_hash"):
        check_ack(ack, ledger=LEDGER, tx_id=TX_ID, tx_hash=memo_hash(MEMO))


# --- errors ---------------------------------------------------------------------------------


def test_error_codes_are_stable() -> None:
    """The machine codes the caller maps: one per refusal, all SignatureErrors."""
    expected = {
        "signature_malformed": SignatureMalformed,
        "signature_invalid": SignatureInvalid,
        "intent_wrong_ledger": IntentWrongLedger,
        "intent_expired": IntentExpired,
        "intent_mismatch": IntentMismatch,
        "key_unknown": KeyUnknown,
        "key_revoked": KeyRevoked,
    }
    actual = {error.code: error for error in expected.values()}
    assert actual == expected
    assert all(issubclass(error, SignatureError) for error in expected.values())
    assert KeyRevoked("revoked on 2030-01-01").message == "revoked on 2030-01-01"


@given(
    amount=st.integers(1, 2**53 - 1),
    memo=st.text(max_size=20),
    ledger=st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=30),
    unit=st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,15}", fullmatch=True),
)
def test_the_replay_reads_a_plain_intent_as_the_careful_parser_does(
    amount: int, memo: str, ledger: str, unit: str
) -> None:
    """The replay's quick reading of a canonical intent says what
    parse_transfer_intent says, or leaves it to it (never disagrees)."""
    try:
        signed = intents.make_transfer_intent(
            ledger=ledger,
            tx_id=uuid.uuid4(),
            payer=uuid.uuid4(),
            payee=uuid.uuid4(),
            unit=unit,
            amount=amount,
            memo=memo,
            not_after=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
            key_id=intents.public_key_id(intents.KeyAlgorithm.ED25519, bytes(32)),
        )
    except intents.SignatureMalformed:
        return
    careful = intents._carefully_read_intent(signed)
    quick = replay.read_plain_intent(signed)
    expected = (
        careful.ledger,
        str(careful.tx_id),
        str(careful.payer),
        str(careful.payee),
        careful.amount,
        careful.unit,
        careful.memo_hash,
    )
    if quick is not None:
        assert tuple(quick) == expected
    assert tuple(replay.read_intent(signed)) == expected
    assert replay.read_plain_intent(signed.replace(b'"v":1', b'"v": 1')) is None


PLAIN_INTENT = intents.make_transfer_intent(
    ledger="example.org/timebank/x",
    tx_id=uuid.UUID("0b1c2d3e-4f50-4a61-8b72-9c8d7e6f5a4b"),
    payer=uuid.UUID("11111111-2222-4333-8444-555555555555"),
    payee=uuid.UUID("66666666-7777-4888-9999-aaaaaaaaaaaa"),
    unit="H",
    amount=90,
    memo="garden",
    not_after=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
    key_id=intents.public_key_id(intents.KeyAlgorithm.ED25519, bytes(32)),
)


def _careful_outcome(data: bytes) -> intents.TransferIntent | None:
    try:
        return intents._carefully_read_intent(data)
    except intents.SignatureMalformed:
        return None


def test_a_plainly_spelled_intent_is_read_without_the_careful_parser() -> None:
    """The common spelling takes the quick path, which reads what the careful
    parser reads (so the quick path is exercised, not only skipped)."""
    quick = intents._plainly_spelled_intent(PLAIN_INTENT)
    assert quick is not None
    assert quick == intents._carefully_read_intent(PLAIN_INTENT)
    assert intents.parse_transfer_intent(PLAIN_INTENT) == quick


@given(
    position=st.integers(0, len(PLAIN_INTENT) - 1),
    replacement=st.binary(min_size=0, max_size=3)
    | st.sampled_from(
        [b'"', b"\\", b"\\u0041", b"A", b"B", b"0", b"9", b" ", b"\x00", b"\xc3\xa9"]
    ),
)
def test_the_quick_intent_reading_never_accepts_what_the_careful_one_refuses(
    position: int, replacement: bytes
) -> None:
    """Any byte of a plain intent changed: the quick reading either leaves the text
    to the careful parser or reads exactly what the careful parser reads; it never
    accepts a text the careful parser refuses."""
    mutated = PLAIN_INTENT[:position] + replacement + PLAIN_INTENT[position + 1 :]
    quick = intents._plainly_spelled_intent(mutated)
    careful = _careful_outcome(mutated)
    if quick is not None:
        assert quick == careful
    if careful is None:
        with pytest.raises(intents.SignatureMalformed):
            intents.parse_transfer_intent(mutated)
    else:
        assert intents.parse_transfer_intent(mutated) == careful


@pytest.mark.parametrize(
    ("original", "changed"),
    [
        (b'"amount":90', b'"amount":090'),
        (b'"amount":90', b'"amount":0'),
        (b'"amount":90', b'"amount":9007199254740992'),
        (b'"v":1', b'"v":2'),
        (b'"unit":"H"', b'"unit":"1H"'),
        (b"T03:04:05Z", b"T25:04:05Z"),
        (b"2030-01-02", b"2030-02-30"),
    ],
)
def test_the_quick_intent_reading_refuses_what_the_careful_one_refuses(
    original: bytes, changed: bytes
) -> None:
    mutated = PLAIN_INTENT.replace(original, changed)
    assert mutated != PLAIN_INTENT
    assert intents._plainly_spelled_intent(mutated) is None
    with pytest.raises(intents.SignatureMalformed):
        intents.parse_transfer_intent(mutated)


def test_the_quick_intent_reading_leaves_a_key_id_with_trailing_bits_to_the_careful_one() -> None:
    key_id = intents.public_key_id(intents.KeyAlgorithm.ED25519, bytes(32))
    bad = key_id[:-1] + ("B" if key_id[-1] != "B" else "C")
    mutated = PLAIN_INTENT.replace(key_id.encode(), bad.encode())
    assert intents._plainly_spelled_intent(mutated) is None
    with pytest.raises(intents.SignatureMalformed):
        intents.parse_transfer_intent(mutated)


# What PLAIN_INTENT says, as the service's request would say it.
PLAIN_AGREEMENT: dict[str, Any] = {
    "ledger": "example.org/timebank/x",
    "tx_id": uuid.UUID("0b1c2d3e-4f50-4a61-8b72-9c8d7e6f5a4b"),
    "payer": uuid.UUID("11111111-2222-4333-8444-555555555555"),
    "payee": uuid.UUID("66666666-7777-4888-9999-aaaaaaaaaaaa"),
    "unit": "H",
    "amount": 90,
    "memo": "garden",
}
BEFORE_PLAIN_EXPIRY = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def _careful_outcome_of_agreement(data: bytes, now: datetime, **agreement: Any) -> object:
    """The key id parse_transfer_intent and check_intent accept, or the class of
    their refusal."""
    try:
        intent = intents.parse_transfer_intent(data)
        intents.check_intent(intent, now=now, **agreement)
    except intents.SignatureError as error:
        return type(error)
    return intent.key_id


def _agreed_outcome(data: bytes, now: datetime, **agreement: Any) -> object:
    try:
        return intents.agreed_key_id(data, now=now, **agreement)
    except intents.SignatureError as error:
        return type(error)


def test_an_intent_in_order_is_agreed_without_the_careful_reading(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected = _careful_outcome_of_agreement(PLAIN_INTENT, BEFORE_PLAIN_EXPIRY, **PLAIN_AGREEMENT)
    assert isinstance(expected, str)
    # A memo in any script takes the same way.
    accented_agreement = {**PLAIN_AGREEMENT, "memo": "réparation du vélo"}
    accented = intents.make_transfer_intent(
        **accented_agreement, not_after=BEFORE_PLAIN_EXPIRY, key_id=expected
    )

    def no_intent_built(*arguments: object) -> intents.TransferIntent:
        raise AssertionError("no TransferIntent was needed")

    # Neither reading builds the intent: not the careful one, nor the plain one's.
    for reading in ("parse_transfer_intent", "_carefully_read_intent", "_intent_of_plain_fields"):
        monkeypatch.setattr(intents, reading, no_intent_built)
    for data, agreement in ((PLAIN_INTENT, PLAIN_AGREEMENT), (accented, accented_agreement)):
        assert intents.agreed_key_id(data, now=BEFORE_PLAIN_EXPIRY, **agreement) == expected


@pytest.mark.parametrize(
    ("field", "other", "refusal"),
    [
        ("ledger", "example.org/timebank/y", intents.IntentWrongLedger),
        ("tx_id", uuid.UUID("0b1c2d3e-4f50-4a61-8b72-9c8d7e6f5a4c"), intents.IntentMismatch),
        ("payer", uuid.UUID("66666666-7777-4888-9999-aaaaaaaaaaaa"), intents.IntentMismatch),
        ("payee", uuid.UUID("11111111-2222-4333-8444-555555555555"), intents.IntentMismatch),
        ("unit", "G", intents.IntentMismatch),
        ("amount", 91, intents.IntentMismatch),
        ("memo", "garden ", intents.IntentMismatch),
        ("memo", "", intents.IntentMismatch),
        ("memo", "\ud800", intents.SignatureMalformed),  # not encodable
    ],
)
def test_an_intent_that_says_something_else_is_refused_by_name(
    field: str, other: object, refusal: type[intents.SignatureError]
) -> None:
    agreement = {**PLAIN_AGREEMENT, field: other}
    with pytest.raises(refusal):
        intents.agreed_key_id(PLAIN_INTENT, now=BEFORE_PLAIN_EXPIRY, **agreement)


def test_an_intent_is_in_time_until_its_not_after_itself() -> None:
    assert intents.agreed_key_id(PLAIN_INTENT, now=BEFORE_PLAIN_EXPIRY, **PLAIN_AGREEMENT)
    later = BEFORE_PLAIN_EXPIRY + timedelta(microseconds=1)
    with pytest.raises(intents.IntentExpired):
        intents.agreed_key_id(PLAIN_INTENT, now=later, **PLAIN_AGREEMENT)


@given(
    position=st.integers(0, len(PLAIN_INTENT) - 1),
    replacement=st.binary(min_size=0, max_size=3)
    | st.sampled_from([b'"', b"\\", b"A", b"B", b"0", b"1", b"9", b"a", b"f", b"-", b" "]),
    now=st.datetimes(
        min_value=datetime(2030, 1, 2, 3, 4, 0), max_value=datetime(2030, 1, 2, 3, 4, 10)
    ).map(lambda moment: moment.replace(tzinfo=UTC)),
)
def test_the_agreement_says_what_the_careful_reading_says(
    position: int, replacement: bytes, now: datetime
) -> None:
    """Any byte of a plain intent changed, at any moment around its expiry: the
    same key id, or the same refusal, as parse_transfer_intent and check_intent."""
    mutated = PLAIN_INTENT[:position] + replacement + PLAIN_INTENT[position + 1 :]
    assert _agreed_outcome(mutated, now, **PLAIN_AGREEMENT) == _careful_outcome_of_agreement(
        mutated, now, **PLAIN_AGREEMENT
    )
