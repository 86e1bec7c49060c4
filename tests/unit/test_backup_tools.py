"""Choosing the PostgreSQL client tools for a backup, and handing them the URI."""

from __future__ import annotations

from pathlib import Path

import pytest

from timebank.backup import BackupError, PostgresTools, choose_tools, libpq_target


def test_the_oldest_pg_dump_at_least_as_new_as_the_server_is_chosen() -> None:
    """pg_dump reads servers up to its own version: for a PostgreSQL 15 server the
    15 tools win over 16 and 18; for 17 the 18 tools are the only fit."""
    available = {Path("/pg18/bin"): 18, Path("/pg15/bin"): 15, Path("/pg16/bin"): 16}
    assert choose_tools(15, available) == PostgresTools(Path("/pg15/bin"), 15)
    assert choose_tools(17, available) == PostgresTools(Path("/pg18/bin"), 18)


def test_no_fitting_pg_dump_is_one_clear_error() -> None:
    """A server newer than every pg_dump found is refused, naming what was found
    and how to fix it, on one line."""
    with pytest.raises(BackupError) as raised:
        choose_tools(19, {Path("/pg18/bin"): 18})
    message = str(raised.value)
    assert message == (
        "no pg_dump for PostgreSQL 19 or newer (found: 18 in /pg18/bin); install that"
        " version's client tools or set TIMEBANK_POSTGRES_BIN_DIR"
    )
    assert "\n" not in message


def test_the_password_goes_to_the_environment_not_the_command_line() -> None:
    """Another user can read a process's arguments: the password is taken out of
    the URI and given as PGPASSWORD; a URI without one is passed as it is."""
    assert libpq_target("postgresql://timebank:s%40cret@db:5432/timebank?sslmode=require") == (
        "postgresql://timebank@db:5432/timebank?sslmode=require",
        {"PGPASSWORD": "s@cret"},
    )
    socket_uri = "postgresql://postgres:@/timebank?host=/tmp/x"
    assert libpq_target(socket_uri) == (socket_uri, {})
