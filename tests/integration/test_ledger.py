"""The ledger against the real PostgreSQL: postings, limits, idempotency, states."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

import asyncpg
import pytest

from tests.conftest import TIME_MAX_BALANCE, TIME_MIN_BALANCE, CommunityFixture
from tests.integration.helpers import postings, transfer
from timebank.ledger.errors import (
    AccountClosed,
    AccountFrozen,
    AccountNotEmpty,
    AlreadyReversed,
    LimitExceeded,
    LimitsConflictWithBalance,
    NotPending,
    NotPosted,
    NotReversible,
    TransactionIdConflict,
    UnitMismatch,
    UnknownAccount,
    UnknownTransaction,
)
from timebank.ledger.invariants import check_invariants
from timebank.ledger.models import (
    Account,
    AccountStatus,
    Outcome,
    StatementLine,
    TransactionKind,
    TransactionRequest,
    TransactionState,
    default_reversal_id,
)
from timebank.ledger.store import LedgerStore


async def balances(store: LedgerStore, *accounts: Account) -> list[int]:
    return [(await store.account(account.id)).balance for account in accounts]


async def test_transfer_moves_the_amount_between_accounts(
    store: LedgerStore, community: CommunityFixture
) -> None:
    """A posted transfer debits the payer, credits the payee, and records both postings."""
    alice = await community.member_account("Alice")
    bob = await community.member_account("Bob")
    request = transfer(community.id, alice, bob, 90, memo="garden")
    result = await store.post(request)
    assert (result.outcome, result.state) == (Outcome.CREATED, TransactionState.POSTED)
    assert await balances(store, alice, bob) == [-90, 90]
    stored = await store.transaction(community.id, request.id)
    assert stored.memo == "garden"
    assert {(p.account_id, p.amount, p.balance_after) for p in stored.postings} == {
        (alice.id, -90, -90),
        (bob.id, 90, 90),
    }


async def test_retry_with_same_id_and_content_changes_nothing(
    store: LedgerStore, community: CommunityFixture
) -> None:
    """Idempotency: the same id and content answers 'exists' with the original result."""
    alice = await community.member_account()
    bob = await community.member_account()
    request = transfer(community.id, alice, bob, 60)
    first = await store.post(request)
    second = await store.post(request)
    assert second.outcome is Outcome.EXISTS
    assert (second.state, second.created_at, second.resolved_at) == (
        first.state,
        first.created_at,
        first.resolved_at,
    )
    assert await balances(store, alice, bob) == [-60, 60]


async def test_concurrent_retries_of_one_id_post_it_once(
    store: LedgerStore, community: CommunityFixture
) -> None:
    """Ten simultaneous submissions of one transaction: one 'created', nine 'exists'."""
    alice = await community.member_account()
    bob = await community.member_account()
    request = transfer(community.id, alice, bob, 30)
    results = await asyncio.gather(*(store.post(request) for _ in range(10)))
    assert sorted(result.outcome for result in results) == [Outcome.CREATED] + [Outcome.EXISTS] * 9
    assert await balances(store, alice, bob) == [-30, 30]


async def test_same_id_with_other_content_is_a_conflict(
    store: LedgerStore, community: CommunityFixture
) -> None:
    """Reusing an id for different content is transaction_id_conflict; nothing changes."""
    alice = await community.member_account()
    bob = await community.member_account()
    request = transfer(community.id, alice, bob, 60)
    await store.post(request)
    with pytest.raises(TransactionIdConflict) as raised:
        await store.post(transfer(community.id, alice, bob, 61, transaction_id=request.id))
    assert raised.value.context["transaction_id"] == str(request.id)
    assert await balances(store, alice, bob) == [-60, 60]


async def test_debit_beyond_the_minimum_is_refused_with_details(
    store: LedgerStore, community: CommunityFixture
) -> None:
    """limit_exceeded names the account, the limit, what was available and by how much."""
    alice = await community.member_account()
    bob = await community.member_account()
    await store.post(transfer(community.id, alice, bob, 500))
    with pytest.raises(LimitExceeded) as raised:
        await store.post(transfer(community.id, alice, bob, 150))
    assert raised.value.context | {"transaction_id": None} == {
        "index": 0,
        "transaction_id": None,
        "account_id": str(alice.id),
        "unit": "H",
        "limit": "min_balance",
        "limit_value": TIME_MIN_BALANCE,
        "available": -500,
        "amount": -150,
        "exceeded_by": 50,
    }
    assert await balances(store, alice, bob) == [-500, 500]
    await store.post(transfer(community.id, alice, bob, 100))
    assert await balances(store, alice, bob) == [TIME_MIN_BALANCE, 600]


async def test_credit_beyond_the_maximum_is_refused(
    store: LedgerStore, community: CommunityFixture
) -> None:
    """A credit that would take the payee above max_balance is refused."""
    alice = await community.member_account(min_balance=-10_000)
    bob = await community.member_account(max_balance=100)
    with pytest.raises(LimitExceeded) as raised:
        await store.post(transfer(community.id, alice, bob, 101))
    assert raised.value.context["limit"] == "max_balance"
    assert raised.value.context["exceeded_by"] == 1
    assert raised.value.context["account_id"] == str(bob.id)
    assert await balances(store, alice, bob) == [0, 0]


async def test_pending_amounts_count_against_limits(
    store: LedgerStore, community: CommunityFixture
) -> None:
    """A pending debit reserves: available = posted - pending debits >= min_balance."""
    alice = await community.member_account()
    bob = await community.member_account()
    await store.post(transfer(community.id, alice, bob, 400, pending=True))
    account = await store.account(alice.id)
    assert (account.balance, account.pending_debits, account.available) == (0, 400, -400)
    assert (await store.account(bob.id)).pending_credits == 400
    with pytest.raises(LimitExceeded):
        await store.post(transfer(community.id, alice, bob, 201))
    with pytest.raises(LimitExceeded):
        await store.post(transfer(community.id, alice, bob, 201, pending=True))
    await store.post(transfer(community.id, alice, bob, 200))


async def test_pending_credits_count_against_the_maximum(
    store: LedgerStore, community: CommunityFixture
) -> None:
    """balance + pending credits <= max_balance, so an incoming reservation fills room."""
    alice = await community.member_account(min_balance=-10_000)
    bob = await community.member_account(max_balance=100)
    await store.post(transfer(community.id, alice, bob, 80, pending=True))
    with pytest.raises(LimitExceeded):
        await store.post(transfer(community.id, alice, bob, 21))
    await store.post(transfer(community.id, alice, bob, 20))


async def test_unknown_account_is_named(store: LedgerStore, community: CommunityFixture) -> None:
    """An account id that does not exist is unknown_account, naming the id."""
    alice = await community.member_account()
    ghost_id = uuid.uuid4()
    request = TransactionRequest.transfer(
        id=uuid.uuid4(),
        community_id=community.id,
        unit_code="H",
        from_account=alice.id,
        to_account=ghost_id,
        amount=10,
    )
    with pytest.raises(UnknownAccount) as raised:
        await store.post(request)
    assert raised.value.context["account_id"] == str(ghost_id)


async def test_accounts_of_another_community_are_unknown(
    store: LedgerStore, make_community: Callable[[], Awaitable[CommunityFixture]]
) -> None:
    """Nobody crosses communities: another community's account is unknown_account."""
    here = await make_community()
    elsewhere = await make_community()
    alice = await here.member_account()
    stranger = await elsewhere.member_account()
    with pytest.raises(UnknownAccount) as raised:
        await store.post(transfer(here.id, alice, stranger, 10))
    assert raised.value.context["account_id"] == str(stranger.id)
    assert await balances(store, alice, stranger) == [0, 0]


