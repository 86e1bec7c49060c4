"""What a registered Ed25519 key must be beyond 32 bytes: the one spelling of its y
coordinate, and not a point of small order.

A point of small order (one of the eight whose order divides the cofactor 8, the
neutral element among them) is a key with no secret behind it: with A the neutral
element, the signature R = A, S = 0 verifies for every message under RFC 8032's
equation, and OpenSSL (pyca/cryptography) accepts it. A member who registered such
a key could later say that anyone might have signed in their name, which is the
proof the log exists to give. So such keys are refused where keys are loaded
(`intents.load_public_key`): at registration, at verification, and in the offline
audit, where a signature under such a key does not verify.

The eight points have five y coordinates between them (a point and its negation
share one), listed below; tests/unit/test_edwards25519.py finds the eight points
on its own and checks that list. An encoding is the y coordinate (255 bits, little
endian) and the sign of x in the top bit: a y at or above the field's prime is a
second spelling of a smaller one, refused too, so that a key has one spelling.
"""

from __future__ import annotations

FIELD_PRIME = 2**255 - 19
ENCODED_POINT_SIZE_BYTES = 32
Y_MASK = (1 << 255) - 1
# y of the order-8 points; the other pair of them has FIELD_PRIME minus this.
ORDER_EIGHT_Y = 0x05FC536D880238B13933C6D305ACDFD5F098EFF289F4C345B027B2C28F95E826
SMALL_ORDER_Y = frozenset(
    {
        1,  # the neutral element (0, 1)
        FIELD_PRIME - 1,  # (0, -1), of order 2
        0,  # (±sqrt(-1), 0), of order 4
        ORDER_EIGHT_Y,
        FIELD_PRIME - ORDER_EIGHT_Y,
    }
)


def is_acceptable_public_key(encoded: bytes) -> bool:
    """32 bytes whose y coordinate is spelled canonically and is not that of a point
    of small order. (Whether y is on the curve at all is left to the library, whose
    verification then fails.)"""
    if len(encoded) != ENCODED_POINT_SIZE_BYTES:
        return False
    y = int.from_bytes(encoded, "little") & Y_MASK
    return y < FIELD_PRIME and y not in SMALL_ORDER_Y
