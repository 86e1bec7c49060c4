"""Transactions: post one or a batch, read one, confirm, void or reverse it."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from aiohttp import web

from timebank.api.authentication import authenticate
from timebank.api.context import actor_by_id, community_actor, named_community_actor, path_uuid
from timebank.api.contract import body_of, query_of, respond
from timebank.api.problems import status_for
from timebank.api.registry import api
from timebank.api.schemas import (
    BatchIn,
    BatchItemOut,
    BatchOut,
    PostingOut,
    ReverseIn,
    TransactionBody,
    TransactionIn,
    TransactionOut,
    TransactionQuery,
    TransferIn,
)
from timebank.auth.access import Actor
from timebank.auth.errors import Forbidden
from timebank.errors import NotFound, TimebankError
from timebank.keys import DIRECTORY, IDENTITIES, LEDGER
from timebank.ledger.errors import BatchTooLarge, LedgerError, UnknownTransaction, ValidationError
from timebank.ledger.models import (
    BATCH_SIZE_MAX,
    Community,
    Outcome,
    Posting,
    Transaction,
    TransactionKind,
    TransactionRequest,
    TransactionResult,
)

TAG = "Transactions"
WRITE_ERRORS = (
    "amount_must_be_positive",
    "accounts_must_be_different",
    "postings_must_balance",
    "unit_mismatch",
    "unknown_community",
    "unknown_unit",
    "unknown_account",
    "limit_exceeded",
    "account_frozen",
    "account_closed",
    "transaction_id_conflict",
)


def ledger_request(body: TransactionIn, community: Community) -> TransactionRequest:
    """The ledger's request for a transaction as the API received it."""
    if isinstance(body, TransferIn):
        return TransactionRequest.transfer(
            id=body.id,
            community_id=community.id,
            unit_code=body.unit,
            from_account=body.from_,
            to_account=body.to,
            amount=body.amount,
            kind=TransactionKind(body.kind),
            memo=body.memo,
            category=body.category,
            pending=body.pending,
            expires_in_s=body.expires_in,
        )
    return TransactionRequest(
        id=body.id,
        community_id=community.id,
        kind=TransactionKind(body.kind),
        postings=tuple(Posting(posting.account, posting.amount) for posting in body.postings),
        memo=body.memo,
        category=body.category,
        unit_code=body.unit,
        pending=body.pending,
        expires_in_s=body.expires_in,
    )


def written_out(
    request: TransactionRequest, result: TransactionResult, community: Community
) -> TransactionOut:
    """What a write answers, the same for the first call and its retries."""
    return TransactionOut(
        id=result.id,
        community=community.slug,
        kind=request.kind,
        state=result.state,
        memo=request.memo,
        category=request.category,
        postings=[
            PostingOut(account=posting.account_id, amount=posting.amount)
            for posting in request.postings
        ],
        created_at=result.created_at,
        expires_at=result.expires_at,
        resolved_at=result.resolved_at,
    )


def stored_out(transaction: Transaction, community: Community) -> TransactionOut:
    return TransactionOut(
        id=transaction.id,
        community=community.slug,
        kind=transaction.kind,
        state=transaction.state,
        memo=transaction.memo,
        category=transaction.category,
        reverses=transaction.reverses_id,
        reversed_by=transaction.reversed_by_id,
        postings=[
            PostingOut(
                account=posting.account_id,
                amount=posting.amount,
                balance_after=posting.balance_after,
            )
            for posting in transaction.postings
        ],
        created_at=transaction.created_at,
        expires_at=transaction.expires_at,
        resolved_at=transaction.resolved_at,
    )


async def _owners(
    request: web.Request, community: Community, account_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID]:
    return await request.app[DIRECTORY].account_owners(community.id, list(set(account_ids)))


def check_write(
    actor: Actor, ledger_request: TransactionRequest, owners: dict[uuid.UUID, uuid.UUID]
) -> None:
    """A posted transaction needs every debited account to be the actor's; a
    pending one (awaiting the payer's yes) needs the actor to take part. Unknown
    accounts are left for the ledger to name."""
    if ledger_request.pending:
        actor.require_pending_proposal(
            owners[posting.account_id]
            for posting in ledger_request.postings
            if posting.account_id in owners
        )
        return
    actor.require_transaction_write(
        owners[posting.account_id]
        for posting in ledger_request.postings
        if posting.amount < 0 and posting.account_id in owners
    )


