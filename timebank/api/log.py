"""The community's tamper-evident log: checkpoints, entries, proofs and keys."""

from __future__ import annotations

import base64
import io
import tempfile
import time

from aiohttp import web

from timebank.api.context import community_actor
from timebank.api.contract import body_of, query_of, respond
from timebank.api.registry import api
from timebank.api.schemas import (
    LOG_ENTRIES_PAGE_MAX,
    CheckpointOut,
    ConsistencyOut,
    ConsistencyQuery,
    CosignatureIn,
    InclusionOut,
    InclusionQuery,
    LogEntriesOut,
    LogEntriesQuery,
    LogKeysOut,
    WitnessCreate,
    WitnessList,
    WitnessOut,
)
from timebank.auth.access import Actor, Scope
from timebank.keys import DATABASE_POOL, LOG
from timebank.ledger.errors import DatabaseUnavailable, DuplicateName, ValidationError
from timebank.ledger.models import Community
from timebank.log.audit import export_bundle
from timebank.log.note import (
    NoteError,
    cosignature_time,
    format_signature_line,
    parse_checkpoint,
    parse_note,
    parse_verifier_key,
    verify_note,
)
from timebank.log.store import StoredCheckpoint

TAG = "Log"
BUNDLE_CONTENT_TYPE = "application/jsonl"
# A bundle larger than this is spooled to a temporary file while it is sent.
# A witness's clock may run a little ahead of ours.
COSIGNATURE_CLOCK_SKEW_S = 600
BUNDLE_IN_MEMORY_MAX_BYTES = 8 * 1024 * 1024
BUNDLE_CHUNK_BYTES = 256 * 1024


def _require_reader(actor: Actor) -> None:
    """The log holds no personal data: every member may audit it, and clients with
    the audit:read scope."""
    if actor.is_client:
        actor.require_scope(Scope.AUDIT_READ)
    else:
        actor.require_member()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def checkpoint_out(checkpoint: StoredCheckpoint) -> CheckpointOut:
    origin = parse_checkpoint(parse_note(checkpoint.note).body).origin
    return CheckpointOut(
        origin=origin,
        tree_size=checkpoint.tree_size,
        root_hash=_b64(checkpoint.root_hash),
        note=checkpoint.note,
        created_at=checkpoint.created_at,
    )


async def _latest(request: web.Request, community: Community) -> StoredCheckpoint:
    checkpoint = await request.app[LOG].checkpoint_covering(community.id, community.slug, 0)
    if checkpoint is None:
        raise DatabaseUnavailable("the log's first checkpoint is being signed; retry in a moment")
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
    checkpoint = checkpoint_out(await _latest(request, community))
    checkpoint.cosignatures = await request.app[LOG].cosignatures(
        community.id, checkpoint.tree_size
    )
    return respond(checkpoint)


@api.operation(
    "POST",
    "/v1/communities/{slug}/log/checkpoints",
    tag=TAG,
    summary="Sign a checkpoint now",
    responses={200: CheckpointOut},
)
async def create_checkpoint(request: web.Request) -> web.Response:
    """Signs a checkpoint of everything logged so far (or answers the latest when
    nothing is new). When the background checkpointer (of this process or another)
    is signing at that moment, waits for its checkpoint: the answer always covers
    every entry logged before the call."""
    community, actor = await community_actor(request, request.match_info["slug"])
    _require_reader(actor)
    log = request.app[LOG]
    logged = await log.size(community.id)
    checkpoint = await log.checkpoint_covering(community.id, community.slug, logged)
    if checkpoint is None:
        raise DatabaseUnavailable("a checkpoint is being signed; retry in a moment")
    return respond(checkpoint_out(checkpoint))


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


@api.operation(
    "POST",
    "/v1/communities/{slug}/log/witnesses",
    tag=TAG,
    summary="Register a witness (admins)",
    body=WitnessCreate,
    responses={201: WitnessOut},
    errors=("already_exists",),
)
async def add_witness(request: web.Request) -> web.Response:
    """A third party (an association, the local authority) whose key may cosign the
    community's checkpoints after checking each extends the last it cosigned."""
    community, actor = await community_actor(request, request.match_info["slug"])
    actor.require_admin()
    body = body_of(request, WitnessCreate)
    try:
        verifier = parse_verifier_key(body.vkey)
    except NoteError as error:
        raise ValidationError(f"vkey: {error}", field="vkey") from None
    log = request.app[LOG]
    if not await log.add_witness(community.id, verifier):
        raise DuplicateName(f"a witness named {verifier.name} exists", name=verifier.name)
    (created,) = [item for item in await log.witnesses(community.id) if item[0] == verifier.name]
    return respond(WitnessOut(name=created[0], vkey=created[1], created_at=created[2]), 201)


