"""Checking signatures off the event loop.

An Ed25519 verification costs 90 to 170 µs of CPU, more than the rest of a signed
transfer's Python work. pyca/cryptography lets go of the GIL while OpenSSL
verifies (Ed25519 and ECDSA alike), so a worker thread verifies on another core
while the event loop goes on serving other requests, and the transfers verified
meanwhile reach the database together (the coalescer gathers them into one call).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from timebank.signing import intents


class SignatureVerifier:
    """Verifies signatures on `threads` worker threads; with 0, on the caller's
    thread (the event loop), as a plain function call."""

    def __init__(self, threads: int) -> None:
        assert threads >= 0
        self._executor = (
            ThreadPoolExecutor(max_workers=threads, thread_name_prefix="timebank-verify")
            if threads > 0
            else None
        )

    async def verify(
        self,
        algorithm: intents.KeyAlgorithm,
        public_key: bytes,
        message: bytes,
        signature: bytes,
    ) -> bool:
        """True only for a well-formed key and a valid signature; never raises on bad
        bytes (`intents.verify_signature`)."""
        if self._executor is None:
            return intents.verify_signature(algorithm, public_key, message, signature)
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, intents.verify_signature, algorithm, public_key, message, signature
        )

    def close(self) -> None:
        """Waits for the verifications under way; no more may be asked after."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
