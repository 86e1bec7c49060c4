"""Fault scenarios get a fresh database on the suite's server (the embedded one, or
the one DATABASE_URL names), dropped after each; their figures are printed at the
end of the run (and as they come with -s)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest

from tests.faults.records import Figures
from timebank.database import with_database_name

FIGURES = pytest.StashKey[list[str]]()
NOTES_SHOWN_MAX = 5


@pytest.fixture
async def fault_database(database_server_uri: str) -> AsyncIterator[str]:
    """A fresh, empty database tb_faults_<random> for one scenario, dropped after it."""
    name = f"tb_faults_{secrets.token_hex(6)}"
    connection = await asyncpg.connect(database_server_uri)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    try:
        yield with_database_name(database_server_uri, name)
    finally:
        connection = await asyncpg.connect(database_server_uri)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()


@pytest.fixture
def report_figures(request: pytest.FixtureRequest) -> Callable[[Figures], None]:
    """Prints a scenario's figures now and keeps them for the run's summary."""
    lines = request.config.stash.setdefault(FIGURES, [])

    def report(figures: Figures) -> None:
        for line in (figures.line(), *(f"  {note}" for note in figures.notes[:NOTES_SHOWN_MAX])):
            print(line)
            lines.append(line)

    return report


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    lines = config.stash.get(FIGURES, [])
    if lines:
        terminalreporter.section("fault injection figures")
        for line in lines:
            terminalreporter.write_line(line)
