"""The HTTP edge: errors become RFC 9457 problem documents with stable codes, every
response carries its request id, and nothing internal leaks to a client."""

from __future__ import annotations

import os
import warnings
from collections.abc import AsyncIterator

import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from timebank.api.middleware import REQUEST_ID_HEADER, _new_request_id, request_context
from timebank.api.problems import PROBLEM_CONTENT_TYPE, all_codes, status_for
from timebank.ledger.errors import (
    ERRORS_BY_CODE,
    DatabaseUnavailable,
    LimitExceeded,
    UnknownAccount,
)

routes = web.RouteTableDef()


@routes.get("/limit")
async def limit(request: web.Request) -> web.Response:
    raise LimitExceeded(
        account_id="a1",
        limit="min_balance",
        limit_value=-600,
        available=-550,
        amount=-100,
        exceeded_by=50,
    )


@routes.get("/unknown")
async def unknown(request: web.Request) -> web.Response:
    raise UnknownAccount(account_id="a2")


@routes.get("/down")
async def down(request: web.Request) -> web.Response:
    raise DatabaseUnavailable("connection refused")


@routes.get("/bug")
async def bug(request: web.Request) -> web.Response:
    raise RuntimeError("SELECT secret FROM internals")


@routes.post("/echo")
async def echo(request: web.Request) -> web.Response:
    return web.Response(body=await request.read())


@routes.get("/narrate")
async def narrate(request: web.Request) -> web.Response:
    structlog.get_logger("test").info("narrated")
    return web.Response(text="ok")


@pytest.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = web.Application(client_max_size=1024, middlewares=[request_context])
    app.add_routes(routes)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def test_a_ledger_error_is_a_problem_document_with_its_context(
    client: TestClient[web.Request, web.Application],
) -> None:
    """limit_exceeded answers 409 problem+json with the code and what a person needs."""
    response = await client.get("/limit")
    assert response.status == 409
    assert response.content_type == PROBLEM_CONTENT_TYPE
    body = await response.json(content_type=None)
    assert body["code"] == "limit_exceeded"
    assert body["status"] == 409
    assert body["type"].endswith("/limit_exceeded")
    assert (body["account_id"], body["exceeded_by"]) == ("a1", 50)
    assert "exceeds it by 50" in body["detail"]
    assert body["request_id"] == response.headers[REQUEST_ID_HEADER]


async def test_an_unknown_reference_is_unprocessable(
    client: TestClient[web.Request, web.Application],
) -> None:
    """A request naming what does not exist is 422 with its named code."""
    response = await client.get("/unknown")
    body = await response.json(content_type=None)
    assert (response.status, body["code"], body["account_id"]) == (422, "unknown_account", "a2")


async def test_an_unavailable_database_is_a_retryable_503(
    client: TestClient[web.Request, web.Application],
) -> None:
    """database_unavailable is 503 with Retry-After: the client may retry by id."""
    response = await client.get("/down")
    assert response.status == 503
    assert response.headers["Retry-After"] == "1"
    assert (await response.json(content_type=None))["code"] == "database_unavailable"


async def test_a_bug_answers_500_without_leaking_anything(
    client: TestClient[web.Request, web.Application],
) -> None:
    """An unexpected exception is a bare internal_error carrying only the request id."""
    response = await client.get("/bug", headers={REQUEST_ID_HEADER: "trace-123"})
    text = await response.text()
    assert response.status == 500
    assert "SELECT" not in text
    assert "Traceback" not in text
    body = await response.json(content_type=None)
    assert (body["code"], body["request_id"]) == ("internal_error", "trace-123")


async def test_unknown_paths_and_methods_are_problems(
    client: TestClient[web.Request, web.Application],
) -> None:
    """404 not_found and 405 method_not_allowed (with Allow) are problem documents too."""
    missing = await client.get("/nowhere")
    assert (missing.status, (await missing.json(content_type=None))["code"]) == (
        404,
        "not_found",
    )
    wrong = await client.delete("/limit")
    assert wrong.status == 405
    assert (await wrong.json(content_type=None))["code"] == "method_not_allowed"
    assert "GET" in wrong.headers["Allow"]


