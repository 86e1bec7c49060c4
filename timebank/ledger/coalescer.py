"""Gathers single transactions posted at the same time into shared database calls.

Under load, many callers post one transaction each. Sending each alone costs a
round trip, a commit and PostgreSQL's per-statement overhead every time; sending
those that arrive together as one independent batch costs them once. Nothing
waits on purpose: a transaction goes out at once when a slot is free, and only
those that arrive while every slot is busy are gathered, to leave together when
one frees. Each caller gets exactly the result (or named error) it would have had
alone: an independent batch gives each transaction the outcome of posting them
one after the other.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, Protocol, TypeVar

from timebank.errors import TimebankError
from timebank.ledger.models import TransactionResult


class Postable(Protocol):
    """What the coalescer gathers: a transaction request (or one with its
    signature), known by its id and community."""

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def community_id(self) -> uuid.UUID: ...


R = TypeVar("R", bound=Postable)
PostMany = Callable[[Sequence[R]], Awaitable[list[TransactionResult | TimebankError]]]
# Told of each call once it has ended: the transactions it carried, and the seconds
# from its sending until each of them had its answer.
CallObserver = Callable[[int, float], None]


class Coalescer(Generic[R]):
    """Posts single transactions through at most `in_flight_max` concurrent calls
    of `post_many`, each carrying up to `batch_size_max` transactions of one
    community. `on_call` is told of each call when it ends (for the metrics)."""

    def __init__(
        self,
        post_many: PostMany[R],
        *,
        batch_size_max: int,
        in_flight_max: int,
        on_call: CallObserver | None = None,
    ) -> None:
        assert batch_size_max >= 1
        assert in_flight_max >= 1
        self._post_many = post_many
        self._on_call = on_call
        self._batch_size_max = batch_size_max
        self._in_flight_max = in_flight_max
        self._in_flight = 0
        self._waiting: dict[uuid.UUID, deque[tuple[R, asyncio.Future[TransactionResult]]]] = {}
        self._calls: set[asyncio.Task[None]] = set()

    async def post(self, request: R) -> TransactionResult:
        future: asyncio.Future[TransactionResult] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(request.community_id, deque()).append((request, future))
        self._dispatch()
        return await future

    async def drain(self) -> None:
        """Waits for every call in flight (and those they start) to finish."""
        while self._calls:
            await asyncio.gather(*self._calls, return_exceptions=True)

    def _dispatch(self) -> None:
        while self._in_flight < self._in_flight_max and self._waiting:
            batch = self._next_batch()
            if not batch:
                continue
            self._in_flight += 1
            call = asyncio.get_running_loop().create_task(self._send(batch))
            self._calls.add(call)
            call.add_done_callback(self._calls.discard)

    def _next_batch(self) -> list[tuple[R, asyncio.Future[TransactionResult]]]:
        """Up to batch_size_max waiting transactions of the longest-waiting community;
        a second transaction with an id already in the batch waits for the next one."""
        community_id, queue = next(iter(self._waiting.items()))
        del self._waiting[community_id]
        batch: list[tuple[R, asyncio.Future[TransactionResult]]] = []
        ids: set[uuid.UUID] = set()
        held_back: deque[tuple[R, asyncio.Future[TransactionResult]]] = deque()
        while queue and len(batch) < self._batch_size_max:
            request, future = queue.popleft()
            if future.done():  # its caller gave up before it was sent: nothing to write
                continue
            if request.id in ids:
                held_back.append((request, future))
                continue
            ids.add(request.id)
            batch.append((request, future))
        held_back.extend(queue)
        if held_back:
            self._waiting[community_id] = held_back  # to the back of the line
        return batch

    async def _send(self, batch: list[tuple[R, asyncio.Future[TransactionResult]]]) -> None:
        started_s = time.perf_counter()
        try:
            await self._post_and_answer(batch)
        finally:
            # Told once every caller of the call has its answer: an observer that
            # fails cannot take their results from them.
            if self._on_call is not None:
                self._on_call(len(batch), time.perf_counter() - started_s)

    async def _post_and_answer(
        self, batch: list[tuple[R, asyncio.Future[TransactionResult]]]
    ) -> None:
        try:
            try:
                results = await self._post_many([request for request, _ in batch])
            finally:
                # The slot is free as soon as the call ends: the next call is
                # started before this batch's callers wake, so its task runs (and
                # its query leaves) before their continuations, which then run
                # while the database works instead of between its calls.
                self._in_flight -= 1
                self._dispatch()
        except BaseException as error:
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            if isinstance(error, asyncio.CancelledError):
                raise
        else:
            assert len(results) == len(batch), "one result per transaction"
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, TimebankError):
                    future.set_exception(result)
                else:
                    future.set_result(result)
