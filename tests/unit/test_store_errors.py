"""Database errors become named ledger errors in the store, never asyncpg's own."""

from __future__ import annotations

import asyncpg
import pytest

from timebank.ledger.errors import DatabaseUnavailable, LimitExceeded
from timebank.ledger.store import _translate


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.AdminShutdownError("terminating connection due to shutdown"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection does not exist"),
    ],
    ids=["starting-up", "admin-shutdown", "connection-gone"],
)
def test_an_unreachable_or_restarting_server_is_database_unavailable(
    error: asyncpg.PostgresError,
) -> None:
    """A restart or a lost connection is the retryable database_unavailable."""
    assert isinstance(_translate(error), DatabaseUnavailable)


def test_a_ledger_function_error_becomes_its_named_error() -> None:
    """SQLSTATE TB000 carries the code in its message and the context in its detail."""
    error = asyncpg.exceptions.PostgresError("limit_exceeded")
    error.sqlstate = "TB000"  # type: ignore[misc]
    error.message = "limit_exceeded"
    error.detail = '{"account_id": "a", "limit": "max_balance", "exceeded_by": 3}'
    translated = _translate(error)
    assert isinstance(translated, LimitExceeded)
    assert translated.context["exceeded_by"] == 3


def test_an_unknown_database_error_is_left_to_surface_as_a_bug() -> None:
    """Anything unexpected is not dressed up as a ledger refusal."""
    assert _translate(asyncpg.exceptions.DivisionByZeroError("division by zero")) is None
