"""`timebank backup` and `timebank restore`, run as an operator would, on a
database with real history: a community with members, transfers, pending and
reversed transactions, and a signed log checkpoint."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg

from tests.integration.test_cli import run_cli
from timebank.database import create_pool
from timebank.demo import DEMO_SLUG, create_demo_community
from timebank.ledger.models import TransactionRequest
from timebank.log.store import LogKeys, LogStore
from timebank.migrations import apply_migrations
from timebank.services import services_on
from timebank.settings import Settings

LOG_ORIGIN_PREFIX = "backup.test"


def log_store(pool: asyncpg.Pool, data_dir: Path) -> LogStore:
    """The log as the service keeps it: its keys under the data directory."""
    return LogStore(pool, LogKeys(data_dir / "keys" / "log"), LOG_ORIGIN_PREFIX)


async def database_with_history(uri: str, data_dir: Path) -> None:
    """The demo community, a checkpoint of its log, then a transfer after it (the
    log is ahead of its last checkpoint, as it is most of the time)."""
    settings = Settings(database_url=uri, database_pool_min_size=1, database_pool_max_size=4)
    pool = await create_pool(uri, settings)
    try:
        async with pool.acquire() as connection:
            await apply_migrations(connection)
        services = services_on(pool, settings)
        store = services.ledger
        await create_demo_community(services)
        community = await store.community_by_slug(DEMO_SLUG)
        assert await log_store(pool, data_dir).checkpoint(community.id, DEMO_SLUG) is not None
        rows = await pool.fetch(
            "SELECT a.id FROM accounts a JOIN units u ON u.id = a.unit_id"
            " JOIN parties p ON p.id = a.owner_id"
            " WHERE a.community_id = $1 AND u.code = 'H' AND p.kind = 'member'"
            " AND a.balance - 15 >= a.min_balance ORDER BY a.id LIMIT 2",
            community.id,
        )
        await store.post(
            TransactionRequest.transfer(
                id=uuid.uuid4(),
                community_id=community.id,
                unit_code="H",
                from_account=rows[0]["id"],
                to_account=rows[1]["id"],
                amount=15,
            )
        )
    finally:
        await pool.close()


async def ledger_state(uri: str) -> dict[str, Any]:
    """What a restore must keep: every balance, every transaction's state, the log's
    size and every checkpoint (size, root and signed note)."""
    connection = await asyncpg.connect(uri)
    try:
        balances = await connection.fetch("SELECT id, balance FROM accounts ORDER BY id")
        transactions = await connection.fetch("SELECT id, state FROM transactions ORDER BY id")
        checkpoints = await connection.fetch(
            "SELECT community_id, tree_size, root_hash, note FROM log_checkpoints"
            " ORDER BY community_id, tree_size"
        )
        log_size = await connection.fetchval("SELECT count(*) FROM log_entries")
    finally:
        await connection.close()
    return {
        "balances": [tuple(row) for row in balances],
        "transactions": [tuple(row) for row in transactions],
        "checkpoints": [tuple(row) for row in checkpoints],
        "log_size": log_size,
    }


def files_under(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Each file below `directory`: its content and permission bits."""
    return {
        path.relative_to(directory).as_posix(): (
            path.read_bytes(),
            stat.S_IMODE(path.stat().st_mode),
        )
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


async def backed_up_history(
    create_database: Callable[[], Awaitable[str]], tmp_path: Path
) -> tuple[str, Path, Path]:
    """A source database with history, its data directory and a backup of both."""
    source = await create_database()
    source_data = tmp_path / "source"
    await database_with_history(source, source_data)
    backup = tmp_path / "timebank.backup.tar"
    code, out, err = await run_cli(
        "backup", "--output", str(backup), database_url=source, data_dir=source_data
    )
    assert (code, err) == (0, ""), err
    assert out.startswith(f"backup written to {backup}")
    return source, source_data, backup


async def test_a_backup_restored_into_a_fresh_database_checks_with_the_same_ledger_and_log(
    create_database: Callable[[], Awaitable[str]], tmp_path: Path
) -> None:
    """The backup file is mode 0600; restored into a fresh database and another data
    directory, `check` passes with the same balances, transactions and checkpoints,
    the keys come back byte for byte (0600), and the next checkpoint is signed with
    the community's own log key (no second key appears in the log)."""
    source, source_data, backup = await backed_up_history(create_database, tmp_path)
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600

    target = await create_database()
    target_data = tmp_path / "target"
    code, out, err = await run_cli(
        "restore", str(backup), database_url=target, data_dir=target_data
    )
    assert (code, err) == (0, ""), err
    assert out.strip().endswith("ledger invariants hold")
    assert await ledger_state(target) == await ledger_state(source)
    restored_keys = files_under(target_data / "keys")
    assert restored_keys == files_under(source_data / "keys")
    assert {mode for _, mode in restored_keys.values()} == {0o600}

    settings = Settings(database_url=target, database_pool_min_size=1, database_pool_max_size=2)
    pool = await create_pool(target, settings)
    try:
        community_id = await pool.fetchval("SELECT id FROM communities WHERE slug = $1", DEMO_SLUG)
        checkpoint = await log_store(pool, target_data).checkpoint(community_id, DEMO_SLUG)
        assert checkpoint is not None
        assert checkpoint.tree_size == (await ledger_state(source))["log_size"]
        assert await pool.fetchval("SELECT count(*) FROM log_keys") == 1
    finally:
        await pool.close()
    code, out, _ = await run_cli("check", database_url=target, data_dir=target_data)
    assert (code, out.strip()) == (0, "ledger invariants hold")


async def test_restore_refuses_a_database_that_is_not_empty_unless_forced(
    create_database: Callable[[], Awaitable[str]], tmp_path: Path
) -> None:
    """Restoring over a database with tables is a one-line error and changes
    nothing; with --force the content is replaced by the backup's (what was added
    since is gone) and checks."""
    source, source_data, backup = await backed_up_history(create_database, tmp_path)
    backed_up = await ledger_state(source)
    await database_with_history_changed(source)
    code, out, err = await run_cli(
        "restore", str(backup), database_url=source, data_dir=source_data
    )
    assert code == 1
    assert err.startswith("timebank: error: the target database is not empty")
    assert len(err.strip().splitlines()) == 1
    changed = await ledger_state(source)
    assert changed["log_size"] == backed_up["log_size"] + 1

    code, out, err = await run_cli(
        "restore", str(backup), "--force", database_url=source, data_dir=source_data
    )
    assert (code, err) == (0, ""), err
    assert "its previous content replaced" in out
    assert out.strip().endswith("ledger invariants hold")
    assert await ledger_state(source) == backed_up


async def database_with_history_changed(uri: str) -> None:
    """One more logged change after the backup: a new unit in the demo community."""
    connection = await asyncpg.connect(uri)
    try:
        await connection.execute(
            "INSERT INTO units (community_id, code, name, kind, decimals,"
            " default_min_balance, default_max_balance)"
            " SELECT id, 'X', 'Extra', 'currency', 2, 0, 100 FROM communities WHERE slug = $1",
            DEMO_SLUG,
        )
    finally:
        await connection.close()


async def test_restoring_something_that_is_not_a_backup_is_a_one_line_error(
    create_database: Callable[[], Awaitable[str]], tmp_path: Path
) -> None:
    """A file that is not a Timebank backup, or a missing one, is refused on one
    line (exit 1) before the database is touched."""
    target = await create_database()
    not_a_backup = tmp_path / "notes.txt"
    not_a_backup.write_text("hello", encoding="utf-8")
    for path, expected in (
        (not_a_backup, f"timebank: error: {not_a_backup} is not a Timebank backup"),
        (tmp_path / "missing.tar", "timebank: error: [Errno 2] No such file or directory"),
    ):
        code, _, err = await run_cli("restore", str(path), database_url=target, data_dir=tmp_path)
        assert code == 1
        assert err.startswith(expected), err
        assert len(err.strip().splitlines()) == 1


async def test_backup_refuses_to_overwrite_a_file(
    create_database: Callable[[], Awaitable[str]], tmp_path: Path
) -> None:
    """An existing output file is never overwritten: a one-line error, the file kept."""
    uri = await create_database()
    existing = tmp_path / "existing.tar"
    existing.write_bytes(b"keep me")
    code, _, err = await run_cli(
        "backup", "--output", str(existing), database_url=uri, data_dir=tmp_path
    )
    assert (code, err.strip()) == (
        1,
        f"timebank: error: {existing} exists; choose another --output",
    )
    assert existing.read_bytes() == b"keep me"


async def test_backup_and_restore_with_the_embedded_server(tmp_path: Path) -> None:
    """Without DATABASE_URL both commands use the embedded server and the pg_dump
    and pg_restore its package ships; a restore into another data directory checks.
    What they print on stderr is log lines and their own messages: no warning of the
    packages starting the server (platformdirs warns, through pgserver, when
    XDG_RUNTIME_DIR is unset)."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key
        not in (
            "DATABASE_URL",
            "TIMEBANK_DATABASE_URL",
            "TIMEBANK_TEST_DATABASE_URL",
            "XDG_RUNTIME_DIR",
        )
    }
    environment["TIMEBANK_LOG_FORMAT"] = "json"
    backup = tmp_path / "embedded.tar"
    for arguments, data_dir in (
        (("migrate",), "source"),
        (("backup", "--output", str(backup)), "source"),
        (("restore", str(backup)), "target"),
    ):
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "timebank",
            *arguments,
            env={**environment, "TIMEBANK_DATA_DIR": str(tmp_path / data_dir)},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await process.communicate()
        assert process.returncode == 0, stderr.decode()
        for line in stderr.decode().splitlines():
            # A log line, or the command's own one-line message ("timebank: warning: ...").
            assert line.startswith("timebank: ") or isinstance(json.loads(line), dict), line
    assert stdout.decode().strip().endswith("ledger invariants hold")
    assert (tmp_path / "target" / "postgres").is_dir()
