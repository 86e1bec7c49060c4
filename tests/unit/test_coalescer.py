"""The coalescer: single transactions posted together share calls, and each caller
still gets exactly its own result or error."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from timebank.errors import TimebankError
from timebank.ledger.coalescer import Coalescer
from timebank.ledger.errors import DatabaseUnavailable, LimitExceeded
from timebank.ledger.models import (
    Outcome,
    TransactionRequest,
    TransactionResult,
    TransactionState,
)

COMMUNITY = uuid.UUID("00000000-0000-4000-8000-000000000001")
OTHER_COMMUNITY = uuid.UUID("00000000-0000-4000-8000-000000000002")


def request(
    amount: int = 10, *, community_id: uuid.UUID = COMMUNITY, id: uuid.UUID | None = None
) -> TransactionRequest:
    return TransactionRequest.transfer(
        id=id or uuid.uuid4(),
        community_id=community_id,
        unit_code="H",
        from_account=uuid.UUID(int=1),
        to_account=uuid.UUID(int=2),
        amount=amount,
    )


def created(item: TransactionRequest) -> TransactionResult:
    now = datetime.now(UTC)
    return TransactionResult(item.id, Outcome.CREATED, TransactionState.POSTED, now, now, None)


class RecordingLedger:
    """Stands in for the database call: records each batch, answers each item
    (amounts above 100 are refused), and can be held to let callers pile up."""

    def __init__(self) -> None:
        self.batches: list[list[TransactionRequest]] = []
        self.release = asyncio.Event()
        self.release.set()
        self.failure: Exception | None = None

    async def post_many(
        self, requests: Sequence[TransactionRequest]
    ) -> list[TransactionResult | TimebankError]:
        self.batches.append(list(requests))
        await self.release.wait()
        if self.failure is not None:
            raise self.failure
        return [
            LimitExceeded(amount=item.postings[1].amount)
            if item.postings[1].amount > 100
            else created(item)
            for item in requests
        ]


async def test_transactions_arriving_while_calls_are_busy_share_the_next_call() -> None:
    """With one call slot, the first goes alone and the next nine leave together."""
    ledger = RecordingLedger()
    ledger.release.clear()
    coalescer = Coalescer(ledger.post_many, batch_size_max=64, in_flight_max=1)
    requests = [request() for _ in range(10)]
    posts = [asyncio.ensure_future(coalescer.post(item)) for item in requests]
    await asyncio.sleep(0)
    ledger.release.set()
    results = await asyncio.gather(*posts)
    assert [len(batch) for batch in ledger.batches] == [1, 9]
    assert [result.id for result in results] == [item.id for item in requests]


async def test_each_caller_gets_its_own_error() -> None:
    """A refused transaction raises for its caller only; its neighbours succeed."""
    ledger = RecordingLedger()
    ledger.release.clear()
    coalescer = Coalescer(ledger.post_many, batch_size_max=64, in_flight_max=1)
    first = asyncio.ensure_future(coalescer.post(request()))
    refused = asyncio.ensure_future(coalescer.post(request(500)))
    accepted = asyncio.ensure_future(coalescer.post(request(20)))
    await asyncio.sleep(0)
    ledger.release.set()
    await first
    with pytest.raises(LimitExceeded):
        await refused
    assert (await accepted).outcome is Outcome.CREATED
    assert [len(batch) for batch in ledger.batches] == [1, 2]


async def test_a_failed_call_fails_every_caller_in_it() -> None:
    """When the database call itself fails, each of its callers sees that failure."""
    ledger = RecordingLedger()
    ledger.failure = DatabaseUnavailable("connection refused")
    coalescer = Coalescer(ledger.post_many, batch_size_max=64, in_flight_max=2)
    results = await asyncio.gather(
        *(coalescer.post(request()) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(result, DatabaseUnavailable) for result in results)


async def test_one_id_is_never_twice_in_a_call() -> None:
    """Two posts of the same transaction go in different calls (the second is then
    recognised as a retry by the ledger)."""
    ledger = RecordingLedger()
    ledger.release.clear()
    coalescer = Coalescer(ledger.post_many, batch_size_max=64, in_flight_max=1)
    blocker = asyncio.ensure_future(coalescer.post(request()))
    twin = request()
    posts = [asyncio.ensure_future(coalescer.post(twin)) for _ in range(2)]
    await asyncio.sleep(0)
    ledger.release.set()
    await asyncio.gather(blocker, *posts)
    assert [[item.id for item in batch] for batch in ledger.batches[1:]] == [[twin.id], [twin.id]]


async def test_calls_carry_one_community_and_at_most_the_batch_size() -> None:
    """A call never mixes communities nor exceeds batch_size_max."""
    ledger = RecordingLedger()
    ledger.release.clear()
    coalescer = Coalescer(ledger.post_many, batch_size_max=3, in_flight_max=1)
    posts = [
        asyncio.ensure_future(
            coalescer.post(request(community_id=COMMUNITY if n % 2 else OTHER_COMMUNITY))
        )
        for n in range(9)
    ]
    await asyncio.sleep(0)
    ledger.release.set()
    await asyncio.gather(*posts)
    assert sum(len(batch) for batch in ledger.batches) == 9
    for batch in ledger.batches:
        assert len(batch) <= 3
        assert len({item.community_id for item in batch}) == 1


async def test_a_caller_that_gave_up_before_sending_sends_nothing() -> None:
    """A post cancelled while it waits for a slot is never written."""
    ledger = RecordingLedger()
    ledger.release.clear()
    coalescer = Coalescer(ledger.post_many, batch_size_max=64, in_flight_max=1)
    blocker = asyncio.ensure_future(coalescer.post(request()))
    abandoned_request = request()
    abandoned = asyncio.ensure_future(coalescer.post(abandoned_request))
    kept = asyncio.ensure_future(coalescer.post(request()))
    await asyncio.sleep(0)
    abandoned.cancel()
    ledger.release.set()
    await asyncio.gather(blocker, kept)
    await coalescer.drain()
    sent = [item.id for batch in ledger.batches for item in batch]
    assert abandoned_request.id not in sent
    assert len(sent) == 2


async def test_the_next_call_leaves_before_the_last_ones_callers_resume() -> None:
    """When a call ends, the transactions waiting behind it are sent before its own
    callers' continuations run: the database does not sit idle while they do."""
    events: list[str] = []

    async def post_many(
        requests: Sequence[TransactionRequest],
    ) -> list[TransactionResult | TimebankError]:
        events.append(f"call of {len(requests)}")
        await asyncio.sleep(0)
        return [created(item) for item in requests]

    coalescer = Coalescer(post_many, batch_size_max=64, in_flight_max=1)

    async def post_then_note(item: TransactionRequest, name: str) -> None:
        await coalescer.post(item)
        events.append(f"{name} resumed")

    first = asyncio.ensure_future(post_then_note(request(), "first"))
    await asyncio.sleep(0)  # the first call is in flight
    rest = [asyncio.ensure_future(post_then_note(request(), f"next {n}")) for n in range(2)]
    await asyncio.gather(first, *rest)
    assert events[:2] == ["call of 1", "call of 2"], events
    assert events.index("call of 2") < events.index("first resumed")


