"""What a registered Ed25519 key must be beyond 32 bytes: the canonical encoding of a
point of the curve that is not of small order.

A point of small order (one of the eight whose order divides the cofactor 8, the
neutral element among them) is a key with no secret behind it: with A the neutral
element, the signature R = A, S = 0 verifies for every message under RFC 8032's
equation, and OpenSSL (pyca/cryptography) accepts it. A member who registered such
a key could later say that anyone might have signed in their name, which is the
proof the log exists to give. So such keys are refused where keys are loaded
(`intents.load_public_key`): at registration, at verification, and in the offline
audit, where a signature under such a key does not verify.

Pure arithmetic on Python integers (RFC 8032 section 5.1): decoding, then three
doublings; a key is loaded once per process, so its cost (tens of microseconds)
does not count.
"""

from __future__ import annotations

# The field's prime and the curve's constant d = -121665/121666 (RFC 8032 5.1).
FIELD_PRIME = 2**255 - 19
CURVE_D = (-121665 * pow(121666, FIELD_PRIME - 2, FIELD_PRIME)) % FIELD_PRIME
# A square root of -1 in the field, for the decoding's second case.
SQRT_MINUS_ONE = pow(2, (FIELD_PRIME - 1) // 4, FIELD_PRIME)
ENCODED_POINT_SIZE_BYTES = 32
COFACTOR_DOUBLINGS = 3  # the cofactor is 8 = 2**3

Point = tuple[int, int, int, int]  # extended coordinates (X, Y, Z, T), x = X/Z, y = Y/Z


def decode_point(encoded: bytes) -> Point | None:
    """The point `encoded` spells canonically (RFC 8032 5.1.3), or None: not 32 bytes,
    y not below the prime (another spelling of a point), or no such point."""
    if len(encoded) != ENCODED_POINT_SIZE_BYTES:
        return None
    y = int.from_bytes(encoded, "little") & ((1 << 255) - 1)
    x_is_odd = encoded[-1] >> 7
    if y >= FIELD_PRIME:
        return None
    p = FIELD_PRIME
    u = (y * y - 1) % p
    v = (CURVE_D * y * y + 1) % p
    x = u * pow(v, 3, p) * pow(u * pow(v, 7, p), (p - 5) // 8, p) % p
    if v * x * x % p == (-u) % p:
        x = x * SQRT_MINUS_ONE % p
    elif v * x * x % p != u:
        return None
    if x == 0 and x_is_odd:
        return None
    if x & 1 != x_is_odd:
        x = p - x
    return (x, y, 1, x * y % p)


def double(point: Point) -> Point:
    """2P, in extended coordinates (RFC 8032 5.1.4's doubling)."""
    p = FIELD_PRIME
    x1, y1, z1, _ = point
    a = x1 * x1 % p
    b = y1 * y1 % p
    c = 2 * z1 * z1 % p
    h = (a + b) % p
    e = (h - (x1 + y1) * (x1 + y1)) % p
    g = (a - b) % p
    f = (c + g) % p
    return (e * f % p, g * h % p, f * g % p, e * h % p)


def is_neutral(point: Point) -> bool:
    """The neutral element (0, 1), whatever the coordinates' common factor Z."""
    x, y, z, _ = point
    return x % FIELD_PRIME == 0 and (y - z) % FIELD_PRIME == 0


def has_small_order(point: Point) -> bool:
    """Whether [8]P is the neutral element: P is one of the eight points of small order."""
    for _ in range(COFACTOR_DOUBLINGS):
        point = double(point)
    return is_neutral(point)


def is_acceptable_public_key(encoded: bytes) -> bool:
    """A canonical encoding of a point of the curve that is not of small order."""
    point = decode_point(encoded)
    return point is not None and not has_small_order(point)