@api.operation(
    "GET",
    "/v1/communities/{slug}/log/witnesses",
    tag=TAG,
    summary="The community's witnesses",
    responses={200: WitnessList},
)
async def list_witnesses(request: web.Request) -> web.Response:
    """Every witness key that may cosign checkpoints."""
    community, actor = await community_actor(request, request.match_info["slug"])
    _require_reader(actor)
    witnesses = await request.app[LOG].witnesses(community.id)
    return respond(
        WitnessList(
            items=[WitnessOut(name=name, vkey=vkey, created_at=at) for name, vkey, at in witnesses]
        )
    )


@api.operation(
    "POST",
    "/v1/communities/{slug}/log/cosignatures",
    tag=TAG,
    summary="Hand in a witness's cosignature of a checkpoint",
    body=CosignatureIn,
    responses={200: CheckpointOut},
)
async def add_cosignature(request: web.Request) -> web.Response:
    """The note must be one of this log's checkpoints, word for word, signed by at
    least one registered witness: with a plain Ed25519 note signature (a witness key
    of type 0x01), or a c2sp.org/tlog-cosignature `cosignature/v1` (type 0x04,
    timestamped; one dated more than 10 minutes ahead is refused). Each witness's
    signature line is kept and served with the checkpoint."""
    community, actor = await community_actor(request, request.match_info["slug"])
    _require_reader(actor)
    body = body_of(request, CosignatureIn)
    log = request.app[LOG]
    witnesses = [parse_verifier_key(vkey) for _, vkey, _ in await log.witnesses(community.id)]
    try:
        note = parse_note(body.note)
        checkpoint = parse_checkpoint(note.body)
        signers = verify_note(body.note, witnesses).signers if witnesses else ()
    except NoteError as error:
        raise ValidationError(f"note: {error}", field="note") from None
    stored = await log.checkpoint_at(community.id, checkpoint.tree_size)
    if stored is None or parse_note(stored.note).body != note.body:
        raise ValidationError("the note is not one of this log's checkpoints", field="note")
    if not signers:
        raise ValidationError("no registered witness signed the note", field="note")
    cosigners = {(signer.name, signer.key_id): signer for signer in signers}
    latest_allowed = time.time() + COSIGNATURE_CLOCK_SKEW_S
    kept = [s for s in note.signatures if (s.name, s.key_id) in cosigners]
    for signature in kept:
        stamped = cosignature_time(signature)
        if cosigners[(signature.name, signature.key_id)].is_cosigner and (
            stamped is None or stamped > latest_allowed
        ):
            raise ValidationError(
                f"the cosignature of {signature.name} is dated in the future", field="note"
            )
    for signature in kept:
        await log.add_cosignature(
            community.id, checkpoint.tree_size, signature.name, format_signature_line(signature)
        )
    out = checkpoint_out(stored)
    out.cosignatures = await log.cosignatures(community.id, checkpoint.tree_size)
    return respond(out)


@api.operation(
    "GET",
    "/v1/communities/{slug}/log/bundle",
    tag=TAG,
    summary="The community's log bundle, for offline audit (treasurers, admins)",
    responses={200: None},
    text_responses={200: BUNDLE_CONTENT_TYPE},
)
async def log_bundle(request: web.Request) -> web.StreamResponse:
    """What `timebank audit export` writes (JSON Lines: a header with the origin,
    keys, checkpoints and published balances, then every entry), for
    `timebank audit verify` on any machine."""
    community, actor = await community_actor(request, request.match_info["slug"])
    actor.require_audit()
    with tempfile.SpooledTemporaryFile(max_size=BUNDLE_IN_MEMORY_MAX_BYTES, mode="w+b") as spool:
        text = io.TextIOWrapper(spool, encoding="utf-8", newline="\n")
        async with request.app[DATABASE_POOL].acquire() as connection:
            await export_bundle(connection, community.slug, text)
        text.flush()
        spool.seek(0)
        response = web.StreamResponse(
            headers={
                "Content-Type": BUNDLE_CONTENT_TYPE,
                "Content-Disposition": f'attachment; filename="{community.slug}-log.jsonl"',
            }
        )
        await response.prepare(request)
        while chunk := spool.read(BUNDLE_CHUNK_BYTES):
            await response.write(chunk)
        text.detach()
    await response.write_eof()
    return response