async def test_each_call_is_told_with_its_size_and_duration_once_it_ends() -> None:
    """`on_call` hears of every call, failed ones included, after it has ended."""
    ledger = RecordingLedger()
    ledger.release.clear()
    calls: list[tuple[int, float]] = []

    def on_call(transactions: int, duration_s: float) -> None:
        # Told after the call: every batch recorded so far has been answered.
        assert len(ledger.batches) >= len(calls) + 1
        calls.append((transactions, duration_s))

    coalescer = Coalescer(ledger.post_many, batch_size_max=64, in_flight_max=1, on_call=on_call)
    posts = [asyncio.ensure_future(coalescer.post(request())) for _ in range(6)]
    await asyncio.sleep(0)
    assert calls == []  # the first call is held
    await asyncio.sleep(0.01)
    ledger.release.set()
    await asyncio.gather(*posts)
    assert [size for size, _ in calls] == [1, 5]
    assert calls[0][1] >= 0.01  # held for the sleep above
    assert all(duration_s > 0 for _, duration_s in calls)

    ledger.failure = DatabaseUnavailable("connection refused")
    with pytest.raises(DatabaseUnavailable):
        await coalescer.post(request())
    assert [size for size, _ in calls] == [1, 5, 1]


async def test_an_observer_that_fails_takes_no_answer_from_the_callers() -> None:
    """The callers of a call have their answers before `on_call` is told of it."""
    ledger = RecordingLedger()

    def on_call(transactions: int, duration_s: float) -> None:
        raise RuntimeError("a broken observer")

    coalescer = Coalescer(ledger.post_many, batch_size_max=64, in_flight_max=1, on_call=on_call)
    results = await asyncio.gather(*(coalescer.post(request()) for _ in range(3)))
    assert [result.outcome for result in results] == [Outcome.CREATED] * 3
    with pytest.raises(LimitExceeded):
        await coalescer.post(request(500))
    await coalescer.drain()