async def test_accounts_must_be_in_the_stated_unit(
    store: LedgerStore, community: CommunityFixture
) -> None:
    """A transfer in hours between an hour and a currency account is unit_mismatch."""
    alice = await community.member_account()
    bob_currency = await community.member_account(currency=True)
    with pytest.raises(UnitMismatch) as raised:
        await store.post(transfer(community.id, alice, bob_currency, 10))
    assert raised.value.context["account_id"] == str(bob_currency.id)
    assert raised.value.context["expected_unit"] == "H"


async def test_postings_must_balance_in_each_unit(
    store: LedgerStore, community: CommunityFixture
) -> None:
    """Postings summing to zero overall but not per unit are unit_mismatch."""
    alice = await community.member_account()
    bob = await community.member_account(currency=True, min_balance=-1_000)
    with pytest.raises(UnitMismatch) as raised:
        await store.post(postings(community.id, (alice, -10), (bob, 10)))
    assert raised.value.context["unbalanced_by"] in (-10, 10)


async def test_multi_unit_transaction_balanced_per_unit_is_posted(
    store: LedgerStore, community: CommunityFixture
) -> None:
    """Four postings, two per unit, each unit balancing: one atomic transaction."""
    alice_h = await community.member_account()
    bob_h = await community.member_account()
    alice_g = await community.member_account(currency=True, min_balance=-1_000)
    bob_g = await community.member_account(currency=True)
    await store.post(
        postings(community.id, (alice_h, -60), (bob_h, 60), (alice_g, -500), (bob_g, 500))
    )
    assert await balances(store, alice_h, bob_h, alice_g, bob_g) == [-60, 60, -500, 500]


