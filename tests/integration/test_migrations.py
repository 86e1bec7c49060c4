"""Migrations: in order, each in one transaction, recorded, idempotent, and safe
when two processes migrate the same database at once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from timebank.migrations import Migration, MigrationError, apply_migrations, load_migrations


async def test_fresh_database_gets_every_migration_once(
    create_database: Callable[[], Awaitable[str]],
) -> None:
    """The first run applies all migrations in order; the second applies none."""
    uri = await create_database()
    connection = await asyncpg.connect(uri)
    try:
        applied = await apply_migrations(connection)
        assert [m.version for m in applied] == [m.version for m in load_migrations()]
        assert await apply_migrations(connection) == []
        recorded = await connection.fetch("SELECT version FROM schema_migrations ORDER BY 1")
        assert [row["version"] for row in recorded] == [m.version for m in applied]
    finally:
        await connection.close()


async def test_two_concurrent_migrators_apply_each_migration_once(
    create_database: Callable[[], Awaitable[str]],
) -> None:
    """Two processes starting at once: the advisory lock lets one migrate, the other
    finds the work done, and neither fails."""
    uri = await create_database()
    connections = [await asyncpg.connect(uri) for _ in range(4)]
    try:
        results = await asyncio.gather(*(apply_migrations(c) for c in connections))
        assert sorted(len(applied) for applied in results) == [0, 0, 0, len(load_migrations())]
    finally:
        for connection in connections:
            await connection.close()


async def test_a_failing_migration_leaves_nothing_behind(
    create_database: Callable[[], Awaitable[str]],
) -> None:
    """Each migration is one transaction: a failure rolls it back and it is not recorded."""
    uri = await create_database()
    broken = [
        Migration(1, "first", "CREATE TABLE first_table (id int)"),
        Migration(2, "broken", "CREATE TABLE half_done (id int); SELECT no_such_function()"),
    ]
    connection = await asyncpg.connect(uri)
    try:
        with pytest.raises(asyncpg.UndefinedFunctionError):
            await apply_migrations(connection, broken)
        tables = await connection.fetch(
            "SELECT tablename FROM pg_tables WHERE tablename IN ('first_table', 'half_done')"
        )
        assert [row["tablename"] for row in tables] == ["first_table"]
        versions = await connection.fetch("SELECT version FROM schema_migrations")
        assert [row["version"] for row in versions] == [1]
    finally:
        await connection.close()


async def test_an_applied_migration_that_changed_is_refused(
    create_database: Callable[[], Awaitable[str]],
) -> None:
    """Editing an applied migration is an error; history is extended, not rewritten."""
    uri = await create_database()
    connection = await asyncpg.connect(uri)
    try:
        await apply_migrations(connection, [Migration(1, "first", "SELECT 1")])
        with pytest.raises(MigrationError, match="changed after it was applied"):
            await apply_migrations(connection, [Migration(1, "first", "SELECT 2")])
    finally:
        await connection.close()


def test_migration_files_are_numbered_without_gaps(tmp_path: Path) -> None:
    """Files are NNNN_name.sql numbered 1..n; a gap or an odd name is refused."""
    (tmp_path / "0001_first.sql").write_text("SELECT 1")
    (tmp_path / "0003_third.sql").write_text("SELECT 3")
    with pytest.raises(MigrationError, match="without gaps"):
        load_migrations(tmp_path)
    (tmp_path / "0003_third.sql").unlink()
    (tmp_path / "2_bad.sql").write_text("SELECT 2")
    with pytest.raises(MigrationError, match="not understood"):
        load_migrations(tmp_path)
