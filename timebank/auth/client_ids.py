"""An API client's `client_id` (RFC 6749 2.2), what its integrator sends to the
token endpoint with the secret: `<community id>.<client id>`, two UUIDs. It names
the community so that the client is read where the community's rows live (the
schema shards by community, docs/scaling.md), never searched for across them.

Clients made before migration 0025 were handed their bare `<client id>`; it still
works, its community read from a small global table (`api_client_legacy_ids`)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

SEPARATOR = "."
UUID_PATTERN = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# Either form; the OpenAPI document uses it for the path parameter too.
CLIENT_ID_PATTERN = rf"^(?:{UUID_PATTERN}\.)?{UUID_PATTERN}$"
CLIENT_ID_LENGTH_MAX = 2 * 36 + len(SEPARATOR)
_CLIENT_ID = re.compile(CLIENT_ID_PATTERN)


@dataclass(frozen=True, slots=True)
class ClientReference:
    """What a client_id names: the client's id in its community, and the community
    (None for a bare id issued before migration 0025: look it up)."""

    community_id: uuid.UUID | None
    id: uuid.UUID


def format_client_id(community_id: uuid.UUID, client_id: uuid.UUID) -> str:
    """The client_id handed to an integrator."""
    return f"{community_id}{SEPARATOR}{client_id}"


def parse_client_id(text: str) -> ClientReference | None:
    """What the text names, or None when it is no client_id of either form."""
    if len(text) > CLIENT_ID_LENGTH_MAX or _CLIENT_ID.fullmatch(text) is None:
        return None
    community_text, _, id_text = text.rpartition(SEPARATOR)
    community_id = uuid.UUID(community_text) if community_text else None
    return ClientReference(community_id, uuid.UUID(id_text))
