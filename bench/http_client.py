"""A lean HTTP/1.1 client for the bench's load: keep-alive connections to one
server, one request at a time on each.

The HTTP bench runs its clients on the same cores as the service it measures.
aiohttp's client spent about 0.26 ms of CPU per request there (28 November, a
2-core machine), a third of what the service spent answering: that share of the
cores went to the load generator instead of the service. This client does only
what the bench needs: POST with a body, responses framed by Content-Length or
chunked, connections kept and reused.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

HEAD_MAX_BYTES = 64 * 1024


class ResponseError(ConnectionError):
    """The server's answer could not be read as HTTP/1.1."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def close(self) -> None:
        self.writer.close()


class KeepAliveClient:
    """POSTs to one host and port, over at most `connections_max` connections."""

    def __init__(self, host: str, port: int, connections_max: int) -> None:
        self._host = host
        self._port = port
        self._slots = asyncio.Semaphore(connections_max)
        self._idle: list[_Connection] = []

    @classmethod
    def for_url(cls, url: str, connections_max: int) -> KeepAliveClient:
        """A client of the server at `url` (http://host:port)."""
        address = urllib.parse.urlsplit(url)
        if address.scheme != "http" or address.hostname is None or address.port is None:
            raise ValueError(f"not an http://host:port address: {url}")
        return cls(address.hostname, address.port, connections_max)

    async def post(self, path: str, body: bytes, headers: Mapping[str, str]) -> Response:
        """Sends the request and reads the whole answer. A kept connection that the
        server has closed meanwhile is replaced once, before anything was read."""
        request = self._request(path, body, headers)
        async with self._slots:
            connection = self._idle.pop() if self._idle else None
            if connection is not None:
                try:
                    return await self._exchange(connection, request)
                except _ClosedBeforeAnswer:
                    pass  # the server closed it while it was idle: one new connection
            connection = await self._connect()
            try:
                return await self._exchange(connection, request)
            except _ClosedBeforeAnswer as error:
                raise ResponseError("the server closed the connection without an answer") from error

    async def close(self) -> None:
        for connection in self._idle:
            connection.close()
        self._idle.clear()

    async def _connect(self) -> _Connection:
        reader, writer = await asyncio.open_connection(self._host, self._port, limit=HEAD_MAX_BYTES)
        return _Connection(reader, writer)

    def _request(self, path: str, body: bytes, headers: Mapping[str, str]) -> bytes:
        lines = [
            f"POST {path} HTTP/1.1",
            f"Host: {self._host}:{self._port}",
            f"Content-Length: {len(body)}",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    async def _exchange(self, connection: _Connection, request: bytes) -> Response:
        try:
            connection.writer.write(request)
            status, keep_alive, body = await _read_response(connection.reader)
        except BaseException:
            connection.close()
            raise
        if keep_alive:
            self._idle.append(connection)
        else:
            connection.close()
        return Response(status, body)


class _ClosedBeforeAnswer(Exception):
    pass


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool, bytes]:
    """Status, whether the connection stays open, and the body."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as error:
        if not error.partial:
            raise _ClosedBeforeAnswer from error
        raise ResponseError("the answer ended inside its head") from error
    except (ConnectionResetError, BrokenPipeError) as error:
        raise _ClosedBeforeAnswer from error
    except asyncio.LimitOverrunError as error:
        raise ResponseError(f"the answer's head is over {HEAD_MAX_BYTES} bytes") from error
    status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
    version, _, rest = status_line.partition(" ")
    if not version.startswith("HTTP/1.") or not rest[:3].isdigit():
        raise ResponseError(f"not an HTTP/1.x status line: {status_line!r}")
    headers: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    connection_header = headers.get("connection", "").lower()
    keep_alive = (
        connection_header != "close" if version == "HTTP/1.1" else connection_header == "keep-alive"
    )
    try:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = await _read_chunked(reader)
        elif "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        else:
            body, keep_alive = await reader.read(), False  # framed by the connection's end
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as error:
        raise ResponseError(f"the answer's body is not as its head frames it: {error}") from error
    return int(rest[:3]), keep_alive, body


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            # Trailers, if any, up to the empty line.
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass
            return b"".join(chunks)
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)