async def test_a_body_over_the_limit_is_payload_too_large(
    client: TestClient[web.Request, web.Application],
) -> None:
    """Bodies are bounded: past the limit, 413 payload_too_large."""
    response = await client.post("/echo", data=b"x" * 4096)
    assert response.status == 413
    assert (await response.json(content_type=None))["code"] == "payload_too_large"


async def test_a_callers_request_id_is_kept_and_a_bad_one_replaced(
    client: TestClient[web.Request, web.Application],
) -> None:
    """A plain request id is echoed; anything else is replaced by one of ours."""
    kept = await client.get("/nowhere", headers={REQUEST_ID_HEADER: "abc-1"})
    assert kept.headers[REQUEST_ID_HEADER] == "abc-1"
    replaced = await client.get("/nowhere", headers={REQUEST_ID_HEADER: "bad id\u00e9" * 20})
    assert replaced.headers[REQUEST_ID_HEADER] != "bad id"
    assert len(replaced.headers[REQUEST_ID_HEADER]) == 32


async def test_a_requests_log_lines_carry_its_id(
    client: TestClient[web.Request, web.Application],
) -> None:
    """Every line a request causes, its access line included, names that request's
    id; the next request on the same connection names its own."""
    with structlog.testing.capture_logs(
        processors=[structlog.contextvars.merge_contextvars]
    ) as logs:
        first = await client.get("/narrate")
        second = await client.get("/narrate", headers={REQUEST_ID_HEADER: "second-1"})
    first_id = first.headers[REQUEST_ID_HEADER]
    assert second.headers[REQUEST_ID_HEADER] == "second-1"
    assert first_id != "second-1"
    assert [(entry["event"], entry.get("request_id")) for entry in logs] == [
        ("narrated", first_id),
        ("request", first_id),
        ("narrated", "second-1"),
        ("request", "second-1"),
    ]


async def test_our_request_ids_differ(
    client: TestClient[web.Request, web.Application],
) -> None:
    """Ids made here are 32 hexadecimal digits, none twice."""
    answers = [await client.get("/nowhere") for _ in range(50)]
    made = {answer.headers[REQUEST_ID_HEADER] for answer in answers}
    assert len(made) == 50
    assert all(len(made_id) == 32 and int(made_id, 16) >= 0 for made_id in made)


async def test_a_body_in_parts_is_read_whole(
    client: TestClient[web.Request, web.Application],
) -> None:
    """A body still arriving when the handler starts is waited for (within the body
    timeout), as one that came whole with its head is read at once."""

    async def parts() -> AsyncIterator[bytes]:
        for part in (b"first ", b"second ", b"third"):
            yield part

    chunked = await client.post("/echo", data=parts())
    whole = await client.post("/echo", data=b"all at once")
    assert (chunked.status, await chunked.read()) == (200, b"first second third")
    assert (whole.status, await whole.read()) == (200, b"all at once")


def test_every_ledger_code_has_an_http_status() -> None:
    """The mapping is total: no code can reach the edge without a status."""
    for code in ERRORS_BY_CODE:
        assert 400 <= status_for(code) < 600
    assert all_codes()["limit_exceeded"] == 409
    assert all_codes()["validation_error"] == 422


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_process_makes_ids_of_its_own() -> None:
    """A child forked after the service module was loaded does not repeat the ids
    its parent goes on to make."""
    reading, writing = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12 warns of fork() in a process with threads; the child only
        # draws an id and writes it.
        warnings.simplefilter("ignore", DeprecationWarning)
        child = os.fork()
    if child == 0:  # pragma: no cover (the child reports through the pipe)
        os.write(writing, _new_request_id().encode())
        os._exit(0)
    os.close(writing)
    _, status = os.waitpid(child, 0)
    childs = os.read(reading, 64).decode()
    os.close(reading)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(childs) == 32
    assert childs != _new_request_id()
