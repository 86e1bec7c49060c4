"""Property-based: random sequences of operations give the same outcomes, errors and
balances on the PostgreSQL ledger as on a simple in-memory model."""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.ledger_model import ModelAccount, ModelError, ModelLedger
from timebank.ledger.errors import LedgerError
from timebank.ledger.models import (
    AccountStatus,
    PartyKind,
    Posting,
    TransactionKind,
    TransactionRequest,
    UnitKind,
    default_reversal_id,
)
from timebank.ledger.store import LedgerStore

EXAMPLES = int(os.environ.get("TIMEBANK_PROPERTY_EXAMPLES", "40"))
ACCOUNT_COUNT = 4
MIN_BALANCE = -300
MAX_BALANCE = 300

account_index = st.integers(0, ACCOUNT_COUNT - 1)
amount = st.integers(1, 250)
transfer_op = st.tuples(st.just("transfer"), account_index, account_index, amount, st.booleans())
operation = st.one_of(
    transfer_op,
    transfer_op,
    st.tuples(st.just("confirm"), st.integers(0, 50)),
    st.tuples(st.just("void"), st.integers(0, 50)),
    # Several reversal attempts of one transaction, each with its default id or a new one.
    st.tuples(
        st.just("reverse"), st.integers(0, 50), st.lists(st.booleans(), min_size=1, max_size=3)
    ),
    st.tuples(st.just("retry"), st.integers(0, 50), st.booleans()),
    st.tuples(st.just("batch"), st.lists(transfer_op, min_size=1, max_size=5)),
    st.tuples(st.just("each"), st.lists(transfer_op, min_size=1, max_size=6)),
    st.tuples(st.just("freeze"), account_index, st.booleans()),
    st.tuples(st.just("levy"), account_index, account_index, account_index, amount),
)


