"""Numbered plain-SQL migrations from `sql/`, applied in order, each in its own
transaction, recorded in `schema_migrations`, under an advisory lock so that two
processes starting at once apply each migration exactly once."""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import asyncpg
import structlog

from timebank.database import DatabaseConnection, close_pool, create_pool, database_uri
from timebank.settings import Settings

logger = structlog.get_logger(__name__)

# Arbitrary but fixed: the key of the advisory lock that serialises migrators.
MIGRATION_LOCK_KEY = 0x7469_6D65_6261_6E6B  # "timebank"
MIGRATION_FILE_PATTERN = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# How long a closing pool waits for connections in use before it cuts them.
POOL_CLOSE_TIMEOUT_S = 3.0

CREATE_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    sha256     text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(Exception):
    """The migrations on disk disagree with what the database has applied."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str = field(repr=False)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migrations_directory() -> Path:
    """`sql/` inside the installed package, else the source checkout's `sql/`."""
    packaged = Path(str(resources.files("timebank"))) / "sql"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "sql"


def load_migrations(directory: Path | None = None) -> list[Migration]:
    directory = directory or migrations_directory()
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = MIGRATION_FILE_PATTERN.match(path.name)
        if match is None:
            raise MigrationError(f"migration file name not understood: {path.name}")
        migrations.append(Migration(int(match[1]), match[2], path.read_text(encoding="utf-8")))
    versions = [migration.version for migration in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise MigrationError(f"migrations must be numbered 1..n without gaps, found {versions}")
    return migrations


async def apply_migrations(
    connection: DatabaseConnection, migrations: list[Migration] | None = None
) -> list[Migration]:
    """Applies the missing migrations; returns those it applied."""
    migrations = load_migrations() if migrations is None else migrations
    applied_now: list[Migration] = []
    await connection.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        await connection.execute(CREATE_MIGRATIONS_TABLE)
        rows = await connection.fetch("SELECT version, name, sha256 FROM schema_migrations")
        applied = {row["version"]: row for row in rows}
        for migration in migrations:
            if migration.version in applied:
                if applied[migration.version]["sha256"] != migration.sha256:
                    raise MigrationError(
                        f"migration {migration.version:04d}_{migration.name} was changed after "
                        "it was applied; add a new migration instead"
                    )
                continue
            async with connection.transaction():
                await connection.execute(migration.sql)
                await connection.execute(
                    "INSERT INTO schema_migrations (version, name, sha256) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.sha256,
                )
            logger.info("migration_applied", version=migration.version, name=migration.name)
            applied_now.append(migration)
        unknown = sorted(set(applied) - {migration.version for migration in migrations})
        if unknown:
            raise MigrationError(f"database has migrations this code does not know: {unknown}")
    finally:
        await connection.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
    return applied_now


@contextlib.asynccontextmanager
async def migrated_database(
    settings: Settings,
) -> AsyncIterator[tuple[asyncpg.Pool, list[Migration]]]:
    """A pool on the configured (or embedded) database, migrated, with the migrations
    this call applied; the pool (and an embedded server) close on exit."""
    async with database_uri(settings) as uri:
        pool = await create_pool(uri, settings)
        try:
            async with pool.acquire() as connection:
                applied = await apply_migrations(connection)
            yield pool, applied
        finally:
            await close_pool(pool, POOL_CLOSE_TIMEOUT_S)
