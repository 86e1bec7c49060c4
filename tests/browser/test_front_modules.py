"""The front's pure modules, run in the browser they are written for: the bytes a
device signs are RFC 8785's (as the service's rfc8785 makes them) for any text and
integer, key ids and hashes match the service's, and amounts read the way members
write them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from playwright.sync_api import Browser, Page

from tests.browser.conftest import Community, phone
from timebank.signing import intents
from timebank.web.routes import load_assets

# Text without lone surrogates (which RFC 8785 refuses and a device never signs).
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
SAFE_INTEGERS = st.integers(min_value=-(2**53 - 1), max_value=2**53 - 1)
FIELDS = st.dictionaries(
    st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=8),
    TEXT | SAFE_INTEGERS,
    max_size=8,
)


@pytest.fixture(scope="module")
def page(browser: Browser, community: Community) -> Iterator[Page]:
    """A page of the service (a secure context, with crypto.subtle) with the front's
    modules loaded as `window.front`."""
    with phone(browser, community) as context:
        opened = context.new_page()
        opened.goto("/")
        version = load_assets().version
        opened.evaluate(
            """async (version) => {
              const base = `/static/${version}/js/`;
              window.front = {
                crypto: await import(base + "crypto.js"),
                format: await import(base + "format.js"),
              };
            }""",
            version,
        )
        yield opened


def canonical_in_browser(page: Page, fields: dict[str, Any]) -> bytes:
    values: list[int] = page.evaluate(
        "(text) => Array.from(window.front.crypto.canonical(JSON.parse(text)))",
        json.dumps(fields),
    )
    return bytes(values)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(fields=FIELDS)
def test_the_signed_bytes_are_rfc_8785(page: Page, fields: dict[str, Any]) -> None:
    """For any flat object of strings and safe integers, the browser's canonical
    bytes are exactly rfc8785's."""
    assert canonical_in_browser(page, fields) == rfc8785.dumps(fields)


def test_hashes_and_base64url_match_the_service(page: Page) -> None:
    """The memo hash is SHA-256 hex of UTF-8, and base64url has no padding, as the
    service computes them."""
    memo = "Café, 2 h de jardin \u2615"
    hashed = page.evaluate(
        "(memo) => window.front.crypto.sha256Hex(new TextEncoder().encode(memo))", memo
    )
    assert hashed == intents.memo_hash(memo)
    for size in range(6):
        data = bytes(range(250, 250 + size))
        encoded = page.evaluate(
            "(values) => window.front.crypto.base64url(new Uint8Array(values))", list(data)
        )
        assert encoded == intents.b64url_encode(data)


@pytest.mark.parametrize(
    ("value", "unit", "locale", "expected"),
    [
        (210, {"kind": "time", "code": "HOUR", "decimals": 0}, "fr", "3\u00a0h\u00a030"),
        (60, {"kind": "time", "code": "HOUR", "decimals": 0}, "en", "1\u00a0h"),
        (-45, {"kind": "time", "code": "HOUR", "decimals": 0}, "en", "\u22120\u00a0h\u00a045"),
        (1250, {"kind": "currency", "code": "G", "decimals": 2}, "fr", "12,50\u00a0G"),
        (1250, {"kind": "currency", "code": "G", "decimals": 2}, "en", "12.50\u00a0G"),
        (5, {"kind": "currency", "code": "G", "decimals": 2}, "fr", "0,05\u00a0G"),
        (123456, {"kind": "currency", "code": "G", "decimals": 2}, "fr", "1\u202f234,56\u00a0G"),
        (123456, {"kind": "currency", "code": "G", "decimals": 2}, "en", "1,234.56\u00a0G"),
        (123456, {"kind": "currency", "code": "G", "decimals": 2}, "de", "1.234,56\u00a0G"),
        (99999, {"kind": "currency", "code": "G", "decimals": 2}, "de", "999,99\u00a0G"),
        (
            60 * 1234 + 9,
            {"kind": "time", "code": "HOUR", "decimals": 0},
            "en",
            "1,234\u00a0h\u00a009",
        ),
    ],
)
def test_amounts_read_as_members_write_them(
    page: Page, value: int, unit: dict[str, Any], locale: str, expected: str
) -> None:
    """Minutes as hours and minutes, cents with the locale's decimal comma or point
    and the unit's code, never through a float."""
    shown = page.evaluate(
        "([value, unit, locale]) => window.front.format.formatAmount(value, unit, locale)",
        [value, unit, locale],
    )
    assert shown == expected


def test_whole_numbers_written_without_intl_match_intl(page: Page) -> None:
    """Amounts under 1,000 in the app's own languages are written without making an
    Intl formatter (slow on old phones): they must read exactly as Intl writes them."""
    differences = page.evaluate(
        """() => {
          const found = [];
          for (const locale of ["en", "fr"]) {
            const intl = new Intl.NumberFormat(locale, { maximumFractionDigits: 0 });
            const comma = new Intl.NumberFormat(locale).formatToParts(1.5)
              .find((part) => part.type === "decimal").value;
            for (let whole = 0; whole < 1001; whole += 1) {
              const cents = whole * 100 + 7;
              const shown = window.front.format.formatAmount(
                cents, { kind: "currency", code: "G", decimals: 2 }, locale);
              const expected = `${intl.format(whole)}${comma}07\u00a0G`;
              if (shown !== expected) found.push([locale, whole, shown, expected]);
            }
          }
          return found;
        }"""
    )
    assert differences == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [("12,5", 1250), ("12.50", 1250), (" 3 ", 300), ("0,01", 1), ("1,234", None), ("0", None)],
)
def test_amounts_typed_are_read_in_cents(page: Page, text: str, expected: int | None) -> None:
    """A comma or a point, at most the unit's decimals; zero or junk is no amount."""
    assert page.evaluate("(text) => window.front.format.parseAmount(text, 2)", text) == expected
