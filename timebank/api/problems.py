"""Errors at the HTTP edge: every refusal is an RFC 9457 problem document
(`application/problem+json`) with a stable `code`. The ledger's codes map to HTTP
statuses here and nowhere else; no stack trace or SQL ever reaches a client."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from aiohttp import web

from timebank.errors import TimebankError
from timebank.ledger.errors import ERRORS_BY_CODE, DatabaseUnavailable
from timebank.pools.errors import POOL_ERRORS
from timebank.signing.errors import SIGNATURE_ERRORS

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://timebank.example/problems/"
RETRY_AFTER_S = 1

# The request is malformed or names what does not exist in this community.
UNPROCESSABLE = frozenset(
    {
        "validation_error",
        "amount_must_be_positive",
        "accounts_must_be_different",
        "postings_must_balance",
        "batch_too_large",
        "unit_mismatch",
        "unknown_community",
        "unknown_unit",
        "unknown_account",
        "unknown_transaction",
        "signature_malformed",
        "intent_wrong_ledger",
        "intent_expired",
        "intent_mismatch",
        "signature_invalid",
        "key_unknown",
        "key_not_allowed",
        "signature_required",
        "unknown_pool",
        "unknown_currency",
        "charter_invalid",
        "amount_too_small_for_levy",
        "invitation_invalid",
    }
)
# The request is sound but the ledger's present state refuses it.
CONFLICT = frozenset(
    {
        "limit_exceeded",
        "limits_conflict_with_balance",
        "account_frozen",
        "account_closed",
        "account_not_empty",
        "transaction_id_conflict",
        "not_pending",
        "not_posted",
        "not_reversible",
        "already_reversed",
        "already_exists",
        "key_revoked",
        "request_id_conflict",
        "request_not_open",
        "decision_conflict",
        "pool_cap_exceeded",
        "not_eligible",
    }
)
UNAVAILABLE = frozenset({DatabaseUnavailable.code})

STATUS_BY_CODE: dict[str, HTTPStatus] = {
    **dict.fromkeys(UNPROCESSABLE, HTTPStatus.UNPROCESSABLE_ENTITY),
    **dict.fromkeys(CONFLICT, HTTPStatus.CONFLICT),
    **dict.fromkeys(UNAVAILABLE, HTTPStatus.SERVICE_UNAVAILABLE),
}

# Codes of the HTTP edge itself, beside the ledger's.
EDGE_STATUS_BY_CODE: dict[str, HTTPStatus] = {
    "not_found": HTTPStatus.NOT_FOUND,
    "method_not_allowed": HTTPStatus.METHOD_NOT_ALLOWED,
    "unauthenticated": HTTPStatus.UNAUTHORIZED,
    "forbidden": HTTPStatus.FORBIDDEN,
    "rate_limited": HTTPStatus.TOO_MANY_REQUESTS,
    "payload_too_large": HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    "request_timeout": HTTPStatus.REQUEST_TIMEOUT,
    "unsupported_media_type": HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
    "too_many_connections": HTTPStatus.SERVICE_UNAVAILABLE,
    "internal_error": HTTPStatus.INTERNAL_SERVER_ERROR,
}


def status_for(code: str) -> HTTPStatus:
    """The HTTP status of a stable error code; every code has one."""
    status = STATUS_BY_CODE.get(code) or EDGE_STATUS_BY_CODE.get(code)
    assert status is not None, f"error code without an HTTP status: {code}"
    return status


def problem(
    code: str,
    title: str,
    detail: str,
    *,
    request_id: str | None = None,
    extensions: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    status = status_for(code)
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title,
        "status": int(status),
        "detail": detail,
        "code": code,
    }
    if request_id is not None:
        body["request_id"] = request_id
    for key, value in (extensions or {}).items():
        body.setdefault(key, value)
    response_headers = dict(headers or {})
    if status is HTTPStatus.SERVICE_UNAVAILABLE:
        response_headers.setdefault("Retry-After", str(RETRY_AFTER_S))
    if status is HTTPStatus.UNAUTHORIZED:
        response_headers.setdefault("WWW-Authenticate", 'Bearer realm="timebank"')
    return web.Response(
        status=int(status),
        text=json.dumps(body, default=str),
        content_type=PROBLEM_CONTENT_TYPE,
        headers=response_headers,
    )


def error_problem(error: TimebankError, *, request_id: str | None) -> web.Response:
    """A named error as a problem document; its context becomes extension members."""
    return problem(
        error.code,
        error.title,
        error.detail,
        request_id=request_id,
        extensions=error.context,
    )


EDGE_MEANINGS = {
    "not_found": "nothing at this path, or nothing you may know of",
    "method_not_allowed": "the path does not take this method",
    "unauthenticated": "no valid access token (or wrong credentials at the token endpoint)",
    "forbidden": "your role or scopes in this community do not allow it",
    "rate_limited": "too many attempts; retry after Retry-After seconds",
    "payload_too_large": "the body is larger than the service accepts",
    "request_timeout": "the body did not arrive within the body timeout; the connection is closed",
    "unsupported_media_type": "the body must be application/json",
    "too_many_connections": "the service holds as many connections as it takes; retry"
    " after Retry-After seconds (the answer comes before the request is read)",
    "internal_error": "a bug; the request id finds it in the logs",
}


def code_meanings() -> dict[str, str]:
    """Every stable code and what it means, for the API's documentation."""
    meanings = {
        code: (error.__doc__ or error.title).strip().splitlines()[0]
        for code, error in ERRORS_BY_CODE.items()
    }
    meanings.update(
        {
            code: (error.__doc__ or error.title).strip().splitlines()[0]
            for code, error in SIGNATURE_ERRORS.items()
        }
    )
    meanings.update(
        {
            error.code: (error.__doc__ or error.title).strip().splitlines()[0]
            for error in POOL_ERRORS
        }
    )
    meanings[DatabaseUnavailable.code] = (
        "the database is unreachable or was lost mid-call: the write may or may not have"
        " been made; retry with the same id after Retry-After seconds (never doubled)"
    )
    meanings.update(EDGE_MEANINGS)
    return meanings


def all_codes() -> dict[str, int]:
    """Every stable code the API can answer with, and its status (for the docs)."""
    codes = {code: int(status_for(code)) for code in ERRORS_BY_CODE}
    codes[DatabaseUnavailable.code] = int(status_for(DatabaseUnavailable.code))
    codes.update({code: int(status_for(code)) for code in SIGNATURE_ERRORS})
    codes.update({error.code: int(status_for(error.code)) for error in POOL_ERRORS})
    codes.update({code: int(status) for code, status in EDGE_STATUS_BY_CODE.items()})
    return codes
