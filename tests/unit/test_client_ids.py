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


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not-a-client",
        f"{uuid.uuid4()}.",
        f".{uuid.uuid4()}",
        f"{uuid.uuid4()}.{uuid.uuid4()}.{uuid.uuid4()}",
        f"{uuid.uuid4()}:{uuid.uuid4()}",
        f"{uuid.uuid4()}.{uuid.uuid4()}\n",
        f" {uuid.uuid4()}",
        uuid.uuid4().hex,
        f"{{{uuid.uuid4()}}}",
        f"urn:uuid:{uuid.uuid4()}",
    ],
)
def test_anything_else_is_no_client_id(text: str) -> None:
    """Only the two forms, canonical UUIDs, nothing around them."""
    assert parse_client_id(text) is None
