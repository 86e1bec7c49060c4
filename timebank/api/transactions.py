"""Transactions: post one or a batch, read one, confirm, void or reverse it."""

from __future__ import annotations

import base64
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence

from aiohttp import web

from timebank.api.authentication import authenticate
from timebank.api.context import (
    actor_by_id,
    community_actor,
    named_community_actor,
    owners_out,
    path_uuid,
)
from timebank.api.contract import body_of, query_of, respond
from timebank.api.log import checkpoint_out
from timebank.api.problems import status_for
from timebank.api.registry import api
from timebank.api.schemas import (
    BatchIn,
    BatchItemOut,
    BatchOut,
    PostingOut,
    PostingsTransactionIn,
    ReceiptEntryOut,
    ReceiptOut,
    ResolveIn,
    ReverseIn,
    SignatureOut,
    SignedAck,
    SignedIntent,
    TransactionBody,
    TransactionIn,
    TransactionOut,
    TransactionQuery,
    TransferIn,
)
from timebank.auth.access import Actor, Scope
from timebank.auth.errors import Forbidden
from timebank.errors import NotFound, TimebankError
from timebank.keys import CURRENCY, DIRECTORY, IDENTITIES, KEYS, LEDGER, LOG, POOLS, VERIFIER
from timebank.ledger.errors import (
    BatchTooLarge,
    DatabaseUnavailable,
    LedgerError,
    UnknownAccount,
    UnknownTransaction,
    ValidationError,
)
from timebank.ledger.models import (
    BATCH_SIZE_MAX,
    Community,
    Outcome,
    Posting,
    Transaction,
    TransactionKind,
    TransactionRequest,
    TransactionResult,
    TransactionState,
)
from timebank.ledger.store import LedgerStore, StoredSignature
from timebank.metrics import METRICS
from timebank.pools.models import (
    LEVIED_KINDS,
    levy_shares,
    rule_for,
    with_levy,
    with_overflow,
)
from timebank.signing import intents
from timebank.signing.errors import (
    IntentMismatch,
    KeyRevoked,
    SignatureMalformed,
    SignatureRefused,
    SignatureRequired,
)
from timebank.signing.service import decode, refused, verified_ack, verified_intent

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
    "signature_malformed",
    "signature_invalid",
    "intent_wrong_ledger",
    "intent_expired",
    "intent_mismatch",
    "key_unknown",
    "key_revoked",
    "key_not_allowed",
    "signature_required",
    "amount_too_small_for_levy",
)


async def _payer_signature(
    request: web.Request,
    body: TransferIn | PostingsTransactionIn,
    community: Community,
    actor: Actor,
    owners: dict[uuid.UUID, uuid.UUID],
) -> StoredSignature | None:
    """The transfer's signed intent, verified; None when unsigned and either the
    community does not require signatures of the payer's kind (members and
    organizations) or the transaction is pending: a proposal posts nothing until
    its payer confirms, and that confirmation carries the payer's signed intent."""
    keys = request.app[KEYS]
    signed = body.signed if isinstance(body, TransferIn) else None
    if signed is None:
        if (
            not body.pending
            and await keys.policy(community.id) == "required"
            and await _payer_is_a_member(request, community, body, owners)
        ):
            raise SignatureRequired("this community requires a signed intent from the payer")
        return None
    assert isinstance(body, TransferIn)
    payer_owner = owners.get(body.from_)
    if payer_owner is None:
        raise UnknownAccount(account_id=str(body.from_))
    origin = await request.app[LOG].origin(community.id, community.slug)
    return await verified_intent(
        keys,
        request.app[VERIFIER],
        community_id=community.id,
        origin=origin,
        signed=decode(signed.intent, "intent"),
        signature=decode(signed.signature, "signature"),
        tx_id=body.id,
        payer=body.from_,
        payee=body.to,
        unit=body.unit,
        amount=body.amount,
        memo=body.memo,
        signers=_signers_for(actor, payer_owner),
    )