async def test_three_posting_transaction_is_all_or_nothing(
    store: LedgerStore, community: CommunityFixture
) -> None:
    """Payment plus levy: if the levy's pool would overflow, the payment is not made."""
    alice = await community.member_account()
    bob = await community.member_account()
    pool = await community.member_account("pool", max_balance=4)
    with pytest.raises(LimitExceeded):
        await store.post(postings(community.id, (alice, -100), (bob, 95), (pool, 5)))
    assert await balances(store, alice, bob, pool) == [0, 0, 0]
    await store.post(postings(community.id, (alice, -100), (bob, 96), (pool, 4)))
    assert await balances(store, alice, bob, pool) == [-100, 96, 4]


async def test_frozen_and_closed_accounts_refuse_movements(
    store: LedgerStore, community: CommunityFixture
) -> None:
    """A frozen account refuses until unfrozen; a closed one for good."""
    alice = await community.member_account()
    bob = await community.member_account()
    await store.set_status(community.id, bob.id, AccountStatus.FROZEN)
    with pytest.raises(AccountFrozen):
        await store.post(transfer(community.id, alice, bob, 10))
    await store.set_status(community.id, bob.id, AccountStatus.ACTIVE)
    await store.post(transfer(community.id, alice, bob, 10))
    with pytest.raises(AccountNotEmpty):
        await store.set_status(community.id, bob.id, AccountStatus.CLOSED)
    carol = await community.member_account()
    await store.set_status(community.id, carol.id, AccountStatus.CLOSED)
    with pytest.raises(AccountClosed):
        await store.post(transfer(community.id, alice, carol, 10))
    with pytest.raises(AccountClosed):
        await store.set_status(community.id, carol.id, AccountStatus.ACTIVE)


async def test_confirming_a_pending_transaction_posts_it(
    store: LedgerStore, community: CommunityFixture
) -> None:
    """Confirm turns the reservation into postings; confirming again answers 'exists'."""
    alice = await community.member_account()
    bob = await community.member_account()
    request = transfer(community.id, alice, bob, 120, pending=True)
    created = await store.post(request)
    assert created.state is TransactionState.PENDING
    assert created.expires_at is not None
    assert await balances(store, alice, bob) == [0, 0]
    confirmed = await store.confirm(community.id, request.id)
    assert (confirmed.outcome, confirmed.state) == (Outcome.CREATED, TransactionState.POSTED)
    account = await store.account(alice.id)
    assert (account.balance, account.pending_debits) == (-120, 0)
    again = await store.confirm(community.id, request.id)
    assert (again.outcome, again.resolved_at) == (Outcome.EXISTS, confirmed.resolved_at)
    with pytest.raises(NotPending) as raised:
        await store.void(community.id, request.id)
    assert raised.value.context["state"] == "posted"
    stored = await store.transaction(community.id, request.id)
    assert {p.balance_after for p in stored.postings} == {-120, 120}


async def test_voiding_releases_the_reservation(
    store: LedgerStore, community: CommunityFixture
) -> None:
    """Void frees the held amount; a voided transaction cannot be confirmed."""
    alice = await community.member_account()
    bob = await community.member_account()
    request = transfer(community.id, alice, bob, 600, pending=True)
    await store.post(request)
    with pytest.raises(LimitExceeded):
        await store.post(transfer(community.id, alice, bob, 1))
    voided = await store.void(community.id, request.id)
    assert voided.state is TransactionState.VOIDED
    assert (await store.void(community.id, request.id)).outcome is Outcome.EXISTS
    with pytest.raises(NotPending):
        await store.confirm(community.id, request.id)
    await store.post(transfer(community.id, alice, bob, 600))
    stored = await store.transaction(community.id, request.id)
    assert stored.state is TransactionState.VOIDED
    assert [p.amount for p in stored.postings] == [-600, 600]


