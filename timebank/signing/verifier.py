"""Checking signatures off the event loop.

An Ed25519 verification costs 90 to 170 µs of CPU, more than the rest of a signed
transfer's Python work. pyca/cryptography lets go of the GIL while OpenSSL
verifies (Ed25519 and ECDSA alike), so a worker thread verifies on another core
while the event loop goes on serving other requests, and the transfers verified
meanwhile reach the database together (the coalescer gathers them into one call).

The hand-over is lean: the signatures asked for during one turn of the event loop
go to the workers together (one queue item per worker), and each worker answers
its share with one wake-up of the loop. A `ThreadPoolExecutor` (a future, a lock
and a wake-up per signature) cost the loop about a third of its time on a signed
transfer, more than the parsing and checking of the intent.

The workers may run at idle priority (Linux's SCHED_IDLE; the setting
`signature_verify_idle_priority`): they then take only the CPU time that nothing
else wants, so the event loop and PostgreSQL, which carry the transfers already
verified to their commit, are never kept waiting behind a verification. With
verification at normal priority on two cores, the loop's thread was often
descheduled for PostgreSQL's backend in the middle of sending a batch (py-spy: a
sixth of its samples inside one socket write), and signed transfers went 10 to
20% slower (docs/scaling.md). The price: on a host whose CPUs other programs keep
busy, verifications get almost no time, so signed requests slow down first.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
from dataclasses import dataclass
from typing import NamedTuple

from timebank.signing import intents


class _Check(NamedTuple):
    """One signature to check (a named tuple: built once per signature, it costs
    half a frozen dataclass)."""

    algorithm: intents.KeyAlgorithm
    public_key: bytes
    message: bytes
    signature: bytes
    verdict: asyncio.Future[bool]


@dataclass(frozen=True, slots=True)
class _Share:
    """Some checks for one worker, and the loop that waits for their verdicts."""

    loop: asyncio.AbstractEventLoop
    checks: list[_Check]


class SignatureVerifier:
    """Verifies signatures on `threads` worker threads; with 0, on the caller's
    thread (the event loop), as a plain function call. `idle_priority`: the
    workers run at idle priority where the system offers it (Linux)."""

    def __init__(self, threads: int, *, idle_priority: bool = False) -> None:
        assert threads >= 0
        self._idle_priority = idle_priority
        self._shares: queue.SimpleQueue[_Share | None] = queue.SimpleQueue()
        # Asked during this turn of each event loop, not yet handed to the workers
        # (one list per loop: each is touched only by its loop's thread).
        self._asked: dict[asyncio.AbstractEventLoop, list[_Check]] = {}
        self._workers = [
            threading.Thread(target=self._work, name=f"timebank-verify_{number}", daemon=True)
            for number in range(threads)
        ]
        for worker in self._workers:
            worker.start()

    async def verify(
        self,
        algorithm: intents.KeyAlgorithm,
        public_key: bytes,
        message: bytes,
        signature: bytes,
    ) -> bool:
        """True only for a well-formed key and a valid signature; never raises on bad
        bytes (`intents.verify_signature`)."""
        if not self._workers:
            return intents.verify_signature(algorithm, public_key, message, signature)
        loop = asyncio.get_running_loop()
        verdict: asyncio.Future[bool] = loop.create_future()
        asked = self._asked.get(loop)
        if asked is None:
            asked = self._asked[loop] = []
            loop.call_soon(self._hand_over, loop)
        asked.append(_Check(algorithm, public_key, message, signature, verdict))
        return await verdict

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        """The checks asked during the last turn of the loop, one share per worker."""
        asked = self._asked.pop(loop)
        share_count = min(len(self._workers), len(asked))
        for first in range(share_count):
            self._shares.put(_Share(loop, asked[first::share_count]))

    def _work(self) -> None:
        if self._idle_priority:
            lower_to_idle_priority()
        while (share := self._shares.get()) is not None:
            verdicts: list[bool | Exception] = []
            for check in share.checks:
                try:
                    verdicts.append(
                        intents.verify_signature(
                            check.algorithm, check.public_key, check.message, check.signature
                        )
                    )
                except Exception as error:  # a bug: raised to the caller, not lost here
                    verdicts.append(error)
            # A closed loop (RuntimeError) has nobody waiting any more.
            with contextlib.suppress(RuntimeError):
                share.loop.call_soon_threadsafe(_deliver, share.checks, verdicts)

    def close(self) -> None:
        """Waits for the verifications under way; no more may be asked after."""
        for _ in self._workers:
            self._shares.put(None)
        for worker in self._workers:
            worker.join()


def lower_to_idle_priority() -> bool:
    """Puts the calling thread at idle priority (SCHED_IDLE: Linux applies it to the
    one thread); False where the system has no such policy or refuses it."""
    policy = getattr(os, "SCHED_IDLE", None)
    if policy is None:
        return False
    try:
        os.sched_setscheduler(0, policy, os.sched_param(0))
    except OSError:
        return False
    return True


def _deliver(checks: list[_Check], verdicts: list[bool | Exception]) -> None:
    for check, verdict in zip(checks, verdicts, strict=True):
        if check.verdict.done():  # its caller gave up
            continue
        if isinstance(verdict, Exception):
            check.verdict.set_exception(verdict)
        else:
            check.verdict.set_result(verdict)
