"""Fault scenarios get a fresh database on the suite's server (the embedded one, or
the one DATABASE_URL names), dropped after each; their figures are printed at the
end of the run (tests/conftest.py's summary lines; and as they come with -s)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest

from tests.faults.records import Figures
from tests.summary import summary_line
from timebank.database import with_database_name

FIGURES_SECTION = "fault injection figures"
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
    """Prints a scenario's figures now and gives them to the run's summary."""

    def report(figures: Figures) -> None:
        for line in (figures.line(), *(f"  {note}" for note in figures.notes[:NOTES_SHOWN_MAX])):
            print(line)
            request.node.user_properties.append(summary_line(FIGURES_SECTION, line))

    return report