async def _unsigned_allowed(
    request: web.Request,
    community: Community,
    item: TransferIn | PostingsTransactionIn,
    owners: dict[uuid.UUID, uuid.UUID],
    required: bool,
) -> None:
    """Batches carry no signatures: a signed transfer is posted on its own, and a
    community that requires signatures takes no unsigned member payment here
    (proposals excepted: their payer signs the confirmation)."""
    if isinstance(item, TransferIn) and item.signed is not None:
        raise SignatureMalformed("post a signed transfer on its own, not in a batch")
    if required and not item.pending and await _payer_is_a_member(request, community, item, owners):
        raise SignatureRequired("this community requires a signed intent from the payer")


def _signers_for(actor: Actor, owner_id: uuid.UUID) -> set[uuid.UUID]:
    """Whose keys may sign for this owner's account: the owner's own, and the
    actor's when the actor acts for the owner (an organization's agent)."""
    signers = {owner_id}
    if owner_id in actor.acting_for and actor.party_id is not None:
        signers.add(actor.party_id)
    return signers


async def _payer_is_a_member(
    request: web.Request,
    community: Community,
    body: TransferIn | PostingsTransactionIn,
    owners: dict[uuid.UUID, uuid.UUID],
) -> bool:
    debited = (
        [body.from_]
        if isinstance(body, TransferIn)
        else [posting.account for posting in body.postings if posting.amount < 0]
    )
    return await _any_member_pays(request, community, debited, owners)


async def _any_member_pays(
    request: web.Request,
    community: Community,
    debited: Iterable[uuid.UUID],
    owners: dict[uuid.UUID, uuid.UUID],
) -> bool:
    """Whether a member or an organization owns one of the debited accounts: the
    payers a community's signature policy speaks of (not pools, not the community)."""
    payer_owners = [owners[account] for account in debited if account in owners]
    kinds = await request.app[DIRECTORY].parties(community.id, payer_owners)
    return any(kind in ("member", "organization") for kind, _ in kinds.values())


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


async def with_levies(
    request: web.Request, body: TransactionIn, ledger_request_: TransactionRequest
) -> TransactionRequest:
    """A transfer (from, to) of a levied kind with what the community's pools take
    from it in the same transaction: the levy of the rule in force, and where the
    community chose overflow, what would take the payee above their maximum.
    Anything else as it is: balanced postings are the integrator's own."""
    if not isinstance(body, TransferIn) or ledger_request_.kind not in LEVIED_KINDS:
        return ledger_request_
    policies = await request.app[POOLS].policies(ledger_request_.community_id)
    rule = rule_for(policies.levies, body.unit, body.category) if policies.levies else None
    levied = with_levy(ledger_request_, rule) if rule is not None else ledger_request_
    overflow = policies.overflow_account(body.unit) if policies.overflows else None
    if overflow is None:
        return levied
    payee = await request.app[LEDGER].account(body.to)
    if payee.community_id != ledger_request_.community_id:
        return levied
    room = payee.max_balance - payee.balance - payee.pending_credits
    return with_overflow(levied, payee_room=room, overflow_account=overflow)


