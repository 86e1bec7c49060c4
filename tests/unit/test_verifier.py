"""Signatures verified on worker threads: the same answers as on the event loop, for
Ed25519 and P-256 alike, with the work done off the loop's thread."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest
import structlog
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from timebank.signing import intents
from timebank.signing.verifier import SignatureVerifier

MESSAGE = b'{"amount":90,"type":"transfer","v":1}'


def ed25519_case() -> tuple[intents.KeyAlgorithm, bytes, bytes]:
    key = Ed25519PrivateKey.generate()
    return intents.KeyAlgorithm.ED25519, key.public_key().public_bytes_raw(), key.sign(MESSAGE)


def p256_case() -> tuple[intents.KeyAlgorithm, bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    r, s = decode_dss_signature(key.sign(MESSAGE, ec.ECDSA(hashes.SHA256())))
    # WebCrypto's form: r and s, 32 bytes each.
    return intents.KeyAlgorithm.P256, public, r.to_bytes(32, "big") + s.to_bytes(32, "big")


@pytest.mark.parametrize("threads", [0, 1, 2])
@pytest.mark.parametrize("case", [ed25519_case, p256_case])
async def test_the_verdicts_are_the_same_on_threads_and_on_the_loop(
    threads: int, case: object
) -> None:
    assert callable(case)
    algorithm, public_key, signature = case()
    checks = SignatureVerifier(threads)
    try:
        assert await checks.verify(algorithm, public_key, MESSAGE, signature)
        assert not await checks.verify(algorithm, public_key, MESSAGE + b" ", signature)
        flipped = bytes([signature[0] ^ 1]) + signature[1:]
        assert not await checks.verify(algorithm, public_key, MESSAGE, flipped)
        assert not await checks.verify(algorithm, b"\x00" * 5, MESSAGE, signature)
    finally:
        checks.close()


async def test_many_verifications_run_on_the_workers_not_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each verification is done by one of the worker threads, and all of them
    answer right when many are asked at once."""
    seen_threads: set[str] = set()
    verify = intents.verify_signature_strictly

    def recording(*arguments: object) -> bool:
        seen_threads.add(threading.current_thread().name)
        return verify(*arguments)  # type: ignore[arg-type]

    monkeypatch.setattr(intents, "verify_signature_strictly", recording)
    algorithm, public_key, signature = ed25519_case()
    checks = SignatureVerifier(2)
    try:
        verdicts = await asyncio.gather(
            *(
                checks.verify(algorithm, public_key, MESSAGE + (b"" if i % 2 else b"!"), signature)
                for i in range(64)
            )
        )
    finally:
        checks.close()
    assert verdicts == [bool(i % 2) for i in range(64)]
    assert seen_threads
    assert all(name.startswith("timebank-verify") for name in seen_threads)
    assert threading.current_thread().name not in seen_threads


@pytest.mark.parametrize("idle_priority", [True, False])
async def test_the_workers_verify_at_idle_priority_only_when_asked(
    monkeypatch: pytest.MonkeyPatch, idle_priority: bool
) -> None:
    """At idle priority (Linux SCHED_IDLE, per thread), the workers take only CPU
    time nothing else wants; the event loop's thread keeps its own priority."""
    policies: set[int] = set()
    verify = intents.verify_signature_strictly

    def recording(*arguments: object) -> bool:
        policies.add(os.sched_getscheduler(0))
        return verify(*arguments)  # type: ignore[arg-type]

    monkeypatch.setattr(intents, "verify_signature_strictly", recording)
    algorithm, public_key, signature = ed25519_case()
    loop_policy = os.sched_getscheduler(0)
    # (No rescue in this test: on a busy machine one could come at 50 ms.)
    checks = SignatureVerifier(2, idle_priority=idle_priority, rescue_after_s=600)
    try:
        verdicts = await asyncio.gather(
            *(checks.verify(algorithm, public_key, MESSAGE, signature) for _ in range(16))
        )
    finally:
        checks.close()
    assert verdicts == [True] * 16
    assert policies == ({os.SCHED_IDLE} if idle_priority else {loop_policy})
    assert os.sched_getscheduler(0) == loop_policy != os.SCHED_IDLE


async def test_a_system_refusing_idle_priority_is_logged_and_the_workers_verify_anyway(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*arguments: object) -> None:
        raise PermissionError("sched_setscheduler refused")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    algorithm, public_key, signature = ed25519_case()
    with structlog.testing.capture_logs() as logs:
        checks = SignatureVerifier(1, idle_priority=True)
        try:
            assert await checks.verify(algorithm, public_key, MESSAGE, signature)
        finally:
            checks.close()
    assert [entry["event"] for entry in logs] == ["signature_verify_idle_priority_unavailable"]
    assert logs[0]["log_level"] == "warning"