async def test_expired_reservation_stops_counting_even_without_the_sweeper(
    store: LedgerStore, community: CommunityFixture
) -> None:
    """Once past its expiry a hold no longer counts, whether or not anything swept it
    (as when the service was down), and the transaction can no longer be confirmed."""
    alice = await community.member_account()
    bob = await community.member_account()
    request = transfer(community.id, alice, bob, 600, pending=True, expires_in_s=1)
    await store.post(request)
    with pytest.raises(LimitExceeded):
        await store.post(transfer(community.id, alice, bob, 600))
    await asyncio.sleep(1.1)
    assert (await store.account(alice.id)).pending_debits == 0
    assert (await store.transaction(community.id, request.id)).state is TransactionState.EXPIRED
    await store.post(transfer(community.id, alice, bob, 600))
    with pytest.raises(NotPending) as raised:
        await store.confirm(community.id, request.id)
    assert raised.value.context["state"] == "expired"
    assert await balances(store, alice, bob) == [-600, 600]


async def test_sweeper_expires_overdue_pending_transactions(
    store: LedgerStore, community: CommunityFixture, pool: asyncpg.Pool
) -> None:
    """expire_overdue marks overdue pending transactions expired and deletes their holds."""
    alice = await community.member_account()
    bob = await community.member_account()
    overdue = transfer(community.id, alice, bob, 50, pending=True, expires_in_s=1)
    lasting = transfer(community.id, alice, bob, 70, pending=True, expires_in_s=3600)
    await store.post_atomic([overdue, lasting])
    await asyncio.sleep(1.1)
    assert await store.expire_overdue() >= 1
    rows = await pool.fetch(
        "SELECT id, state FROM transactions WHERE community_id = $1", community.id
    )
    assert {row["id"]: row["state"] for row in rows} == {
        overdue.id: "expired",
        lasting.id: "pending",
    }
    holds = await pool.fetch(
        "SELECT transaction_id FROM holds WHERE community_id = $1", community.id
    )
    assert {row["transaction_id"] for row in holds} == {lasting.id}


async def test_reversal_moves_every_amount_back_once(
    store: LedgerStore, community: CommunityFixture
) -> None:
    """A reversal is a new linked transaction mirroring the original, at most once."""
    alice = await community.member_account()
    bob = await community.member_account()
    request = transfer(community.id, alice, bob, 75)
    await store.post(request)
    reversal = await store.reverse(community.id, request.id, memo="entered twice")
    assert reversal.id == default_reversal_id(request.id)
    assert await balances(store, alice, bob) == [0, 0]
    again = await store.reverse(community.id, request.id, memo="entered twice")
    assert again.outcome is Outcome.EXISTS
    with pytest.raises(AlreadyReversed) as raised:
        await store.reverse(community.id, request.id, reversal_id=uuid.uuid4())
    assert raised.value.context["reversal_id"] == str(reversal.id)
    original = await store.transaction(community.id, request.id)
    assert original.reversed_by_id == reversal.id
    mirrored = await store.transaction(community.id, reversal.id)
    assert mirrored.reverses_id == request.id
    assert {(p.account_id, p.amount) for p in mirrored.postings} == {
        (alice.id, 75),
        (bob.id, -75),
    }
    with pytest.raises(NotReversible):
        await store.reverse(community.id, reversal.id)
    assert await balances(store, alice, bob) == [0, 0]


async def test_concurrent_reversals_reverse_once(
    store: LedgerStore, community: CommunityFixture
) -> None:
    """Racing reversals with different ids: exactly one succeeds."""
    alice = await community.member_account()
    bob = await community.member_account()
    request = transfer(community.id, alice, bob, 40)
    await store.post(request)
    results = await asyncio.gather(
        *(store.reverse(community.id, request.id, reversal_id=uuid.uuid4()) for _ in range(6)),
        return_exceptions=True,
    )
    assert sum(not isinstance(result, BaseException) for result in results) == 1
    assert all(
        isinstance(result, AlreadyReversed) for result in results if isinstance(result, Exception)
    )
    assert await balances(store, alice, bob) == [0, 0]


