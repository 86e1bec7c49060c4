"""Every request gets an id (echoed in X-Request-Id and bound to every log line it
causes), one access log line with its principal, status and duration, and errors
turned into problem documents."""

from __future__ import annotations

import asyncio
import os
import random
import re
import time

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from timebank.api.problems import error_problem, problem
from timebank.errors import TimebankError
from timebank.keys import SETTINGS
from timebank.metrics import METRICS
from timebank.settings import Settings

logger = structlog.get_logger("timebank.http")

REQUEST_ID_HEADER = "X-Request-Id"
# A caller's own request id is kept when it is short and plain; otherwise we make one.
REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
REQUEST_ID = web.RequestKey("request_id", str)
PRINCIPAL = web.RequestKey("principal", str)
ANONYMOUS = "anonymous"
BODY_TIMEOUT_DEFAULT_S = Settings.model_fields["http_body_timeout_s"].default


# Request ids correlate log lines; they are not secrets. A generator seeded once
# from the system's randomness makes them without a system call each (uuid4 read
# the kernel's random source for every request: 4 to 6 us of a request's CPU).
_REQUEST_IDS = random.Random()  # noqa: S311 (not a secret, see above)
# A forked child must not repeat its parent's ids.
os.register_at_fork(after_in_child=_REQUEST_IDS.seed)


def _request_id(request: web.Request) -> str:
    given = request.headers.get(REQUEST_ID_HEADER, "")
    return given if REQUEST_ID_PATTERN.match(given) else _new_request_id()


def _new_request_id() -> str:
    return f"{_REQUEST_IDS.getrandbits(128):032x}"


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = _request_id(request)
    request[REQUEST_ID] = request_id
    request[PRINCIPAL] = ANONYMOUS
    started = time.perf_counter()
    status = 500
    # Bound by its token and reset to what it was after (bound_contextvars read
    # the whole context first, on every request).
    bound = structlog.contextvars.bind_contextvars(request_id=request_id)
    try:
        response = await _answer(request, handler, request_id)
        status = response.status
        response.headers[REQUEST_ID_HEADER] = request_id
        return response
    finally:
        try:
            duration_s = time.perf_counter() - started
            logger.info(
                "request",
                method=request.method,
                path=request.path,
                status=status,
                principal=request[PRINCIPAL],
                duration_ms=round(duration_s * 1000, 2),
            )
        finally:
            structlog.contextvars.reset_contextvars(**bound)
        metrics = request.app.get(METRICS)
        if metrics is not None:
            metrics.observe_request(request.method, _route(request), status, duration_s)


def _route(request: web.Request) -> str:
    """The route's template (bounded label values), not the path."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


class RequestTimeout(TimebankError):
    """The body did not arrive within the body timeout (a slow client)."""

    code = "request_timeout"
    title = "The request body took too long"


async def _read_body(request: web.Request) -> None:
    """Reads the whole body now, within the body timeout, so that a client sending
    it slowly holds its connection for a bounded time (handlers then read it from
    memory; its size is bounded by the application's client_max_size)."""
    if not request.body_exists:
        return
    if request.content.is_eof():
        # It came whole with the head (most bodies do): nothing to wait for.
        await request.read()
        return
    settings = request.app.get(SETTINGS)
    timeout_s = settings.http_body_timeout_s if settings is not None else BODY_TIMEOUT_DEFAULT_S
    try:
        async with asyncio.timeout(timeout_s):
            await request.read()
    except TimeoutError:
        raise RequestTimeout(
            f"the body did not arrive within {timeout_s:g} s", timeout_s=timeout_s
        ) from None


async def _answer(request: web.Request, handler: Handler, request_id: str) -> web.StreamResponse:
    try:
        await _read_body(request)
        return await handler(request)
    except RequestTimeout as error:
        # What is left of the body is not waited for: the connection ends here.
        response = error_problem(error, request_id=request_id)
        response.force_close()
        return response
    except TimebankError as error:
        return error_problem(error, request_id=request_id)
    except web.HTTPRequestEntityTooLarge as error:
        return problem(
            "payload_too_large",
            "The request body is too large",
            error.text or "",
            request_id=request_id,
        )
    except web.HTTPNotFound:
        return problem(
            "not_found", "Not found", f"nothing at {request.path}", request_id=request_id
        )
    except web.HTTPMethodNotAllowed as error:
        return problem(
            "method_not_allowed",
            "Method not allowed",
            f"{request.method} is not allowed on {request.path}",
            request_id=request_id,
            headers={"Allow": ", ".join(sorted(error.allowed_methods))},
        )
    except web.HTTPException:
        raise
    except Exception:
        # A bug: the client learns only the request id; the log has the rest.
        logger.exception("unhandled_error", method=request.method, path=request.path)
        return problem(
            "internal_error",
            "Internal error",
            "the service failed to answer; the request id identifies it in the logs",
            request_id=request_id,
        )
