"""Checking signatures off the event loop.

An Ed25519 verification costs 40 to 110 µs of CPU (libsodium's, by
`intents.verify_signature_strictly`), more than the rest of a signed transfer's
Python work. libsodium (through cffi) and pyca/cryptography (ECDSA) let go of the
GIL while they verify, so a worker thread verifies on another core
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
20% slower (docs/scaling.md). Idle work gets almost no time on a CPU that other
programs keep busy (an `audit verify` on the same host, say): so that signed
requests are then slowed like the others rather than starved, a share that has
waited `RESCUE_AFTER_S` is taken by a rescuing thread at normal priority.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

import structlog

from timebank.signing import intents

logger = structlog.get_logger(__name__)

# How long a share may wait for the idle-priority workers before the rescuing
# thread (normal priority) verifies it: far above a share's usual wait (under a
# millisecond), far below what a member would notice.
RESCUE_AFTER_S = 0.05


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
    handed_at: float  # time.monotonic()


class SignatureVerifier:
    """Verifies signatures on `threads` worker threads; with 0, on the caller's
    thread (the event loop), as a plain function call. `idle_priority`: the
    workers run at idle priority where the system offers it (Linux)."""

    def __init__(
        self,
        threads: int,
        *,
        idle_priority: bool = False,
        rescue_after_s: float = RESCUE_AFTER_S,
    ) -> None:
        assert threads >= 0
        assert rescue_after_s > 0
        self._idle_priority = idle_priority
        self._rescue_after_s = rescue_after_s
        # Shares waiting for a worker (deque: appends and pops are atomic), and
        # one permit per share or stop (a permit may find the share rescued).
        self._shares: deque[_Share] = deque()
        self._permits = threading.Semaphore(0)
        self._closing = False
        self._closed = threading.Event()
        # Asked during this turn of each event loop, not yet handed to the workers
        # (one list per loop: each is touched only by its loop's thread).
        self._asked: dict[asyncio.AbstractEventLoop, list[_Check]] = {}
        self._workers = [
            threading.Thread(target=self._work, name=f"timebank-verify_{number}", daemon=True)
            for number in range(threads)
        ]
        self._rescuer = (
            threading.Thread(target=self._rescue, name="timebank-verify_rescue", daemon=True)
            if idle_priority and threads
            else None
        )
        for worker in self._workers:
            worker.start()
        if self._rescuer is not None:
            self._rescuer.start()

    async def verify(
        self,
        algorithm: intents.KeyAlgorithm,
        public_key: bytes,
        message: bytes,
        signature: bytes,
    ) -> bool:
        """True only for a well-formed key and a valid signature; never raises on bad
        bytes (`intents.verify_signature_strictly`)."""
        if not self._workers:
            return intents.verify_signature_strictly(algorithm, public_key, message, signature)
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
        handed_at = time.monotonic()
        for first in range(share_count):
            self._shares.append(_Share(loop, asked[first::share_count], handed_at))
            self._permits.release()

    def _work(self) -> None:
        if self._idle_priority and not lower_to_idle_priority():
            logger.warning(
                "signature_verify_idle_priority_unavailable",
                thread=threading.current_thread().name,
            )
        while True:
            self._permits.acquire()
            try:
                share = self._shares.popleft()
            except IndexError:  # rescued meanwhile, or a stop
                if self._closing:
                    return
                continue
            _verify_share(share)

    def _rescue(self) -> None:
        """Verifies, at normal priority, the shares that waited too long for the
        idle-priority workers (the oldest first)."""
        while not self._closed.wait(self._rescue_after_s / 2):
            # Workers pop concurrently: each look at the deque may find it emptied.
            with contextlib.suppress(IndexError):
                while time.monotonic() - self._shares[0].handed_at >= self._rescue_after_s:
                    _verify_share(self._shares.popleft())  # the oldest, unless a worker took it

    def close(self) -> None:
        """Waits for the verifications under way; no more may be asked after."""
        self._closing = True
        for _ in self._workers:
            self._permits.release()
        for worker in self._workers:
            worker.join()
        self._closed.set()
        if self._rescuer is not None:
            self._rescuer.join()


def _verify_share(share: _Share) -> None:
    verdicts: list[bool | Exception] = []
    for check in share.checks:
        try:
            verdicts.append(
                intents.verify_signature_strictly(
                    check.algorithm, check.public_key, check.message, check.signature
                )
            )
        except Exception as error:  # a bug: raised to the caller, not lost here
            verdicts.append(error)
    # A closed loop (RuntimeError) has nobody waiting any more.
    with contextlib.suppress(RuntimeError):
        share.loop.call_soon_threadsafe(_deliver, share.checks, verdicts)


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
