"""Where HTTP connections come in, with limits on what slow or many clients may
hold: a connection must send a complete request head within the idle timeout
(of opening, or of its previous answer), a body within the body timeout (see the
request middleware), and beyond a number of open connections new ones are turned
away at once with a 503."""

from __future__ import annotations

import asyncio
import json
from http import HTTPStatus

from aiohttp import web

from timebank.api.problems import PROBLEM_TYPE_BASE, RETRY_AFTER_S
from timebank.metrics import METRICS
from timebank.settings import Settings

TOO_MANY_CONNECTIONS = "too_many_connections"
# After answering a request whose body was not all read, how long the rest is
# read (so that the client sees the answer rather than a reset) before the
# connection is closed: aiohttp's 10 s would let a slow client hold it longer.
LINGERING_TIME_S = 2.0


def _turned_away_response() -> bytes:
    """A whole HTTP/1.1 answer, written before reading anything: 503, a problem
    document, Retry-After, and the connection closed."""
    body = json.dumps(
        {
            "type": PROBLEM_TYPE_BASE + TOO_MANY_CONNECTIONS,
            "title": "Too many connections",
            "status": int(HTTPStatus.SERVICE_UNAVAILABLE),
            "detail": "the service holds as many connections as it takes; retry later",
            "code": TOO_MANY_CONNECTIONS,
        }
    ).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/problem+json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Retry-After: {RETRY_AFTER_S}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


TURNED_AWAY_RESPONSE = _turned_away_response()


class _TurnedAway(asyncio.Protocol):
    """A connection beyond the limit: answered 503 and closed, its request unread."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(TURNED_AWAY_RESPONSE)
        transport.close()


def make_runner(app: web.Application, settings: Settings) -> web.AppRunner:
    """The application's runner: requests in flight get the shutdown grace; a
    connection without a complete request head within the idle timeout is closed;
    after an answer given before its body was read (413, 408), what is left of
    the body is read and dropped for a short while only."""
    return web.AppRunner(
        app,
        shutdown_timeout=settings.shutdown_grace_s,
        keepalive_timeout=settings.http_idle_timeout_s,
        lingering_time=LINGERING_TIME_S,
        access_log=None,
    )


class ConnectionLimitedSite(web.BaseSite):
    """A TCP listener that serves at most `connections_max` connections at once
    (counted as the server holds them, so a burst accepted in one instant may
    pass the bound by that burst); the others are turned away."""

    def __init__(
        self, runner: web.AppRunner, host: str, port: int, *, connections_max: int
    ) -> None:
        super().__init__(runner)
        assert connections_max >= 1
        self._host = host
        self._port = port
        self._connections_max = connections_max
        self._app = runner.app

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def port(self) -> int:
        """The bound port (the one asked for, or the one given for 0)."""
        # asyncio's and uvloop's servers both have `sockets` (AbstractServer does not say).
        sockets = getattr(self._server, "sockets", None)
        if sockets:
            port: int = sockets[0].getsockname()[1]
            return port
        return self._port

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        metrics = self._app.get(METRICS)

        def protocol() -> asyncio.Protocol:
            if len(server.connections) >= self._connections_max:
                if metrics is not None:
                    metrics.connections_turned_away.inc()
                return _TurnedAway()
            return server()

        self._server = await asyncio.get_running_loop().create_server(
            protocol, self._host, self._port, reuse_address=True
        )
