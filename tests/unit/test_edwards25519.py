"""Ed25519 keys of small order are refused (timebank/signing/edwards25519.py).

The eight points of small order are found here on their own, not from the module's
arithmetic: [L]P, for points P of the whole curve and L the prime order of its main
subgroup, always lands among them (the curve has 8L points), with a point addition
and a scalar multiplication written for this test only (RFC 8032 5.1.4 and 5.1.2)."""

from __future__ import annotations

import random

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from timebank.signing import edwards25519, intents

P = edwards25519.FIELD_PRIME
D = edwards25519.CURVE_D
# The prime order of the main subgroup (RFC 8032 5.1).
L = 2**252 + 27742317777372353535851937790883648493
NEUTRAL = (0, 1, 1, 0)
IDENTITY_KEY = (1).to_bytes(32, "little")


def _add(first: edwards25519.Point, second: edwards25519.Point) -> edwards25519.Point:
    x1, y1, z1, t1 = first
    x2, y2, z2, t2 = second
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = 2 * t1 * t2 * D % P
    d = 2 * z1 * z2 % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _times(scalar: int, point: edwards25519.Point) -> edwards25519.Point:
    result = NEUTRAL
    while scalar:
        if scalar & 1:
            result = _add(result, point)
        point = _add(point, point)
        scalar >>= 1
    return result


def _encode(point: edwards25519.Point) -> bytes:
    x, y, z, _ = point
    inverse = pow(z, P - 2, P)
    x, y = x * inverse % P, y * inverse % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _small_order_points() -> set[bytes]:
    generator = random.Random(25519)
    found: set[bytes] = set()
    for _ in range(400):
        point = edwards25519.decode_point(generator.randbytes(32))
        if point is not None:
            found.add(_encode(_times(L, point)))
        if len(found) == 8:
            break
    return found


SMALL_ORDER_POINTS = sorted(_small_order_points())


def test_the_eight_points_of_small_order_are_found_and_each_is_refused() -> None:
    assert len(SMALL_ORDER_POINTS) == 8
    assert IDENTITY_KEY in SMALL_ORDER_POINTS
    for encoded in SMALL_ORDER_POINTS:
        point = edwards25519.decode_point(encoded)
        assert point is not None
        assert _encode(_times(8, point)) == _encode(NEUTRAL)
        assert edwards25519.has_small_order(point)
        assert not edwards25519.is_acceptable_public_key(encoded)
        with pytest.raises(intents.SignatureMalformed, match="small order"):
            intents.load_public_key(intents.KeyAlgorithm.ED25519, encoded)


def test_keys_made_by_the_library_are_accepted_and_keep_their_point() -> None:
    for _ in range(50):
        raw = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
        point = edwards25519.decode_point(raw)
        assert point is not None
        assert _encode(point) == raw
        assert not edwards25519.has_small_order(point)
        assert edwards25519.is_acceptable_public_key(raw)
        intents.load_public_key(intents.KeyAlgorithm.ED25519, raw)


def test_other_spellings_and_non_points_are_refused() -> None:
    for y in (0, 1, 2, 18):  # y + p still fits in 255 bits for y < 19
        for sign in (0, 1):
            other_spelling = ((y + P) | (sign << 255)).to_bytes(32, "little")
            assert edwards25519.decode_point(other_spelling) is None
    not_on_curve = next(
        y for y in range(2, 100) if edwards25519.decode_point(y.to_bytes(32, "little")) is None
    )
    assert not edwards25519.is_acceptable_public_key(not_on_curve.to_bytes(32, "little"))
    # x = 0 has only the even spelling.
    assert edwards25519.decode_point((1 | (1 << 255)).to_bytes(32, "little")) is None
    assert edwards25519.decode_point(IDENTITY_KEY[:31]) is None


def test_a_signature_anyone_can_make_no_longer_verifies() -> None:
    """Under the neutral element as a key, R = the neutral element and S = 0 satisfy
    RFC 8032's equation for any message: OpenSSL accepts it; we do not."""
    forged = IDENTITY_KEY + bytes(32)
    message = b'{"amount":90,"type":"transfer"}'
    library_key = Ed25519PublicKey.from_public_bytes(IDENTITY_KEY)
    library_key.verify(forged, message)  # raises nothing: the library alone would accept it
    assert not intents.verify_signature(intents.KeyAlgorithm.ED25519, IDENTITY_KEY, message, forged)