async def refuse_backed_accounts(
    request: web.Request, community_id: uuid.UUID, account_ids: Iterable[uuid.UUID]
) -> None:
    """A euro-backed currency enters and leaves circulation only through issuance
    and reconversion, which move its reserve: never through a plain transaction."""
    backed = await request.app[CURRENCY].backed_accounts(community_id)
    if backed and not backed.isdisjoint(account_ids):
        raise Forbidden(
            "this currency is backed by euros: issue it and reconvert it through"
            " /v1/communities/{slug}/currencies/{unit}"
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


async def account_owners(
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
    ledger_request_ = await with_levies(request, body, ledger_request(body, community))
    await refuse_backed_accounts(
        request, community.id, (posting.account_id for posting in ledger_request_.postings)
    )
    owners = await account_owners(
        request, community, (p.account_id for p in ledger_request_.postings)
    )
    check_write(actor, ledger_request_, owners)
    signature = await _payer_signature(request, body, community, actor, owners)
    store = request.app[LEDGER]
    if signature is not None:
        async with _forgetting_revoked_key(request, community, signature):
            result = await store.post_signed(ledger_request_, signature)
    else:
        result = await store.post(ledger_request_)
    if isinstance(body, TransferIn) and ledger_request_.pending and signature is None:
        # What the payer's confirmation must sign: the legs do not say it once a
        # pool took its levy. A retry writes nothing.
        await store.record_proposal_amount(community.id, ledger_request_.id, body.amount)
    status = 201 if result.outcome is Outcome.CREATED else 200
    if result.outcome is Outcome.CREATED:
        request.app[METRICS].transactions.labels(
            ledger_request_.kind.value, result.state.value
        ).inc()
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
    requests = [
        await with_levies(request, item, ledger_request(item, community))
        for item in body.transactions
    ]
    await refuse_backed_accounts(
        request, community.id, (p.account_id for r in requests for p in r.postings)
    )
    owners = await account_owners(
        request, community, (p.account_id for r in requests for p in r.postings)
    )
    store = request.app[LEDGER]
    required = await request.app[KEYS].policy(community.id) == "required"
    pairs = list(zip(body.transactions, requests, strict=True))
    if body.atomic:
        for index, (item, ledger_request_) in enumerate(pairs):
            try:
                check_write(actor, ledger_request_, owners)
                await _unsigned_allowed(request, community, item, owners, required)
            except (Forbidden, SignatureRefused) as error:
                error.context["index"] = index
                raise
        results = await store.post_atomic(requests)
        items = [
            _item(index, r, result, community) for index, (r, result) in _pairs(requests, results)
        ]
    else:
        allowed: list[int] = []
        refused: dict[int, TimebankError] = {}
        for index, (item, ledger_request_) in enumerate(pairs):
            try:
                check_write(actor, ledger_request_, owners)
                await _unsigned_allowed(request, community, item, owners, required)
                allowed.append(index)
            except (Forbidden, SignatureRefused) as error:
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
    return await account_owners(request, community, (p.account_id for p in transaction.postings))


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
    return respond(await _stored_with_signatures(request, community, transaction.id, owners))


SIGNATURE_ERRORS_OF_RESOLUTIONS = (
    "signature_malformed",
    "signature_invalid",
    "intent_wrong_ledger",
    "intent_mismatch",
    "key_unknown",
    "key_revoked",
    "key_not_allowed",
    "signature_required",
)


@api.operation(
    "POST",
    "/v1/transactions/{id}/confirm",
    tag=TAG,
    summary="Confirm a pending transaction",
    query=TransactionQuery,
    body=ResolveIn,
    body_required=False,
    responses={200: TransactionOut},
    errors=(
        "not_pending",
        "limit_exceeded",
        "account_frozen",
        "account_closed",
        "intent_expired",
        *SIGNATURE_ERRORS_OF_RESOLUTIONS,
    ),
)
async def confirm_transaction(request: web.Request) -> web.Response:
    """The reservation becomes a posting. A transaction the payee proposed is
    confirmed by the payer, with the payer's signed transfer intent
    (`signed.intent`, as a signed post's) when given or when the community requires
    signatures; one the payer signed is accepted by the payee, with a signed
    acknowledgement (`signed.ack`, decision accept) when given or when the
    community requires signatures. Confirming twice answers the same; an expired
    or voided one is not_pending."""
    return await _resolve(request, intents.AckDecision.ACCEPT)


@api.operation(
    "POST",
    "/v1/transactions/{id}/void",
    tag=TAG,
    summary="Void a pending transaction (either party)",
    query=TransactionQuery,
    body=ResolveIn,
    body_required=False,
    responses={200: TransactionOut},
    errors=("not_pending", *SIGNATURE_ERRORS_OF_RESOLUTIONS),
)
async def void_transaction(request: web.Request) -> web.Response:
    """Declines or withdraws a pending transaction and frees its reservation; the
    payee of a signed one may decline with a signed acknowledgement (decision
    decline)."""
    return await _resolve(request, intents.AckDecision.DECLINE)


async def _resolve(request: web.Request, decision: intents.AckDecision) -> web.Response:
    query = query_of(request, TransactionQuery)
    body = body_of(request, ResolveIn)
    transaction, community, actor = await _transaction_and_actor(
        request, path_uuid(request), query.community
    )
    owners = await _leg_owners(request, transaction, community)
    debited = [owners[p.account_id] for p in transaction.postings if p.amount < 0]
    credited = [owners[p.account_id] for p in transaction.postings if p.amount > 0]
    store = request.app[LEDGER]
    intent = next(
        (s for s in await store.signatures(community.id, transaction.id) if s.purpose == "intent"),
        None,
    )
    accepting = decision is intents.AckDecision.ACCEPT
    payee_acts = intent is not None and any(owner in actor.acting_for for owner in credited)
    if accepting and not payee_acts:
        actor.require_transaction_write(debited)
    elif not accepting:
        actor.require_void(owners.values())
    else:
        actor.require_scope(Scope.TRANSACTIONS_WRITE)
    payer_confirms = accepting and not payee_acts
    if payer_confirms:
        signature = await _payer_confirmation(
            request, body, community, actor, transaction, intent, owners
        )
    else:
        signature = await _payee_ack(
            request, body, community, actor, transaction, intent, credited, decision, payee_acts
        )
    if signature is None:
        await (store.confirm if accepting else store.void)(community.id, transaction.id)
    else:
        async with _forgetting_revoked_key(request, community, signature):
            if accepting:
                await store.confirm_signed(community.id, transaction.id, signature)
            else:
                await store.void_signed(community.id, transaction.id, signature)
    return respond(await _stored_with_signatures(request, community, transaction.id, owners))


@contextlib.asynccontextmanager
async def _forgetting_revoked_key(
    request: web.Request, community: Community, signature: StoredSignature
) -> AsyncIterator[None]:
    """A signed write the database refused for a revoked key (revoked through
    another process while this one kept it): the key is not kept any longer."""
    try:
        yield
    except KeyRevoked:
        request.app[KEYS].forget(community.id, signature.key_id)
        raise


async def _payee_ack(
    request: web.Request,
    body: ResolveIn,
    community: Community,
    actor: Actor,
    transaction: Transaction,
    intent: StoredSignature | None,
    credited: list[uuid.UUID],
    decision: intents.AckDecision,
    payee_acts: bool,
) -> StoredSignature | None:
    keys = request.app[KEYS]
    if isinstance(body.signed, SignedIntent):
        raise SignatureMalformed(
            "a signed intent confirms what the payee proposed, and only the payer signs it"
        )
    if body.signed is None:
        if (
            payee_acts
            and decision is intents.AckDecision.ACCEPT
            and await keys.policy(community.id) == "required"
        ):
            raise SignatureRequired("this community requires the payee's signed acknowledgement")
        return None
    if intent is None or not payee_acts:
        raise SignatureMalformed(
            "a signed acknowledgement is the payee's answer to a payer's signed intent"
        )
    signers: set[uuid.UUID] = set()
    for owner in credited:
        signers |= _signers_for(actor, owner)
    return await verified_ack(
        keys,
        request.app[VERIFIER],
        community_id=community.id,
        origin=await request.app[LOG].origin(community.id, community.slug),
        signed=decode(body.signed.ack, "ack"),
        signature=decode(body.signed.signature, "signature"),
        tx_id=transaction.id,
        intent=intent.signed,
        decision=decision,
        signers=signers,
    )


async def _payer_confirmation(
    request: web.Request,
    body: ResolveIn,
    community: Community,
    actor: Actor,
    transaction: Transaction,
    intent: StoredSignature | None,
    owners: dict[uuid.UUID, uuid.UUID],
) -> StoredSignature | None:
    """The payer's signed intent confirming what the payee proposed, verified as a
    signed post's; None when unsigned and either the proposal already carries the
    payer's intent or the community does not require signatures of the payer."""
    keys = request.app[KEYS]
    if isinstance(body.signed, SignedAck):
        raise SignatureMalformed("an acknowledgement is the payee's answer, not the payer's")
    if body.signed is None:
        if (
            intent is None
            and await keys.policy(community.id) == "required"
            and await _any_member_pays(
                request,
                community,
                (p.account_id for p in transaction.postings if p.amount < 0),
                owners,
            )
        ):
            raise SignatureRequired("this community requires the payer's signed intent")
        return None
    signed = decode(body.signed.intent, "intent")
    if intent is not None:
        if intent.signed == signed:
            # A retry of this confirmation: it answers the same, writing nothing.
            return None
        raise SignatureMalformed("this transaction already carries its payer's signed intent")
    payer, payee, amount = await _signed_transfer_of(request, transaction, signed)
    origin = await request.app[LOG].origin(community.id, community.slug)
    return await verified_intent(
        keys,
        request.app[VERIFIER],
        community_id=community.id,
        origin=origin,
        signed=signed,
        signature=decode(body.signed.signature, "signature"),
        tx_id=transaction.id,
        payer=payer,
        payee=payee,
        unit=(await request.app[LEDGER].account(payer)).unit_code,
        amount=amount,
        memo=transaction.memo,
        signers=_signers_for(actor, owners[payer]),
    )


async def _signed_transfer_of(
    request: web.Request, transaction: Transaction, signed: bytes
) -> tuple[uuid.UUID, uuid.UUID, int]:
    """(payer, payee, amount) that a payer's intent must say of this pending
    transaction: a transfer's two legs, or the first two of a transfer with what a
    pool takes from it. Of the latter the postings alone do not tell the amount the
    payer meant (how a levy was shared): the signed amount must be the one the
    proposal was made for (kept with it since migration 0024), and the levy in
    force on it, or an overflow to the third account, must give exactly these
    postings: what the replay accepts, no more."""
    postings = transaction.postings
    if len(postings) not in (2, 3) or postings[0].amount >= 0 or postings[1].amount <= 0:
        raise SignatureMalformed("only a transfer from one account to another can be signed")
    payer, payee = postings[0].account_id, postings[1].account_id
    if len(postings) == 2:
        return payer, payee, postings[1].amount
    said = refused(lambda: intents.parse_transfer_intent(signed))
    # The amount the proposal was made for, when it was kept: no other, even one
    # that the levy or an overflow would also turn into these legs.
    proposed = await request.app[LEDGER].proposal_amount(transaction.community_id, transaction.id)
    if proposed is not None and said.amount != proposed:
        raise IntentMismatch("the signed amount differs from the proposal's", field="amount")
    if not await _pool_leg_fits(request, transaction, said.unit, said.amount):
        raise IntentMismatch("the signed amount differs from the transaction's", field="amount")
    return payer, payee, said.amount


async def _pool_leg_fits(
    request: web.Request, transaction: Transaction, unit: str, amount: int
) -> bool:
    """Whether a transfer of `amount` gives the transaction's three legs: with the
    levy of the rule in force, or with an overflow (the payer pays the amount, the
    pool's account takes what the payee could not)."""
    payer_leg, payee_leg, third = (posting.amount for posting in transaction.postings)
    policies = await request.app[POOLS].policies(transaction.community_id)
    rule = rule_for(policies.levies, unit, transaction.category) if policies.levies else None
    if rule is not None:
        payer_share, payee_share = levy_shares(rule, amount)
        levied = (-(amount + payer_share), amount - payee_share, payer_share + payee_share)
        if levied == (payer_leg, payee_leg, third):
            return True
    overflow = policies.overflow_account(unit) if policies.overflows else None
    return overflow == transaction.postings[2].account_id and amount == -payer_leg


async def _intent_amount(store: LedgerStore, transaction: Transaction) -> int | None:
    """The amount a payer's signed intent must name to confirm this pending
    transaction: a transfer's payee leg, or the amount it was proposed for when a
    pool takes a levy from it; None when that is not known (not a transfer)."""
    postings = transaction.postings
    if len(postings) == 2 and postings[0].amount < 0 < postings[1].amount:
        return postings[1].amount
    if len(postings) == 3:
        return await store.proposal_amount(transaction.community_id, transaction.id)
    return None


async def _stored_with_signatures(
    request: web.Request,
    community: Community,
    transaction_id: uuid.UUID,
    owners: dict[uuid.UUID, uuid.UUID],
) -> TransactionOut:
    """The transaction as its parties read it: who holds each account (so that a
    member sees the other person's name, whether or not the directory's first page
    showed it), the amount to sign for a pending one, its signatures."""
    store = request.app[LEDGER]
    transaction = await store.transaction(community.id, transaction_id)
    out = stored_out(transaction, community)
    shown = await owners_out(request, community.id, owners.values())
    for posting in out.postings:
        posting.owner = shown[owners[posting.account]]
    if transaction.state is TransactionState.PENDING:
        out.intent_amount = await _intent_amount(store, transaction)
    out.signatures = [
        SignatureOut(
            purpose=signature.purpose,
            key_id=signature.key_id,
            signed=intents.b64url_encode(signature.signed),
            signature=intents.b64url_encode(signature.signature),
        )
        for signature in await store.signatures(community.id, transaction_id)
    ]
    return out


@api.operation(
    "GET",
    "/v1/transactions/{id}/receipt",
    tag=TAG,
    summary="A transaction's receipt from the log",
    query=TransactionQuery,
    responses={200: ReceiptOut},
)
async def transaction_receipt(request: web.Request) -> web.Response:
    """The transaction's log entries (as written, and as resolved), a signed
    checkpoint that includes them, and each one's inclusion proof: what a member
    keeps to show, later and to anyone, that the log holds their exchange."""
    query = query_of(request, TransactionQuery)
    transaction, community, actor = await _transaction_and_actor(
        request, path_uuid(request), query.community
    )
    owners = await _leg_owners(request, transaction, community)
    actor.require_transaction_read(owners.values())
    log = request.app[LOG]
    leaves = await log.transaction_leaves(community.id, transaction.id)
    assert leaves, "every transaction is logged"
    checkpoint = await log.checkpoint_covering(community.id, community.slug, leaves[-1][0] + 1)
    if checkpoint is None:
        raise DatabaseUnavailable("the checkpoint is being signed; retry in a moment")
    entries = [
        ReceiptEntryOut(
            leaf_index=index,
            entry=entry.decode(),
            inclusion_proof=[
                base64.b64encode(node).decode()
                for node in await log.inclusion_proof(community.id, index, checkpoint.tree_size)
            ],
        )
        for index, entry in leaves
    ]
    return respond(
        ReceiptOut(
            transaction_id=transaction.id, checkpoint=checkpoint_out(checkpoint), entries=entries
        )
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
    await refuse_backed_accounts(
        request, community.id, (posting.account_id for posting in transaction.postings)
    )
    store = request.app[LEDGER]
    result = await store.reverse(community.id, transaction.id, reversal_id=body.id, memo=body.memo)
    reversal = await store.transaction(community.id, result.id)
    status = 201 if result.outcome is Outcome.CREATED else 200
    return respond(stored_out(reversal, community), status)
