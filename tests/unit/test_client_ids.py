"""API client ids: `<community id>.<client id>`, or a bare id from before 0025."""

from __future__ import annotations

import re
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from timebank.auth.client_ids import (
    CLIENT_ID_PATTERN,
    ClientReference,
    format_client_id,
    parse_client_id,
)


@given(st.uuids(), st.uuids())
def test_a_formatted_client_id_parses_back_to_its_community_and_id(
    community_id: uuid.UUID, client_id: uuid.UUID
) -> None:
    """Round trip; the text matches the pattern the OpenAPI document publishes."""
    text = format_client_id(community_id, client_id)
    assert ClientReference(community_id, client_id) == parse_client_id(text)
    assert re.fullmatch(CLIENT_ID_PATTERN, text) is not None


def test_a_bare_id_names_no_community() -> None:
    """A client made before migration 0025: its community is looked up."""
    client_id = uuid.uuid4()
    assert ClientReference(None, client_id) == parse_client_id(str(client_id))


# Fixed ids: test ids must be the same at every collection (parallel workers
# compare theirs).
A = uuid.UUID("0b1c2d3e-4f50-4a61-8b72-9c8d7e6f5a4b")
B = uuid.UUID("11111111-2222-4333-8444-555555555555")
C = uuid.UUID("66666666-7777-4888-9999-aaaaaaaaaaaa")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not-a-client",
        f"{A}.",
        f".{A}",
        f"{A}.{B}.{C}",
        f"{A}:{B}",
        f"{A}.{B}\n",
        f" {A}",
        A.hex,
        f"{{{A}}}",
        f"urn:uuid:{A}",
    ],
)
def test_anything_else_is_no_client_id(text: str) -> None:
    """Only the two forms, canonical UUIDs, nothing around them."""
    assert parse_client_id(text) is None
