"""Ed25519 keys of small order are refused (timebank/signing/edwards25519.py).

The module lists the y coordinates of the eight points of small order; this test
finds the points on its own: [L]P, for points P of the whole curve and L the prime
order of its main subgroup, always lands among them (the curve has 8L points), with
a decoding, a point addition and a scalar multiplication written for this test only
(RFC 8032 5.1.3, 5.1.4 and 5.1.2)."""

from __future__ import annotations

import hashlib
import random

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from timebank.signing import edwards25519, intents

P = edwards25519.FIELD_PRIME
D = (-121665 * pow(121666, P - 2, P)) % P
SQRT_MINUS_ONE = pow(2, (P - 1) // 4, P)
# The prime order of the main subgroup (RFC 8032 5.1).
L = 2**252 + 27742317777372353535851937790883648493
NEUTRAL = (0, 1, 1, 0)
IDENTITY_KEY = (1).to_bytes(32, "little")

Point = tuple[int, int, int, int]  # extended coordinates (X, Y, Z, T)


def _decode(encoded: bytes) -> Point | None:
    """RFC 8032 5.1.3."""
    y = int.from_bytes(encoded, "little") & ((1 << 255) - 1)
    sign = encoded[-1] >> 7
    if y >= P:
        return None
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x = u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    if v * x * x % P == (-u) % P:
        x = x * SQRT_MINUS_ONE % P
    elif v * x * x % P != u:
        return None
    if x == 0 and sign:
        return None
    if x & 1 != sign:
        x = P - x
    return (x, y, 1, x * y % P)


def _add(first: Point, second: Point) -> Point:
    x1, y1, z1, t1 = first
    x2, y2, z2, t2 = second
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = 2 * t1 * t2 * D % P
    d = 2 * z1 * z2 % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _times(scalar: int, point: Point) -> Point:
    result = NEUTRAL
    while scalar:
        if scalar & 1:
            result = _add(result, point)
        point = _add(point, point)
        scalar >>= 1
    return result


def _encode(point: Point) -> bytes:
    x, y, z, _ = point
    inverse = pow(z, P - 2, P)
    x, y = x * inverse % P, y * inverse % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _small_order_points() -> set[bytes]:
    generator = random.Random(25519)
    found: set[bytes] = set()
    for _ in range(400):
        point = _decode(generator.randbytes(32))
        if point is not None:
            found.add(_encode(_times(L, point)))
        if len(found) == 8:
            break
    return found


SMALL_ORDER_POINTS = sorted(_small_order_points())


def _y(encoded: bytes) -> int:
    return int.from_bytes(encoded, "little") & ((1 << 255) - 1)


def test_the_eight_points_of_small_order_are_found_and_each_is_refused() -> None:
    assert len(SMALL_ORDER_POINTS) == 8
    assert IDENTITY_KEY in SMALL_ORDER_POINTS
    assert {_y(encoded) for encoded in SMALL_ORDER_POINTS} == edwards25519.SMALL_ORDER_Y
    for encoded in SMALL_ORDER_POINTS:
        point = _decode(encoded)
        assert point is not None
        assert _encode(_times(8, point)) == _encode(NEUTRAL)
        assert not edwards25519.is_acceptable_public_key(encoded)
        with pytest.raises(intents.SignatureMalformed, match="small order"):
            intents.load_public_key(intents.KeyAlgorithm.ED25519, encoded)


def test_any_other_point_is_accepted_and_library_keys_load() -> None:
    """Points of the whole curve (most with a small-order part, none of small order
    itself) and keys made by the library."""
    generator = random.Random(8032)
    points = 0
    while points < 200:
        encoded = generator.randbytes(32)
        point = _decode(encoded)
        if point is None:
            continue
        points += 1
        small = _encode(_times(8, point)) == _encode(NEUTRAL)
        assert edwards25519.is_acceptable_public_key(encoded) == (not small)
    for _ in range(50):
        raw = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
        assert edwards25519.is_acceptable_public_key(raw)
        intents.load_public_key(intents.KeyAlgorithm.ED25519, raw)


def test_a_second_spelling_of_a_point_is_refused() -> None:
    """y + p still fits in 255 bits for y < 19: another spelling of y's point."""
    for y in (0, 1, 2, 18):
        for sign in (0, 1):
            other_spelling = ((y + P) | (sign << 255)).to_bytes(32, "little")
            assert not edwards25519.is_acceptable_public_key(other_spelling)
    assert not edwards25519.is_acceptable_public_key(IDENTITY_KEY[:31])


def test_a_signature_anyone_can_make_no_longer_verifies() -> None:
    """Under the neutral element as a key, R = the neutral element and S = 0 satisfy
    RFC 8032's equation for any message: OpenSSL accepts it; we do not."""
    forged = IDENTITY_KEY + bytes(32)
    message = b'{"amount":90,"type":"transfer"}'
    library_key = Ed25519PublicKey.from_public_bytes(IDENTITY_KEY)
    library_key.verify(forged, message)  # raises nothing: the library alone would accept it
    assert not intents.verify_signature(intents.KeyAlgorithm.ED25519, IDENTITY_KEY, message, forged)
    assert not intents.verify_signature_strictly(
        intents.KeyAlgorithm.ED25519, IDENTITY_KEY, message, forged
    )


# The service verifies with libsodium, the audit with OpenSSL (intents.py): what the
# service accepts, the audit must accept too.


def _secret_scalar(key: Ed25519PrivateKey) -> int:
    """RFC 8032 5.1.5: the first half of SHA-512(seed), clamped."""
    digest = bytearray(hashlib.sha512(key.private_bytes_raw()).digest()[:32])
    digest[0] &= 248
    digest[31] &= 127
    digest[31] |= 64
    return int.from_bytes(digest, "little")


def _challenge(encoded_r: bytes, public_key: bytes, message: bytes) -> int:
    return int.from_bytes(hashlib.sha512(encoded_r + public_key + message).digest(), "little") % L


def test_a_holder_s_signature_with_r_of_small_order_verifies_for_the_audit_only() -> None:
    """With R the neutral element and S = k·a, the equation holds: only the key's
    holder can make it (a is the secret scalar). OpenSSL accepts it; libsodium, the
    service's verification, refuses it, so it never reaches the log."""
    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    public_key = key.public_key().public_bytes_raw()
    message = b'{"amount":90,"type":"transfer"}'
    neutral = _encode(NEUTRAL)
    crafted = neutral + (
        _challenge(neutral, public_key, message) * _secret_scalar(key) % L
    ).to_bytes(32, "little")
    honest = key.sign(message)
    verifier = intents.load_public_key(intents.KeyAlgorithm.ED25519, public_key)
    assert verifier.verify(message, crafted)
    assert not verifier.verify_strictly(message, crafted)
    assert verifier.verify(message, honest)
    assert verifier.verify_strictly(message, honest)


def _changed(data: bytes, generator: random.Random) -> bytes:
    position = generator.randrange(len(data))
    return (
        data[:position]
        + bytes([data[position] ^ (1 << generator.randrange(8))])
        + data[position + 1 :]
    )


def test_the_service_s_and_the_audit_s_verifications_agree_on_signatures_and_changes() -> None:
    """Valid signatures, one bit changed in the signature (R or S) or the message,
    and S + L (the same S spelled at or above the group order): both accept the
    first and refuse the others."""
    generator = random.Random(2026)
    for case in range(150):
        key = Ed25519PrivateKey.from_private_bytes(generator.randbytes(32))
        public_key = key.public_key().public_bytes_raw()
        message = generator.randbytes(generator.randrange(1, 400))
        signature = key.sign(message)
        verifier = intents.load_public_key(intents.KeyAlgorithm.ED25519, public_key)
        s_plus_order = int.from_bytes(signature[32:], "little") + L
        variants = [
            (message, signature, True),
            (message, _changed(signature, generator), False),
            (_changed(message, generator), signature, False),
            (message, signature[:32] + s_plus_order.to_bytes(32, "little"), False),
        ]
        for signed, candidate, valid in variants:
            assert verifier.verify(signed, candidate) is valid, case
            assert verifier.verify_strictly(signed, candidate) is valid, case