@api.operation(
    "POST",
    "/v1/transactions",
    tag=TAG,
    summary="Post a transaction",
    body=TransactionBody,
    responses={201: TransactionOut, 200: TransactionOut},
    errors=WRITE_ERRORS,
)
async def post_transaction(request: web.Request) -> web.Response:
    """A transfer (`from`, `to`, `amount`) or any balanced set of `postings`. The id
    is the client's: the same id with the same content answers 200 with the same
    body, never a second transaction; with other content, 409
    transaction_id_conflict. `pending: true` reserves the amount until the payer
    confirms, someone voids it, or it expires."""
    body = body_of(request, TransactionBody).root
    community, actor = await named_community_actor(request, body.community)
    ledger_request_ = ledger_request(body, community)
    owners = await _owners(request, community, (p.account_id for p in ledger_request_.postings))
    check_write(actor, ledger_request_, owners)
    result = await request.app[LEDGER].post(ledger_request_)
    status = 201 if result.outcome is Outcome.CREATED else 200
    return respond(written_out(ledger_request_, result, community), status)


@api.operation(
    "POST",
    "/v1/transactions/batch",
    tag=TAG,
    summary="Post up to 1,000 transactions",
    body=BatchIn,
    responses={201: BatchOut, 200: BatchOut},
    errors=(*WRITE_ERRORS, "batch_too_large"),
)
async def post_batch(request: web.Request) -> web.Response:
    """All in one community. `atomic: true` writes all or none (the first refusal
    is the answer, with the failing `index`); `atomic: false` writes each on its own
    and answers one result per item."""
    body = body_of(request, BatchIn)
    if len(body.transactions) > BATCH_SIZE_MAX:
        raise BatchTooLarge(size=len(body.transactions), max_size=BATCH_SIZE_MAX)
    slugs = {item.community for item in body.transactions}
    if len(slugs) != 1:
        raise ValidationError("a batch belongs to one community", field="community")
    community, actor = await named_community_actor(request, slugs.pop())
    requests = [ledger_request(item, community) for item in body.transactions]
    owners = await _owners(request, community, (p.account_id for r in requests for p in r.postings))
    store = request.app[LEDGER]
    if body.atomic:
        for index, ledger_request_ in enumerate(requests):
            try:
                check_write(actor, ledger_request_, owners)
            except Forbidden as error:
                error.context["index"] = index
                raise
        results = await store.post_atomic(requests)
        items = [
            _item(index, r, result, community) for index, (r, result) in _pairs(requests, results)
        ]
    else:
        allowed: list[int] = []
        refused: dict[int, TimebankError] = {}
        for index, ledger_request_ in enumerate(requests):
            try:
                check_write(actor, ledger_request_, owners)
                allowed.append(index)
            except Forbidden as error:
                refused[index] = error
        written = await store.post_independent([requests[i] for i in allowed]) if allowed else []
        outcomes: dict[int, TransactionResult | LedgerError | TimebankError] = dict(refused)
        outcomes.update(zip(allowed, written, strict=True))
        items = [
            _item(index, requests[index], outcomes[index], community)
            for index in range(len(requests))
        ]
    created = any(item.status == 201 for item in items)
    return respond(BatchOut(atomic=body.atomic, items=items), 201 if created else 200)


def _pairs(
    requests: Sequence[TransactionRequest], results: Sequence[TransactionResult]
) -> Iterable[tuple[int, tuple[TransactionRequest, TransactionResult]]]:
    return enumerate(zip(requests, results, strict=True))


def _item(
    index: int,
    ledger_request_: TransactionRequest,
    outcome: TransactionResult | TimebankError,
    community: Community,
) -> BatchItemOut:
    if isinstance(outcome, TimebankError):
        return BatchItemOut(
            index=index,
            status=int(status_for(outcome.code)),
            problem={
                "code": outcome.code,
                "title": outcome.title,
                "detail": outcome.detail,
                **outcome.context,
            },
        )
    status = 201 if outcome.outcome is Outcome.CREATED else 200
    return BatchItemOut(
        index=index, status=status, transaction=written_out(ledger_request_, outcome, community)
    )


