"""The community's tamper-evident log: checkpoints, entries, proofs and keys."""

from __future__ import annotations

import base64

from aiohttp import web

from timebank.api.context import community_actor
from timebank.api.contract import query_of, respond
from timebank.api.registry import api
from timebank.api.schemas import (
    LOG_ENTRIES_PAGE_MAX,
    CheckpointOut,
    ConsistencyOut,
    ConsistencyQuery,
    InclusionOut,
    InclusionQuery,
    LogEntriesOut,
    LogEntriesQuery,
    LogKeysOut,
)
from timebank.auth.access import Actor, Scope
from timebank.keys import LOG
from timebank.ledger.errors import ValidationError
from timebank.ledger.models import Community
from timebank.log.note import parse_checkpoint, parse_note
from timebank.log.store import StoredCheckpoint

TAG = "Log"


def _require_reader(actor: Actor) -> None:
    """The log holds no personal data: every member may audit it, and clients with
    the audit:read scope."""
    if actor.is_client:
        actor.require_scope(Scope.AUDIT_READ)
    else:
        actor.require_member()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _checkpoint_out(checkpoint: StoredCheckpoint) -> CheckpointOut:
    origin = parse_checkpoint(parse_note(checkpoint.note).body).origin
    return CheckpointOut(
        origin=origin,
        tree_size=checkpoint.tree_size,
        root_hash=_b64(checkpoint.root_hash),
        note=checkpoint.note,
        created_at=checkpoint.created_at,
    )


async def _latest(request: web.Request, community: Community) -> StoredCheckpoint:
    log = request.app[LOG]
    checkpoint = await log.latest_checkpoint(community.id)
    if checkpoint is None:
        checkpoint = await log.checkpoint(community.id, community.slug)
    if checkpoint is None:  # another process is signing the first one right now
        checkpoint = await log.latest_checkpoint(community.id)
    if checkpoint is None:
        raise ValidationError("the log has no checkpoint yet; retry in a moment")
    return checkpoint


@api.operation(
    "GET",
    "/v1/communities/{slug}/log/checkpoint",
    tag=TAG,
    summary="The latest signed checkpoint",
    responses={200: CheckpointOut},
)
async def get_checkpoint(request: web.Request) -> web.Response:
    """The community's tree head (origin, size, root) signed with its log key, as a
    C2SP tlog-checkpoint note. Checkpoints are signed every few seconds while the
    log grows."""
    community, actor = await community_actor(request, request.match_info["slug"])
    _require_reader(actor)
    return respond(_checkpoint_out(await _latest(request, community)))


@api.operation(
    "POST",
    "/v1/communities/{slug}/log/checkpoints",
    tag=TAG,
    summary="Sign a checkpoint now",
    responses={200: CheckpointOut},
)
async def create_checkpoint(request: web.Request) -> web.Response:
    """Signs a checkpoint of everything logged so far (or answers the latest when
    nothing is new)."""
    community, actor = await community_actor(request, request.match_info["slug"])
    _require_reader(actor)
    log = request.app[LOG]
    checkpoint = await log.checkpoint(community.id, community.slug)
    return respond(_checkpoint_out(checkpoint or await _latest(request, community)))


@api.operation(
    "GET",
    "/v1/communities/{slug}/log/entries",
    tag=TAG,
    summary="Entries of the log by index",
    query=LogEntriesQuery,
    responses={200: LogEntriesOut},
)
async def list_log_entries(request: web.Request) -> web.Response:
    """Entries from `start` (inclusive) to `end` (exclusive), at most 1,000; each is
    RFC 8785 canonical JSON, and its leaf hash is SHA-256(0x00 || bytes)."""
    community, actor = await community_actor(request, request.match_info["slug"])
    _require_reader(actor)
    query = query_of(request, LogEntriesQuery)
    end = query.end if query.end is not None else query.start + LOG_ENTRIES_PAGE_MAX
    if end < query.start or end - query.start > LOG_ENTRIES_PAGE_MAX:
        raise ValidationError(f"end must be between start and start + {LOG_ENTRIES_PAGE_MAX}")
    entries = await request.app[LOG].entries(community.id, query.start, end)
    return respond(LogEntriesOut(start=query.start, entries=[entry.decode() for entry in entries]))


async def _checkpointed_size(request: web.Request, community: Community) -> int:
    return (await _latest(request, community)).tree_size


@api.operation(
    "GET",
    "/v1/communities/{slug}/log/proofs/inclusion",
    tag=TAG,
    summary="Proof that an entry is in the tree",
    query=InclusionQuery,
    responses={200: InclusionOut},
)
async def inclusion_proof(request: web.Request) -> web.Response:
    """The RFC 9162 inclusion proof of leaf `index` in the tree of `size` leaves
    (at most the latest checkpoint's size)."""
    community, actor = await community_actor(request, request.match_info["slug"])
    _require_reader(actor)
    query = query_of(request, InclusionQuery)
    checkpointed = await _checkpointed_size(request, community)
    if not query.index < query.size <= checkpointed:
        raise ValidationError(f"need index < size <= {checkpointed} (the latest checkpoint's size)")
    hashes = await request.app[LOG].inclusion_proof(community.id, query.index, query.size)
    return respond(
        InclusionOut(leaf_index=query.index, tree_size=query.size, hashes=[_b64(h) for h in hashes])
    )


@api.operation(
    "GET",
    "/v1/communities/{slug}/log/proofs/consistency",
    tag=TAG,
    summary="Proof that a tree extends an earlier one",
    query=ConsistencyQuery,
    responses={200: ConsistencyOut},
)
async def consistency_proof(request: web.Request) -> web.Response:
    """The RFC 9162 consistency proof between the trees of `first` and `second`
    leaves (first <= second <= the latest checkpoint's size): nothing logged before
    `first` was changed since."""
    community, actor = await community_actor(request, request.match_info["slug"])
    _require_reader(actor)
    query = query_of(request, ConsistencyQuery)
    checkpointed = await _checkpointed_size(request, community)
    if not query.first <= query.second <= checkpointed:
        raise ValidationError(f"need first <= second <= {checkpointed}")
    hashes = await request.app[LOG].consistency_proof(community.id, query.first, query.second)
    return respond(
        ConsistencyOut(first=query.first, second=query.second, hashes=[_b64(h) for h in hashes])
    )


@api.operation(
    "GET",
    "/v1/communities/{slug}/log/keys",
    tag=TAG,
    summary="The keys that sign the community's checkpoints",
    responses={200: LogKeysOut},
)
async def log_keys(request: web.Request) -> web.Response:
    """Every key that ever signed a checkpoint of this community, oldest first."""
    community, actor = await community_actor(request, request.match_info["slug"])
    _require_reader(actor)
    await _latest(request, community)
    return respond(LogKeysOut(keys=await request.app[LOG].verifier_keys(community.id)))
