"""Two independent implementations agree the other way round too: what the
service's library (`cryptography`) signs, the browser's WebCrypto verifies —
Ed25519, and ECDSA P-256 in the r||s form browsers use — and a changed byte
fails there as it fails here."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from playwright.sync_api import Browser, Page

from tests.browser.conftest import Community, phone
from timebank.signing import intents

VERIFY_IN_BROWSER = """async ([algorithm, publicKey, message, signature]) => {
  const bytes = (values) => new Uint8Array(values);
  const parameters = algorithm === "ed25519"
    ? {name: "Ed25519"}
    : {name: "ECDSA", namedCurve: "P-256"};
  const key = await crypto.subtle.importKey(
    "raw", bytes(publicKey), parameters, false, ["verify"]);
  const verifying = algorithm === "ed25519" ? {name: "Ed25519"} : {name: "ECDSA", hash: "SHA-256"};
  return crypto.subtle.verify(verifying, key, bytes(signature), bytes(message));
}"""


@pytest.fixture(scope="module")
def page(browser: Browser, community: Community) -> Iterator[Page]:
    """A page of the service: a secure context, where crypto.subtle exists."""
    with phone(browser, community) as context:
        opened = context.new_page()
        opened.goto("/")
        yield opened


def an_intent(key_id: str) -> bytes:
    return intents.make_transfer_intent(
        ledger="timebank.local/demo",
        tx_id=uuid.uuid4(),
        payer=uuid.uuid4(),
        payee=uuid.uuid4(),
        unit="HOUR",
        amount=90,
        memo="taille de la haie",
        not_after=datetime.now(UTC) + timedelta(minutes=5),
        key_id=key_id,
    )


def verified_in_browser(
    page: Page, algorithm: str, public_key: bytes, message: bytes, signature: bytes
) -> bool:
    return bool(
        page.evaluate(
            VERIFY_IN_BROWSER, [algorithm, list(public_key), list(message), list(signature)]
        )
    )


def test_an_ed25519_signature_made_by_the_service_library_verifies_in_the_browser(
    page: Page,
) -> None:
    key = Ed25519PrivateKey.generate()
    public_key = key.public_key().public_bytes_raw()
    message = an_intent(intents.public_key_id(intents.KeyAlgorithm.ED25519, public_key))
    signature = key.sign(message)
    assert verified_in_browser(page, "ed25519", public_key, message, signature)
    changed = message.replace(b'"amount":90', b'"amount":91')
    assert not verified_in_browser(page, "ed25519", public_key, changed, signature)


def test_a_p256_signature_made_by_the_service_library_verifies_in_the_browser(
    page: Page,
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    public_key = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    message = an_intent(intents.public_key_id(intents.KeyAlgorithm.P256, public_key))
    r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert verified_in_browser(page, "p256", public_key, message, signature)
    assert intents.verify_signature(intents.KeyAlgorithm.P256, public_key, message, signature)
    assert not verified_in_browser(page, "p256", public_key, message + b" ", signature)
