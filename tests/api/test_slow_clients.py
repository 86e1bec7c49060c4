"""Slow and many clients do not exhaust the service: a request head sent slowly
(slowloris) is cut after the idle timeout, a body sent slowly is answered 408
after the body timeout, and connections beyond the limit are turned away at once
with a 503, the service answering again as soon as some are gone. The service is
served as `timebank serve` serves it, on a real loopback socket."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from timebank.api.listener import LINGERING_TIME_S, ConnectionLimitedSite, make_runner
from timebank.app import create_app
from timebank.settings import Settings

IDLE_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 1.0
CONNECTIONS_MAX = 5
DRIP_INTERVAL_S = 0.2
# Timers fire on the event loop's clock; allow for a loaded machine.
SLACK_S = 3.0

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@contextlib.asynccontextmanager
async def serving(settings: Settings, **changes: Any) -> AsyncIterator[int]:
    """The application behind the service's own listener on a free port."""
    changed = settings.model_copy(update=changes)
    runner = make_runner(create_app(changed), changed)
    await runner.setup()
    try:
        site = ConnectionLimitedSite(
            runner, "127.0.0.1", 0, connections_max=changed.http_connections_max
        )
        await site.start()
        yield site.port
    finally:
        await runner.cleanup()


async def until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the service sends until it closes the connection."""
    received = b""
    with contextlib.suppress(ConnectionError):
        while chunk := await reader.read(65536):
            received += chunk
    return received


async def drip(writer: asyncio.StreamWriter, closed: asyncio.Task[bytes]) -> None:
    """One byte of header after another, slowly, until the service hangs up."""
    while not closed.done():
        with contextlib.suppress(ConnectionError):
            writer.write(b"X")
            await writer.drain()
        await asyncio.sleep(DRIP_INTERVAL_S)


def status_and_body(answer: bytes) -> tuple[int, dict[str, str], Any]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), headers, json.loads(body) if body else None


async def get(port: int, path: str) -> tuple[int, dict[str, str], Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
    answer = await until_closed(reader)
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status, headers, _ = status_and_body(head + b"\r\n\r\n")
    return status, headers, body


async def test_a_request_head_sent_slowly_is_cut_after_the_idle_timeout(
    api_settings: Settings,
) -> None:
    """A client that keeps sending its headers a byte at a time never completes a
    request: the connection is closed about the idle timeout after it opened, with
    no answer, though bytes kept coming."""
    async with serving(
        api_settings, http_idle_timeout_s=IDLE_TIMEOUT_S, http_body_timeout_s=60
    ) as port:
        loop = asyncio.get_running_loop()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        opened = loop.time()
        writer.write(b"GET /health/live HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        closed = asyncio.create_task(until_closed(reader))
        await asyncio.wait_for(
            asyncio.gather(closed, drip(writer, closed)), IDLE_TIMEOUT_S + SLACK_S
        )
        assert closed.result() == b""
        assert loop.time() - opened >= IDLE_TIMEOUT_S * 0.9
        writer.close()


async def test_a_body_sent_slowly_is_answered_408_and_the_connection_closed(
    api_settings: Settings,
) -> None:
    """Headers promptly, then the body a byte at a time: past the body timeout the
    service answers 408 request_timeout and closes the connection (after reading
    the rest for the short lingering time only)."""
    async with serving(
        api_settings, http_idle_timeout_s=60, http_body_timeout_s=BODY_TIMEOUT_S
    ) as port:
        loop = asyncio.get_running_loop()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /v1/auth/token HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n{"
        )
        sent_at = loop.time()
        closed = asyncio.create_task(until_closed(reader))
        dripping = asyncio.create_task(drip(writer, closed))
        await asyncio.wait_for(asyncio.shield(closed), BODY_TIMEOUT_S + LINGERING_TIME_S + SLACK_S)
        await dripping
        status, headers, body = status_and_body(closed.result())
        assert (status, body["code"], headers["Connection"]) == (408, "request_timeout", "close")
        assert loop.time() - sent_at >= BODY_TIMEOUT_S * 0.9
        writer.close()


async def test_connections_beyond_the_limit_are_turned_away_until_some_are_gone(
    api_settings: Settings,
) -> None:
    """With the limit held by clients that send nothing, one more connection is
    answered 503 too_many_connections with Retry-After at once, and counted; once
    two of them leave, requests are served again."""
    async with serving(
        api_settings, http_idle_timeout_s=60, http_connections_max=CONNECTIONS_MAX
    ) as port:
        held: list[Streams] = []
        for _ in range(CONNECTIONS_MAX):
            held.append(await asyncio.open_connection("127.0.0.1", port))
            # Let the service take it before the next one.
            await asyncio.sleep(0.05)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        answer = await asyncio.wait_for(until_closed(reader), SLACK_S)
        writer.close()
        status, headers, body = status_and_body(answer)
        assert (status, body["code"], headers["Retry-After"]) == (503, "too_many_connections", "1")
        for _, held_writer in held[:2]:
            held_writer.close()
            await held_writer.wait_closed()
        await asyncio.sleep(0.1)
        assert (await get(port, "/health/live"))[0] == 200
        status, _, metrics = await get(port, "/metrics")
        assert status == 200
        assert b"timebank_http_connections_turned_away_total 1.0" in metrics
        for _, held_writer in held[2:]:
            held_writer.close()