async def test_only_posted_transactions_are_reversed(
    store: LedgerStore, community: CommunityFixture
) -> None:
    """A pending transaction is voided, not reversed; an unknown one is named."""
    alice = await community.member_account()
    bob = await community.member_account()
    request = transfer(community.id, alice, bob, 40, pending=True)
    await store.post(request)
    with pytest.raises(NotPosted):
        await store.reverse(community.id, request.id)
    with pytest.raises(UnknownTransaction):
        await store.reverse(community.id, uuid.uuid4())
    with pytest.raises(UnknownTransaction):
        await store.confirm(community.id, uuid.uuid4())


async def test_reversal_respects_limits(store: LedgerStore, community: CommunityFixture) -> None:
    """Reversing a payment the payee already spent cannot push the payee below its limit."""
    alice = await community.member_account()
    bob = await community.member_account()
    carol = await community.member_account()
    payment = transfer(community.id, alice, bob, 300)
    await store.post(payment)
    await store.post(transfer(community.id, bob, carol, 900))
    with pytest.raises(LimitExceeded) as raised:
        await store.reverse(community.id, payment.id)
    assert raised.value.context["account_id"] == str(bob.id)
    assert await balances(store, alice, bob, carol) == [-300, -600, 900]


async def test_history_cannot_be_rewritten_even_with_sql(
    pool: asyncpg.Pool, store: LedgerStore, community: CommunityFixture
) -> None:
    """Triggers refuse UPDATE, DELETE and TRUNCATE of postings and posted transactions."""
    alice = await community.member_account()
    bob = await community.member_account()
    request = transfer(community.id, alice, bob, 10)
    await store.post(request)
    statements = [
        ("UPDATE postings SET amount = amount * 2 WHERE transaction_id = $1", request.id),
        ("DELETE FROM postings WHERE transaction_id = $1", request.id),
        ("UPDATE transactions SET memo = 'rewritten' WHERE id = $1", request.id),
        ("UPDATE transactions SET state = 'voided' WHERE id = $1", request.id),
        ("DELETE FROM transactions WHERE id = $1", request.id),
        ("TRUNCATE postings, transactions CASCADE", None),
    ]
    for statement, argument in statements:
        arguments = () if argument is None else (argument,)
        with pytest.raises(asyncpg.PostgresError, match=r"append-only|cannot be changed") as raised:
            await pool.execute(statement, *arguments)
        assert raised.value.sqlstate == "TB001"
    stored = await store.transaction(community.id, request.id)
    assert {p.amount for p in stored.postings} == {-10, 10}


async def test_statement_pages_by_keyset_with_running_balance(
    store: LedgerStore, community: CommunityFixture
) -> None:
    """Statement pages, newest first, cover every posting once, each with its balance."""
    alice = await community.member_account()
    bob = await community.member_account()
    amounts = [5, 7, 11, 13, 17, 19, 23]
    await store.post_atomic([transfer(community.id, alice, bob, n) for n in amounts[:4]])
    for amount in amounts[4:]:
        await store.post(transfer(community.id, alice, bob, amount))
    lines: list[StatementLine] = []
    page = await store.statement(community.id, alice.id, limit=3)
    pages = 1
    while True:
        lines.extend(page.lines)
        if page.next_before_seq is None:
            break
        page = await store.statement(
            community.id, alice.id, limit=3, before_seq=page.next_before_seq
        )
        pages += 1
    assert pages == 3
    assert page.account.balance == -sum(amounts)
    assert page.account.posting_count == len(amounts)
    assert [line.amount for line in lines] == [-n for n in reversed(amounts)]
    running = 0
    for line in reversed(lines):
        running += line.amount
        assert line.balance_after == running
    assert [line.account_seq for line in lines] == list(range(len(amounts), 0, -1))


async def test_statement_of_an_account_without_postings_is_empty(
    store: LedgerStore, community: CommunityFixture
) -> None:
    """A fresh account has an empty statement; an unknown one is unknown_account."""
    alice = await community.member_account()
    page = await store.statement(community.id, alice.id)
    assert (page.lines, page.next_before_seq, page.account.balance) == ((), None, 0)
    with pytest.raises(UnknownAccount):
        await store.statement(community.id, uuid.uuid4())