async def run_both(database: Awaitable[str], model: Callable[[], str]) -> tuple[str, str]:
    """The outcome (or error code) of the same operation on both ledgers."""
    try:
        expected = model()
    except ModelError as error:
        expected = error.code
    try:
        actual = await database
    except LedgerError as error:
        actual = error.code
    return expected, actual


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(operations=st.lists(operation, min_size=1, max_size=30))
async def test_random_operations_match_the_model(
    store: LedgerStore, operations: list[tuple[Any, ...]]
) -> None:
    """Every outcome, error code, balance and reservation agrees with the model."""
    community = await store.create_community(f"p-{secrets.token_hex(6)}", "Property test")
    unit = await store.create_unit(
        community.id,
        code="H",
        name="Hours",
        kind=UnitKind.TIME,
        decimals=0,
        default_min_balance=MIN_BALANCE,
        default_max_balance=MAX_BALANCE,
    )
    model = ModelLedger()
    account_ids = []
    for index in range(ACCOUNT_COUNT):
        party = await store.create_party(community.id, PartyKind.MEMBER, f"member {index}")
        account = await store.open_account(community.id, owner_id=party.id, unit_id=unit.id)
        account_ids.append(account.id)
        model.accounts[account.id] = ModelAccount(MIN_BALANCE, MAX_BALANCE)
    requests: list[TransactionRequest] = []

    def make_transfer(op: tuple[Any, ...]) -> TransactionRequest | None:
        _, payer, payee, value, pending = op
        if payer == payee:
            return None
        return TransactionRequest.transfer(
            id=uuid.uuid4(),
            community_id=community.id,
            unit_code="H",
            from_account=account_ids[payer],
            to_account=account_ids[payee],
            amount=value,
            pending=pending,
        )

    def as_item(
        request: TransactionRequest,
    ) -> tuple[uuid.UUID, tuple[tuple[uuid.UUID, int], ...], bool, object]:
        legs = tuple((p.account_id, p.amount) for p in request.postings)
        return request.id, legs, request.pending, request.fingerprint()

    def model_post(batch: list[TransactionRequest]) -> str:
        return ",".join(model.post([as_item(request) for request in batch]))

    def model_post_each(batch: list[TransactionRequest]) -> str:
        outcomes = []
        for request in batch:
            try:
                outcomes.append(model_post([request]))
            except ModelError as error:
                outcomes.append(error.code)
        return ",".join(outcomes)

    def pick(index: int) -> TransactionRequest | None:
        return requests[index % len(requests)] if requests else None

    for op in operations:
        kind = op[0]
        if kind == "transfer":
            request = make_transfer(op)
            if request is None:
                continue
            requests.append(request)
            expected, actual = await run_both(
                _outcome(store.post(request)), partial(model_post, [request])
            )
        elif kind == "batch":
            batch = [r for r in map(make_transfer, op[1]) if r is not None]
            if not batch:
                continue
            requests.extend(batch)
            expected, actual = await run_both(
                _outcomes(store.post_atomic(batch)), partial(model_post, batch)
            )
        elif kind == "each":
            batch = [r for r in map(make_transfer, op[1]) if r is not None]
            if not batch:
                continue
            requests.extend(batch)
            expected, actual = await run_both(
                _each_outcomes(store.post_independent(batch)), partial(model_post_each, batch)
            )
        elif kind == "levy":
            _, payer, payee, pool_index, value = op
            if len({payer, payee, pool_index}) < 3:
                continue
            levy = max(1, value // 10)
            request = TransactionRequest(
                id=uuid.uuid4(),
                community_id=community.id,
                kind=TransactionKind.EXCHANGE,
                postings=(
                    Posting(account_ids[payer], -(value + levy)),
                    Posting(account_ids[payee], value),
                    Posting(account_ids[pool_index], levy),
                ),
                unit_code="H",
            )
            requests.append(request)
            expected, actual = await run_both(
                _outcome(store.post(request)), partial(model_post, [request])
            )
        elif kind in ("confirm", "void"):
            target = pick(op[1])
            if target is None:
                continue
            database_call = store.confirm if kind == "confirm" else store.void
            model_call = model.confirm if kind == "confirm" else model.void
            expected, actual = await run_both(
                _outcome(database_call(community.id, target.id)), partial(model_call, target.id)
            )
        elif kind == "reverse":
            target = pick(op[1])
            if target is None:
                continue
            for use_default_id in op[2]:
                reversal_id = default_reversal_id(target.id) if use_default_id else uuid.uuid4()
                expected, actual = await run_both(
                    _outcome(store.reverse(community.id, target.id, reversal_id=reversal_id)),
                    partial(model.reverse, target.id, reversal_id, ("reversal", target.id)),
                )
                assert expected == actual, f"{op}: model says {expected}, ledger says {actual}"
        elif kind == "retry":
            target = pick(op[1])
            if target is None:
                continue
            if op[2]:
                replay = target
            else:  # same id, other content: a conflict unless the id was never stored
                replay = TransactionRequest(
                    id=target.id,
                    community_id=target.community_id,
                    kind=target.kind,
                    postings=target.postings,
                    memo="changed",
                    unit_code=target.unit_code,
                    pending=target.pending,
                )
            expected, actual = await run_both(
                _outcome(store.post(replay)), partial(model_post, [replay])
            )
        else:
            _, index, frozen = op
            status = AccountStatus.FROZEN if frozen else AccountStatus.ACTIVE
            await store.set_status(community.id, account_ids[index], status)
            model.accounts[account_ids[index]].frozen = frozen
            continue
        assert expected == actual, f"{op}: model says {expected}, ledger says {actual}"
        for account_id in account_ids:
            stored = await store.account(account_id)
            reference = model.accounts[account_id]
            assert (stored.balance, (stored.pending_debits, stored.pending_credits)) == (
                reference.balance,
                model.pending(account_id),
            ), f"account {account_id} after {op}"


async def _outcome(call: Awaitable[Any]) -> str:
    return str((await call).outcome.value)


async def _outcomes(call: Awaitable[list[Any]]) -> str:
    return ",".join(result.outcome.value for result in await call)


async def _each_outcomes(call: Awaitable[list[Any]]) -> str:
    """Each item's outcome, or the code of its error."""
    return ",".join(
        result.code if isinstance(result, LedgerError) else result.outcome.value
        for result in await call
    )
