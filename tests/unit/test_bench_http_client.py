"""The HTTP bench's lean client (bench/http_client.py) against real servers on
loopback: aiohttp's, and raw ones for the answers aiohttp would not give."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from bench.http_client import KeepAliveClient, Response, ResponseError

RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def echo_server() -> AsyncIterator[tuple[int, list[str]]]:
    """An aiohttp server: POST /echo answers the body and headers it got (with a
    Content-Length), /chunked the same in chunks, /close then closes the
    connection; it also says which connection (peer port) each request came on."""
    peers: list[str] = []

    async def echo(request: web.Request) -> web.StreamResponse:
        peers.append(str(request.transport.get_extra_info("peername")[1]))  # type: ignore[union-attr]
        answer = {
            "body": (await request.read()).decode(),
            "authorization": request.headers.get("Authorization"),
            "content_type": request.headers.get("Content-Type"),
        }
        if request.path == "/chunked":
            response = web.StreamResponse(status=202)
            response.enable_chunked_encoding()
            await response.prepare(request)
            encoded = json.dumps(answer).encode()
            await response.write(encoded[:5])
            await response.write(encoded[5:])
            await response.write_eof()
            return response
        headers = {"Connection": "close"} if request.path == "/close" else {}
        return web.json_response(answer, status=201, headers=headers)

    app = web.Application()
    app.router.add_post("/{path:.*}", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield port, peers
    finally:
        await runner.cleanup()


async def raw_server(handle: RawHandler) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_posts_with_headers_and_body_and_reuses_its_connections(
    echo_server: tuple[int, list[str]],
) -> None:
    port, peers = echo_server
    client = KeepAliveClient("127.0.0.1", port, connections_max=2)
    headers = {"Authorization": "Bearer t", "Content-Type": "application/json"}
    try:
        bodies = [json.dumps({"n": n}) for n in range(5)]
        answers = [await client.post("/echo", body.encode(), headers) for body in bodies]
        chunked = await client.post("/chunked", b"{}", headers)
    finally:
        await client.close()

    assert [answer.status for answer in answers] == [201] * 5
    assert [json.loads(answer.body)["body"] for answer in answers] == bodies
    assert json.loads(answers[0].body)["authorization"] == "Bearer t"
    assert json.loads(answers[0].body)["content_type"] == "application/json"
    assert (chunked.status, json.loads(chunked.body)["body"]) == (202, "{}")
    assert len(set(peers)) == 1  # one after the other: one connection, kept


async def test_concurrent_posts_use_at_most_the_connections_allowed(
    echo_server: tuple[int, list[str]],
) -> None:
    port, peers = echo_server
    client = KeepAliveClient("127.0.0.1", port, connections_max=3)
    try:
        answers = await asyncio.gather(*(client.post("/echo", b"x", {}) for _ in range(30)))
    finally:
        await client.close()

    assert [answer.status for answer in answers] == [201] * 30
    assert 1 <= len(set(peers)) <= 3


async def test_a_connection_the_server_closes_is_not_reused(
    echo_server: tuple[int, list[str]],
) -> None:
    port, peers = echo_server
    client = KeepAliveClient("127.0.0.1", port, connections_max=1)
    try:
        first = await client.post("/close", b"a", {})
        second = await client.post("/echo", b"b", {})
    finally:
        await client.close()

    assert (first.status, second.status) == (201, 201)
    assert len(set(peers)) == 2


async def test_a_kept_connection_closed_while_idle_is_replaced_once() -> None:
    """The server answers one request per connection, keep-alive promised, then
    hangs up: the next request finds the kept connection closed and goes again
    on a new one."""
    served = 0

    async def one_then_hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(1)
        served += 1
        writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    server, port = await raw_server(one_then_hang_up)
    client = KeepAliveClient("127.0.0.1", port, connections_max=1)
    try:
        first = await client.post("/", b"a", {})
        await asyncio.sleep(0.05)
        second = await client.post("/", b"b", {})
    finally:
        await client.close()
        server.close()

    assert (first, second) == (Response(201, b"ok"), Response(201, b"ok"))
    assert served == 2


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"SMTP ready\r\n\r\n", "not an HTTP/1.x status line"),
        (b"HTTP/1.1 201 Created\r\nContent-Le", "ended inside its head"),
        (b"", "closed the connection without an answer"),
        (b"HTTP/1.1 201 Created\r\nContent-Length: 10\r\n\r\nok", "not as its head frames it"),
        (b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "not as its head"),
    ],
)
async def test_an_answer_that_is_not_http_is_a_response_error(answer: bytes, message: str) -> None:
    async def reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()

    server, port = await raw_server(reply)
    client = KeepAliveClient("127.0.0.1", port, connections_max=1)
    try:
        with pytest.raises(ResponseError, match=message):
            await client.post("/", b"", {})
    finally:
        await client.close()
        server.close()


async def test_for_url_takes_host_and_port_and_refuses_other_addresses(
    echo_server: tuple[int, list[str]],
) -> None:
    port, _ = echo_server
    client = KeepAliveClient.for_url(f"http://127.0.0.1:{port}", 4)
    try:
        assert (await client.post("/echo", b"", {})).status == 201
    finally:
        await client.close()
    for url in ("https://127.0.0.1:8080", "http://127.0.0.1", "127.0.0.1:8080"):
        with pytest.raises(ValueError, match="not an http://host:port address"):
            KeepAliveClient.for_url(url, 4)
