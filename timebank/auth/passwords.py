"""Passwords, stored only as memory-hard scrypt hashes (RFC 7914, from
`cryptography`), encoded with their parameters so they can be raised later."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from timebank.auth.errors import WeakPassword

PASSWORD_LENGTH_MIN = 10
# Bounded so that hashing cannot be turned against the service.
PASSWORD_LENGTH_MAX = 1024
SALT_BYTES = 16
KEY_BYTES = 32
SCHEME = "scrypt"


@dataclass(frozen=True, slots=True)
class ScryptCost:
    """2^15 x 8 x 128 bytes = 32 MiB and about 0.1 s per hash on these machines."""

    log2_n: int = 15
    block_size: int = 8
    parallelism: int = 1


DEFAULT_COST = ScryptCost()


def _derive(password: str, salt: bytes, cost: ScryptCost) -> Scrypt:
    return Scrypt(
        salt=salt, length=KEY_BYTES, n=2**cost.log2_n, r=cost.block_size, p=cost.parallelism
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def check_password_policy(password: str) -> None:
    if not PASSWORD_LENGTH_MIN <= len(password) <= PASSWORD_LENGTH_MAX:
        raise WeakPassword(
            f"a password has {PASSWORD_LENGTH_MIN} to {PASSWORD_LENGTH_MAX} characters",
            field="password",
        )


def hash_password(password: str, cost: ScryptCost = DEFAULT_COST) -> str:
    """`scrypt$<log2 n>$<r>$<p>$<salt>$<key>`, salt and key in unpadded base64url."""
    check_password_policy(password)
    salt = secrets.token_bytes(SALT_BYTES)
    key = _derive(password, salt, cost).derive(password.encode())
    return "$".join(
        (
            SCHEME,
            str(cost.log2_n),
            str(cost.block_size),
            str(cost.parallelism),
            _b64(salt),
            _b64(key),
        )
    )


def _parse(encoded: str) -> tuple[ScryptCost, bytes, bytes] | None:
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        return None
    try:
        cost = ScryptCost(int(parts[1]), int(parts[2]), int(parts[3]))
        return cost, _unb64(parts[4]), _unb64(parts[5])
    except ValueError:
        return None


def verify_password(password: str, encoded: str) -> bool:
    """Whether the password matches; False (never an exception) for anything else."""
    parsed = _parse(encoded)
    if parsed is None or len(password) > PASSWORD_LENGTH_MAX:
        return False
    cost, salt, key = parsed
    try:
        _derive(password, salt, cost).verify(password.encode(), key)
    except InvalidKey:
        return False
    return True


def needs_rehash(encoded: str, cost: ScryptCost = DEFAULT_COST) -> bool:
    parsed = _parse(encoded)
    return parsed is None or parsed[0] != cost


# Verified against when the account does not exist, so that a wrong email takes as
# long as a wrong password and the answer reveals nothing.
_DUMMY_HASH: str | None = None


def spend_verification_time(password: str) -> None:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password(secrets.token_urlsafe(24))
    verify_password(password, _DUMMY_HASH)
