"""The service's token-signing keys: Ed25519, generated at first start into the
data directory (files readable by the service's user only) or read from there,
published as a JWKS with key ids. Rotation adds a new signing key and keeps the
previous ones for verification until the tokens they signed have expired."""

from __future__ import annotations

import base64
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from timebank.auth.errors import Unauthenticated

ALGORITHM = "EdDSA"
KEY_FILE_SUFFIX = ".ed25519.pem"
PRIVATE_FILE_MODE = 0o600
KEY_DIRECTORY_MODE = 0o700
# Tolerated clock difference between the service's processes.
CLOCK_SKEW_S = 30
# Verified tokens remembered at once (each about a kilobyte).
VERIFIED_TOKENS_CACHED_MAX = 50_000


@dataclass(frozen=True, slots=True)
class SigningKey:
    key_id: str
    private_key: Ed25519PrivateKey
    created_at_s: float

    def public_jwk(self) -> dict[str, str]:
        raw = self.private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode(),
            "kid": self.key_id,
            "alg": ALGORITHM,
            "use": "sig",
        }


class KeyRing:
    """The newest key signs; every key still on disk verifies."""

    def __init__(self, directory: Path, keys: list[SigningKey]) -> None:
        assert keys, "a key ring holds at least one key"
        self._directory = directory
        self._keys = sorted(keys, key=lambda key: key.created_at_s)
        # token, audience, issuer -> its claims and expiry (unix seconds).
        self._verified: dict[tuple[str, str, str], tuple[dict[str, Any], float]] = {}

    @classmethod
    def load_or_create(cls, directory: Path) -> KeyRing:
        """The keys in `directory`, creating the directory and a first key if none."""
        directory.mkdir(parents=True, exist_ok=True, mode=KEY_DIRECTORY_MODE)
        keys = [_read_key(path) for path in sorted(directory.glob(f"*{KEY_FILE_SUFFIX}"))]
        return cls(directory, keys or [_write_new_key(directory)])

    @property
    def signing_key(self) -> SigningKey:
        return self._keys[-1]

    def rotate(self) -> SigningKey:
        """A new signing key; the previous ones keep verifying until retired."""
        key = _write_new_key(self._directory)
        self._keys.append(key)
        return key

    def retire_older_than(self, age_s: float) -> list[str]:
        """Forgets the keys (never the signing one) created more than age_s ago;
        call it with more than the longest token lifetime."""
        cutoff = time.time() - age_s
        retired = [key for key in self._keys[:-1] if key.created_at_s < cutoff]
        for key in retired:
            (self._directory / f"{key.key_id}{KEY_FILE_SUFFIX}").unlink(missing_ok=True)
            self._keys.remove(key)
        if retired:
            # Tokens signed by a retired key must stop working at once.
            self._verified.clear()
        return [key.key_id for key in retired]

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [key.public_jwk() for key in reversed(self._keys)]}

    def sign(self, claims: Mapping[str, Any]) -> str:
        key = self.signing_key
        return jwt.encode(
            dict(claims), key.private_key, algorithm=ALGORITHM, headers={"kid": key.key_id}
        )

    def verify(self, token: str, *, audience: str, issuer: str) -> dict[str, Any]:
        """The claims of a token this service signed, still valid; Unauthenticated
        otherwise (forged, other key, other audience, expired, `alg: none`...).
        A token verified once is remembered until it expires: a client sends the same
        token with every request, and checking its signature each time was a fifth of
        a request's cost."""
        cache_key = (token, audience, issuer)
        remembered = self._verified.get(cache_key)
        if remembered is not None:
            claims, expires_at_s = remembered
            if time.time() < expires_at_s + CLOCK_SKEW_S:
                return dict(claims)
            del self._verified[cache_key]
            raise Unauthenticated("the token has expired")
        claims = self._verify_signed(token, audience=audience, issuer=issuer)
        if len(self._verified) >= VERIFIED_TOKENS_CACHED_MAX:
            self._verified.clear()
        self._verified[cache_key] = (dict(claims), float(claims["exp"]))
        return claims

    def _verify_signed(self, token: str, *, audience: str, issuer: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise Unauthenticated("the token is malformed") from error
        key = next((key for key in self._keys if key.key_id == header.get("kid")), None)
        if key is None or header.get("alg") != ALGORITHM:
            raise Unauthenticated("the token was not signed by this service")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.private_key.public_key(),
                algorithms=[ALGORITHM],
                audience=audience,
                issuer=issuer,
                leeway=CLOCK_SKEW_S,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise Unauthenticated("the token has expired") from error
        except jwt.PyJWTError as error:
            raise Unauthenticated("the token is not valid here") from error
        return claims


def _write_new_key(directory: Path) -> SigningKey:
    key_id = f"{time.strftime('%Y%m%d', time.gmtime())}-{uuid.uuid4().hex[:12]}"
    path = directory / f"{key_id}{KEY_FILE_SUFFIX}"
    private_key = create_private_key_file(path)
    return SigningKey(key_id, private_key, path.stat().st_mtime)


def create_private_key_file(path: Path) -> Ed25519PrivateKey:
    """A new Ed25519 key, written as PKCS#8 PEM to a new file readable by its owner
    only; FileExistsError if the file exists."""
    private_key = Ed25519PrivateKey.generate()
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Created with its final mode: the key is never readable by others, even briefly.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    with os.fdopen(descriptor, "wb") as file:
        file.write(pem)
    return private_key


def read_private_key_file(path: Path) -> Ed25519PrivateKey:
    private_key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(private_key, Ed25519PrivateKey), f"{path} is not an Ed25519 key"
    return private_key


def _read_key(path: Path) -> SigningKey:
    private_key = read_private_key_file(path)
    key_id = path.name.removesuffix(KEY_FILE_SUFFIX)
    return SigningKey(key_id, private_key, path.stat().st_mtime)