async def test_balance_at_a_past_instant(store: LedgerStore, community: CommunityFixture) -> None:
    """The balance at any past instant is the balance its last posting left, found by
    bisection over the account's postings."""
    alice = await community.member_account()
    bob = await community.member_account()
    results = [await store.post(transfer(community.id, alice, bob, 10)) for _ in range(9)]
    instants = [result.resolved_at for result in results]
    assert all(instant is not None for instant in instants)
    first = instants[0]
    assert first is not None
    assert await store.balance_at(community.id, alice.id, first - timedelta(days=365)) == 0
    assert await store.balance_at(community.id, alice.id, first - timedelta(microseconds=1)) == 0
    for count, instant in enumerate(instants, start=1):
        assert instant is not None
        assert await store.balance_at(community.id, alice.id, instant) == -10 * count
        assert await store.balance_at(community.id, bob.id, instant) == 10 * count
        between = instant + timedelta(microseconds=1)
        assert await store.balance_at(community.id, alice.id, between) == -10 * count
    future = first + timedelta(days=365)
    assert await store.balance_at(community.id, alice.id, future) == -90
    with pytest.raises(UnknownAccount):
        await store.balance_at(community.id, uuid.uuid4(), future)


async def test_atomic_batch_is_all_or_nothing(
    store: LedgerStore, community: CommunityFixture
) -> None:
    """One failing item in an atomic batch leaves every balance untouched."""
    alice = await community.member_account()
    bob = await community.member_account()
    batch = [transfer(community.id, alice, bob, 100) for _ in range(7)]
    with pytest.raises(LimitExceeded) as raised:
        await store.post_atomic(batch)
    assert raised.value.context["index"] == 6
    assert await balances(store, alice, bob) == [0, 0]
    results = await store.post_atomic(batch[:6])
    assert [result.outcome for result in results] == [Outcome.CREATED] * 6
    assert await balances(store, alice, bob) == [-600, 600]
    retried = await store.post_atomic(batch[:6])
    assert [result.outcome for result in retried] == [Outcome.EXISTS] * 6


async def test_atomic_batch_judges_limits_in_order(
    store: LedgerStore, community: CommunityFixture
) -> None:
    """A batch is posted as if one after the other: a credit earlier in the batch
    makes room for a later debit, and not the reverse."""
    alice = await community.member_account()
    bob = await community.member_account()
    receive_then_spend = [
        transfer(community.id, bob, alice, 300),
        transfer(community.id, alice, bob, 900),
    ]
    await store.post_atomic(receive_then_spend)
    assert await balances(store, alice, bob) == [-600, 600]
    spend_then_receive = [
        transfer(community.id, alice, bob, 100),
        transfer(community.id, bob, alice, 100),
    ]
    with pytest.raises(LimitExceeded) as raised:
        await store.post_atomic(spend_then_receive)
    assert raised.value.context["index"] == 0


async def test_atomic_batch_with_earlier_transactions_writes_only_the_new_ones(
    store: LedgerStore, community: CommunityFixture
) -> None:
    """A batch repeating transactions written before (a retry that grew) answers
    them `exists` with their first times, writes the others once, and moves each
    balance once, a pending one included."""
    alice = await community.member_account()
    bob = await community.member_account()
    earlier = [transfer(community.id, alice, bob, 10), transfer(community.id, bob, alice, 3)]
    first = await store.post_atomic(earlier)
    held = transfer(community.id, alice, bob, 7, pending=True)
    grown = [transfer(community.id, alice, bob, 20), earlier[1], held, earlier[0]]
    results = await store.post_atomic(grown)
    assert [result.outcome for result in results] == [
        Outcome.CREATED,
        Outcome.EXISTS,
        Outcome.CREATED,
        Outcome.EXISTS,
    ]
    assert [result.state for result in results] == [
        TransactionState.POSTED,
        TransactionState.POSTED,
        TransactionState.PENDING,
        TransactionState.POSTED,
    ]
    assert (results[1].created_at, results[3].created_at) == (
        first[1].created_at,
        first[0].created_at,
    )
    assert await balances(store, alice, bob) == [-27, 27]
    assert (await store.account(alice.id)).available == -34
    assert [
        line.balance_after for line in (await store.statement(community.id, alice.id)).lines
    ] == [
        -27,
        -7,
        -10,
    ]


