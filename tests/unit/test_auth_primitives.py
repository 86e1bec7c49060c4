"""Passwords and token keys: what identities will stand on."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from timebank.auth.errors import Unauthenticated, WeakPassword
from timebank.auth.passwords import (
    PASSWORD_LENGTH_MAX,
    ScryptCost,
    hash_password,
    needs_rehash,
    verify_password,
)
from timebank.auth.signing_keys import KeyRing

# Cheap parameters keep the unit tests fast; the default cost is checked once.
FAST = ScryptCost(log2_n=10, block_size=8, parallelism=1)
AUDIENCE = "timebank"
ISSUER = "https://timebank.test"


def test_a_password_verifies_against_its_hash_only() -> None:
    """The hash accepts its password and refuses any other; salts make hashes differ."""
    encoded = hash_password("correct horse battery", FAST)
    assert verify_password("correct horse battery", encoded)
    assert not verify_password("correct horse batterY", encoded)
    assert hash_password("correct horse battery", FAST) != encoded
    assert encoded.startswith("scrypt$10$8$1$")


def test_the_default_cost_is_memory_hard() -> None:
    """By default scrypt runs with n = 2^15, r = 8 (32 MiB per hash)."""
    encoded = hash_password("a long enough password")
    assert encoded.startswith("scrypt$15$8$1$")
    assert not needs_rehash(encoded)
    assert needs_rehash(hash_password("a long enough password", FAST))


@pytest.mark.parametrize("encoded", ["", "plain", "scrypt$x$8$1$aa$bb", "bcrypt$1$2$3$4$5"])
def test_a_malformed_hash_never_verifies(encoded: str) -> None:
    """Garbage in the store is a refusal, not a crash."""
    assert not verify_password("whatever password", encoded)


@pytest.mark.parametrize("password", ["short", "x" * (PASSWORD_LENGTH_MAX + 1)])
def test_passwords_are_bounded(password: str) -> None:
    """Too short is weak; too long would make hashing a weapon."""
    with pytest.raises(WeakPassword):
        hash_password(password, FAST)


def claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    values: dict[str, object] = {
        "sub": "person-1",
        "aud": AUDIENCE,
        "iss": ISSUER,
        "iat": now,
        "exp": now + 900,
    }
    values.update(overrides)
    return values


def test_keys_are_created_once_private_and_reloaded(tmp_path: Path) -> None:
    """The first start writes a key readable by its owner only; later starts reuse it."""
    directory = tmp_path / "keys"
    ring = KeyRing.load_or_create(directory)
    (key_file,) = directory.iterdir()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    again = KeyRing.load_or_create(directory)
    assert again.signing_key.key_id == ring.signing_key.key_id


def test_a_signed_token_verifies_and_names_its_key(tmp_path: Path) -> None:
    """Tokens carry the key id of the key that signed them, published in the JWKS."""
    ring = KeyRing.load_or_create(tmp_path)
    token = ring.sign(claims())
    assert jwt.get_unverified_header(token)["kid"] == ring.signing_key.key_id
    assert ring.verify(token, audience=AUDIENCE, issuer=ISSUER)["sub"] == "person-1"
    (jwk,) = ring.jwks()["keys"]
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["kid"]) == (
        "OKP",
        "Ed25519",
        "EdDSA",
        ring.signing_key.key_id,
    )


def test_rotation_keeps_old_tokens_valid_until_retirement(tmp_path: Path) -> None:
    """After rotation the new key signs; old tokens verify until their key retires."""
    ring = KeyRing.load_or_create(tmp_path)
    old_token = ring.sign(claims())
    old_key_id = ring.signing_key.key_id
    ring.rotate()
    assert ring.signing_key.key_id != old_key_id
    assert len(ring.jwks()["keys"]) == 2
    assert ring.verify(old_token, audience=AUDIENCE, issuer=ISSUER)["sub"] == "person-1"
    assert ring.retire_older_than(-1) == [old_key_id]
    with pytest.raises(Unauthenticated):
        ring.verify(old_token, audience=AUDIENCE, issuer=ISSUER)
    assert len(KeyRing.load_or_create(tmp_path).jwks()["keys"]) == 1


@pytest.mark.parametrize(
    "forge",
    [
        "expired",
        "wrong_audience",
        "wrong_issuer",
        "alg_none",
        "foreign_key",
        "garbage",
        "missing_subject",
    ],
)
def test_tokens_that_do_not_hold_are_refused(tmp_path: Path, forge: str) -> None:
    """Expired, other audience or issuer, alg none, another key's, malformed: all
    unauthenticated."""
    ring = KeyRing.load_or_create(tmp_path)
    token = forged_token(ring, forge)
    with pytest.raises(Unauthenticated):
        ring.verify(token, audience=AUDIENCE, issuer=ISSUER)


def forged_token(ring: KeyRing, forge: str) -> str:
    kid = ring.signing_key.key_id
    if forge == "expired":
        return ring.sign(claims(exp=int(time.time()) - 3600))
    if forge == "wrong_audience":
        return ring.sign(claims(aud="elsewhere"))
    if forge == "wrong_issuer":
        return ring.sign(claims(iss="https://evil.test"))
    if forge == "alg_none":
        return jwt.encode(claims(), key="", algorithm="none", headers={"kid": kid})
    if forge == "foreign_key":
        other = Ed25519PrivateKey.generate()
        return jwt.encode(claims(), other, algorithm="EdDSA", headers={"kid": kid})
    if forge == "missing_subject":
        return ring.sign({name: value for name, value in claims().items() if name != "sub"})
    assert forge == "garbage"
    return "not.a.token"


def test_a_remembered_token_still_expires(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Verified tokens are remembered, but never past their expiry (plus the clock
    skew allowed): a token that was fine a minute ago is refused once expired."""
    ring = KeyRing.load_or_create(tmp_path)
    token = ring.sign(claims())
    assert ring.verify(token, audience=AUDIENCE, issuer=ISSUER)["sub"] == "person-1"
    assert ring.verify(token, audience=AUDIENCE, issuer=ISSUER)["sub"] == "person-1"
    later = time.time() + 900 + 31
    monkeypatch.setattr("timebank.auth.signing_keys.time.time", lambda: later)
    with pytest.raises(Unauthenticated):
        ring.verify(token, audience=AUDIENCE, issuer=ISSUER)


def test_a_remembered_token_is_checked_against_each_audience(tmp_path: Path) -> None:
    """Remembering a token for one audience says nothing of another."""
    ring = KeyRing.load_or_create(tmp_path)
    token = ring.sign(claims())
    ring.verify(token, audience=AUDIENCE, issuer=ISSUER)
    with pytest.raises(Unauthenticated):
        ring.verify(token, audience="elsewhere", issuer=ISSUER)