async def test_a_share_left_waiting_by_the_idle_workers_is_rescued_at_normal_priority(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When the idle-priority workers get no CPU (here: the only one is stuck), a
    check that waited `rescue_after_s` is verified by the rescuing thread, at
    normal priority, and the stuck one still gets its own verdict later."""
    stuck = threading.Event()
    release = threading.Event()
    verified_by: dict[bytes, tuple[str, int]] = {}
    verify = intents.verify_signature_strictly

    def recording(*arguments: object) -> bool:
        message = arguments[2]
        assert isinstance(message, bytes)
        verified_by[message] = (threading.current_thread().name, os.sched_getscheduler(0))
        if message == b"first":
            stuck.set()
            assert release.wait(10)
        return verify(*arguments)  # type: ignore[arg-type]

    monkeypatch.setattr(intents, "verify_signature_strictly", recording)
    key = Ed25519PrivateKey.generate()
    public_key = key.public_key().public_bytes_raw()
    checks = SignatureVerifier(1, idle_priority=True, rescue_after_s=0.05)
    try:
        first = asyncio.ensure_future(
            checks.verify(intents.KeyAlgorithm.ED25519, public_key, b"first", key.sign(b"first"))
        )
        assert await asyncio.to_thread(stuck.wait, 10)
        asked_at = asyncio.get_running_loop().time()
        second = await asyncio.wait_for(
            checks.verify(intents.KeyAlgorithm.ED25519, public_key, b"second", key.sign(b"second")),
            timeout=10,
        )
        waited_s = asyncio.get_running_loop().time() - asked_at
        assert second is True
        assert not first.done()
        release.set()
        assert await asyncio.wait_for(first, timeout=10) is True
    finally:
        release.set()
        checks.close()
    assert 0.05 <= waited_s < 5
    assert verified_by[b"first"] == ("timebank-verify_0", os.SCHED_IDLE)
    assert verified_by[b"second"][0] == "timebank-verify_rescue"
    assert verified_by[b"second"][1] != os.SCHED_IDLE


async def test_checks_asked_together_go_to_the_workers_in_one_hand_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Sixty-four checks asked in one turn of the loop reach the workers in one
    hand-over (a share per worker), not in sixty-four."""
    hand_overs: list[int] = []
    hand_over = SignatureVerifier._hand_over

    def counting(self: SignatureVerifier, loop: asyncio.AbstractEventLoop) -> None:
        hand_overs.append(len(self._asked[loop]))
        hand_over(self, loop)

    monkeypatch.setattr(SignatureVerifier, "_hand_over", counting)
    algorithm, public_key, signature = ed25519_case()
    checks = SignatureVerifier(2)
    try:
        verdicts = await asyncio.gather(
            *(checks.verify(algorithm, public_key, MESSAGE, signature) for _ in range(64))
        )
    finally:
        checks.close()
    assert all(verdicts)
    assert hand_overs == [64]


async def test_a_caller_that_gives_up_leaves_the_others_their_verdicts() -> None:
    algorithm, public_key, signature = ed25519_case()
    checks = SignatureVerifier(1)
    try:
        abandoned = asyncio.ensure_future(checks.verify(algorithm, public_key, MESSAGE, signature))
        kept = asyncio.ensure_future(checks.verify(algorithm, public_key, MESSAGE, signature))
        await asyncio.sleep(0)
        abandoned.cancel()
        assert await kept
        assert abandoned.cancelled()
    finally:
        checks.close()


async def test_an_error_inside_a_verification_reaches_its_caller(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """verify_signature_strictly never raises on bad bytes; if it raised (a bug), the caller
    sees the error instead of waiting forever."""

    def broken(*arguments: object) -> bool:
        raise ValueError("broken")

    monkeypatch.setattr(intents, "verify_signature_strictly", broken)
    algorithm, public_key, signature = ed25519_case()
    checks = SignatureVerifier(1)
    try:
        with pytest.raises(ValueError, match="broken"):
            await asyncio.wait_for(checks.verify(algorithm, public_key, MESSAGE, signature), 5)
    finally:
        checks.close()


def test_one_verifier_serves_event_loops_on_two_threads_each_its_own_verdicts() -> None:
    """Checks asked from two event loops at once (each on its thread) are answered
    on the loop that asked, each with its own verdict."""
    checks = SignatureVerifier(2)
    algorithm, public_key, signature = ed25519_case()
    outcomes: dict[str, list[bool]] = {}
    start = threading.Barrier(2)

    def run(name: str, valid: bool) -> None:
        message = MESSAGE if valid else MESSAGE + b"!"

        async def ask() -> list[bool]:
            start.wait()
            return list(
                await asyncio.gather(
                    *(checks.verify(algorithm, public_key, message, signature) for _ in range(50))
                )
            )

        outcomes[name] = asyncio.run(ask())

    threads = [
        threading.Thread(target=run, args=("valid", True)),
        threading.Thread(target=run, args=("forged", False)),
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        checks.close()
    assert outcomes == {"valid": [True] * 50, "forged": [False] * 50}