async def test_atomic_batch_keeps_each_transactions_own_values(
    store: LedgerStore, community: CommunityFixture
) -> None:
    """A batch whose transactions share their kind, memo, category and lifetime
    stores them on each; one whose last transaction differs in any one of them
    keeps each transaction's own."""

    def request(
        kind: TransactionKind = TransactionKind.DONATION,
        memo: str = "tools",
        category: str | None = "repair",
        lifetime_s: int = 600,
    ) -> TransactionRequest:
        return TransactionRequest.transfer(
            id=uuid.uuid4(),
            community_id=community.id,
            unit_code="H",
            from_account=alice.id,
            to_account=bob.id,
            amount=5,
            kind=kind,
            memo=memo,
            category=category,
            pending=True,
            expires_in_s=lifetime_s,
        )

    alice = await community.member_account()
    bob = await community.member_account()
    batches = [
        [request(), request(), request()],
        [request(), request(), request(kind=TransactionKind.EXCHANGE)],
        [request(), request(), request(memo="seeds")],
        [request(), request(), request(category=None)],
        [request(), request(), request(lifetime_s=900)],
    ]
    for batch in batches:
        results = await store.post_atomic(batch)
        assert [result.state for result in results] == [TransactionState.PENDING] * len(batch)
        for sent, result in zip(batch, results, strict=True):
            stored = await store.transaction(community.id, sent.id)
            assert (stored.kind, stored.memo, stored.category) == (
                sent.kind,
                sent.memo,
                sent.category,
            )
            assert stored.expires_at == result.expires_at
            assert result.expires_at is not None
            assert sent.expires_in_s is not None
            assert result.expires_at - stored.created_at == timedelta(seconds=sent.expires_in_s)
    assert (await store.account(alice.id)).available == -5 * 3 * len(batches)


async def test_concurrent_identical_batches_write_once(
    store: LedgerStore, community: CommunityFixture
) -> None:
    """The same batch sent twice at once (a client's retry racing its first try):
    one call writes it, the other finds it written, and balances move once."""
    alice = await community.member_account()
    bob = await community.member_account()
    batch = [transfer(community.id, alice, bob, amount) for amount in (1, 2, 3, 4)]
    outcomes = await asyncio.gather(store.post_atomic(batch), store.post_atomic(batch))
    assert sorted([result.outcome for result in results] for results in outcomes) == [
        [Outcome.CREATED] * 4,
        [Outcome.EXISTS] * 4,
    ]
    assert await balances(store, alice, bob) == [-10, 10]


async def test_independent_batch_answers_each_item(
    store: LedgerStore, community: CommunityFixture
) -> None:
    """An independent batch posts what it can and names the error of the others."""
    alice = await community.member_account()
    bob = await community.member_account()
    existing = transfer(community.id, alice, bob, 10)
    other = transfer(community.id, bob, alice, 1)
    await store.post_atomic([existing, other])
    batch = [
        existing,
        transfer(community.id, alice, bob, 1_000),
        transfer(community.id, alice, bob, 20),
        transfer(community.id, alice, bob, 5, transaction_id=other.id),
    ]
    results = await store.post_independent(batch)
    assert getattr(results[0], "outcome", None) is Outcome.EXISTS
    assert isinstance(results[1], LimitExceeded)
    assert getattr(results[2], "outcome", None) is Outcome.CREATED
    assert isinstance(results[3], TransactionIdConflict)
    assert await balances(store, alice, bob) == [-29, 29]


async def test_limit_changes_never_break_a_reservation(
    store: LedgerStore, community: CommunityFixture
) -> None:
    """New limits must hold the balance with its reservations; the pending transaction
    stays confirmable."""
    alice = await community.member_account()
    bob = await community.member_account()
    request = transfer(community.id, alice, bob, 300, pending=True)
    await store.post(request)
    with pytest.raises(LimitsConflictWithBalance):
        await store.set_limits(community.id, alice.id, -299, TIME_MAX_BALANCE)
    with pytest.raises(LimitsConflictWithBalance):
        await store.set_limits(community.id, bob.id, TIME_MIN_BALANCE, 299)
    updated = await store.set_limits(community.id, alice.id, -300, TIME_MAX_BALANCE)
    assert updated.min_balance == -300
    await store.confirm(community.id, request.id)
    assert await balances(store, alice, bob) == [-300, 300]


async def test_invariants_hold_after_all_of_the_above(pool: asyncpg.Pool) -> None:
    """The whole session database satisfies every invariant."""
    async with pool.acquire() as connection:
        assert await check_invariants(connection) == []