async def _transaction_and_actor(
    request: web.Request, transaction_id: uuid.UUID, slug: str | None
) -> tuple[Transaction, Community, Actor]:
    """The transaction in the caller's community (named, or the caller's only one);
    one the caller cannot know of does not exist for them (404)."""
    store = request.app[LEDGER]
    principal = authenticate(request)
    if slug is not None:
        community_ids: list[uuid.UUID | str] = [slug]
    elif principal.client is not None:
        community_ids = [principal.client.community_id]
    else:
        assert principal.person_id is not None
        person = await request.app[IDENTITIES].person(principal.person_id)
        community_ids = [membership.community_id for membership in person.memberships]
    for key in community_ids:
        try:
            if isinstance(key, str):
                community, actor = await community_actor(request, key)
            else:
                community, actor = await actor_by_id(request, key)
            transaction = await store.transaction(community.id, transaction_id)
        except (UnknownTransaction, Forbidden):
            continue
        return transaction, community, actor
    raise NotFound(f"no transaction {transaction_id} that you can see")


async def _leg_owners(
    request: web.Request, transaction: Transaction, community: Community
) -> dict[uuid.UUID, uuid.UUID]:
    return await _owners(request, community, (p.account_id for p in transaction.postings))


@api.operation(
    "GET",
    "/v1/transactions/{id}",
    tag=TAG,
    summary="A transaction with its postings and state",
    query=TransactionQuery,
    responses={200: TransactionOut},
)
async def get_transaction(request: web.Request) -> web.Response:
    """Parties read their own transactions; treasurers and admins read all. Once
    posted, each posting shows the balance it left."""
    query = query_of(request, TransactionQuery)
    transaction, community, actor = await _transaction_and_actor(
        request, path_uuid(request), query.community
    )
    owners = await _leg_owners(request, transaction, community)
    actor.require_transaction_read(owners.values())
    return respond(stored_out(transaction, community))


@api.operation(
    "POST",
    "/v1/transactions/{id}/confirm",
    tag=TAG,
    summary="Confirm a pending transaction (the payer)",
    query=TransactionQuery,
    responses={200: TransactionOut},
    errors=("not_pending", "limit_exceeded", "account_frozen", "account_closed"),
)
async def confirm_transaction(request: web.Request) -> web.Response:
    """The payer agrees: the reservation becomes a posting. Confirming twice
    answers the same; an expired or voided one is not_pending."""
    query = query_of(request, TransactionQuery)
    transaction, community, actor = await _transaction_and_actor(
        request, path_uuid(request), query.community
    )
    owners = await _leg_owners(request, transaction, community)
    actor.require_transaction_write(
        owners[p.account_id] for p in transaction.postings if p.amount < 0
    )
    await request.app[LEDGER].confirm(community.id, transaction.id)
    return respond(
        stored_out(await request.app[LEDGER].transaction(community.id, transaction.id), community)
    )


@api.operation(
    "POST",
    "/v1/transactions/{id}/void",
    tag=TAG,
    summary="Void a pending transaction (either party)",
    query=TransactionQuery,
    responses={200: TransactionOut},
    errors=("not_pending",),
)
async def void_transaction(request: web.Request) -> web.Response:
    """Declines or withdraws a pending transaction and frees its reservation."""
    query = query_of(request, TransactionQuery)
    transaction, community, actor = await _transaction_and_actor(
        request, path_uuid(request), query.community
    )
    owners = await _leg_owners(request, transaction, community)
    actor.require_void(owners.values())
    await request.app[LEDGER].void(community.id, transaction.id)
    return respond(
        stored_out(await request.app[LEDGER].transaction(community.id, transaction.id), community)
    )


@api.operation(
    "POST",
    "/v1/transactions/{id}/reverse",
    tag=TAG,
    summary="Reverse a posted transaction (admins)",
    query=TransactionQuery,
    body=ReverseIn,
    body_required=False,
    responses={201: TransactionOut, 200: TransactionOut},
    errors=(
        "not_posted",
        "not_reversible",
        "already_reversed",
        "limit_exceeded",
        "transaction_id_conflict",
    ),
)
async def reverse_transaction(request: web.Request) -> web.Response:
    """Posts the opposite transaction (a correction; history is never rewritten).
    A transaction is reversed at most once; retrying answers the same reversal."""
    query = query_of(request, TransactionQuery)
    body = body_of(request, ReverseIn)
    transaction, community, actor = await _transaction_and_actor(
        request, path_uuid(request), query.community
    )
    actor.require_admin()
    store = request.app[LEDGER]
    result = await store.reverse(community.id, transaction.id, reversal_id=body.id, memo=body.memo)
    reversal = await store.transaction(community.id, result.id)
    status = 201 if result.outcome is Outcome.CREATED else 200
    return respond(stored_out(reversal, community), status)
