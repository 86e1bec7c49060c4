"""The `timebank` command: serve, migrate, check, demo, backup, restore, audit."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError as SettingsValidationError

from timebank.app import serve, signing_keys_directory
from timebank.auth.service import IdentityService
from timebank.auth.signing_keys import KeyRing
from timebank.backup import BackupError, create_backup, default_backup_path, restore_backup
from timebank.database import DatabaseError
from timebank.demo import create_demo_community
from timebank.errors import TimebankError
from timebank.ledger.invariants import InvariantViolation, check_invariants
from timebank.ledger.store import LedgerStore
from timebank.log.audit import BundleError, check_logs, export_bundle, verify_bundle
from timebank.logging import configure_logging
from timebank.migrations import MigrationError, migrated_database
from timebank.policies.invariants import ALL_INVARIANT_QUERIES
from timebank.policies.store import PolicyStore
from timebank.settings import Settings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

T = TypeVar("T")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="timebank",
        description="A double-entry ledger of hours and local-currency credits.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in (
        ("serve", "apply migrations and serve HTTP"),
        ("demo", "create a demo community (once) and serve it"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--host", help="address to listen on (default: TIMEBANK_HOST)")
        command.add_argument("--port", type=int, help="port to listen on (default: TIMEBANK_PORT)")
    commands.add_parser("migrate", help="apply the database migrations")
    admin = commands.add_parser("admin", help="administration").add_subparsers(
        dest="admin_command", required=True, metavar="ADMIN_COMMAND"
    )
    operator = admin.add_parser(
        "create-operator", help="create a platform operator (exit 0 if the email exists)"
    )
    operator.add_argument("--email", required=True)
    operator.add_argument("--password", required=True)
    operator.add_argument("--name", default="Operator", help="display name")
    commands.add_parser(
        "check", help="verify the ledger's invariants and its log; exit 1 if any fails"
    )
    backup = commands.add_parser(
        "backup", help="write the database and the keys to one file (mode 0600)"
    )
    backup.add_argument(
        "--output", type=Path, help="file to write (default: timebank-backup-<UTC time>.tar)"
    )
    restore = commands.add_parser(
        "restore", help="restore a backup into an empty database, then check it"
    )
    restore.add_argument("backup", type=Path)
    restore.add_argument(
        "--force",
        action="store_true",
        help="replace the target database's content and any key of the same name",
    )
    audit = commands.add_parser("audit", help="export or verify a community's log").add_subparsers(
        dest="audit_command", required=True, metavar="AUDIT_COMMAND"
    )
    export = audit.add_parser("export", help="write a community's log bundle (JSON Lines)")
    export.add_argument("--community", required=True, help="the community's slug")
    export.add_argument("--output", type=Path, help="file to write (default: standard output)")
    verify = audit.add_parser("verify", help="verify a log bundle offline; exit 1 if it fails")
    verify.add_argument("bundle", type=Path)
    verify.add_argument("--jobs", type=int, help="worker processes (default: every core; 1: none)")
    verify.add_argument(
        "--earlier",
        type=Path,
        help="a checkpoint (signed note) kept from before: the log must extend it",
    )
    policies = commands.add_parser(
        "policies", help="periodic policies (demurrage, expiry, fees, donations, credit)"
    ).add_subparsers(dest="policies_command", required=True, metavar="POLICIES_COMMAND")
    run = policies.add_parser(
        "run", help="run every ended period not yet run, once (the service does it by itself)"
    )
    run.add_argument("--community", help="only this community's (slug)")
    return parser


async def _migrate(settings: Settings) -> int:
    async with migrated_database(settings) as (_, applied):
        pass
    names = ", ".join(f"{m.version:04d}_{m.name}" for m in applied) or "none (up to date)"
    print(f"migrations applied: {names}")
    return EXIT_OK


async def _create_operator(settings: Settings, email: str, password: str, name: str) -> int:
    async with migrated_database(settings) as (pool, _):
        keys = KeyRing.load_or_create(signing_keys_directory(settings))
        created = await IdentityService(pool, settings, keys).create_operator(email, password, name)
    print(f"operator {email} " + ("created" if created else "already exists"))
    return EXIT_OK


async def _check(settings: Settings) -> int:
    async with migrated_database(settings) as (pool, _), pool.acquire() as connection:
        violations = await check_invariants(connection, ALL_INVARIANT_QUERIES)
        violations += await check_logs(connection)
    return _report(violations)


def _report(violations: list[InvariantViolation]) -> int:
    if not violations:
        print("ledger invariants hold")
        return EXIT_OK
    for violation in violations:
        print(f"invariant broken: {violation.describe()}")
    return EXIT_FAILED


async def _backup(settings: Settings, output: Path | None) -> int:
    summary = await create_backup(
        settings, output or default_backup_path(), signing_keys_directory(settings)
    )
    print(
        f"backup written to {summary.path} ({summary.size_bytes:,} bytes, mode 0600):"
        f" the database (PostgreSQL {summary.server_major_version})"
        f" and {summary.key_files} key files; it holds secrets: store it encrypted"
    )
    if summary.key_files == 0:
        print(
            f"timebank: warning: no keys in {signing_keys_directory(settings)}",
            file=sys.stderr,
        )
    return EXIT_OK


async def _restore(settings: Settings, backup: Path, force: bool) -> int:
    summary = await restore_backup(settings, backup, signing_keys_directory(settings), force=force)
    replaced = " (its previous content replaced)" if summary.replaced else ""
    print(
        f"restored {backup} into the database{replaced}"
        f" and {summary.key_files} key files into {signing_keys_directory(settings)}"
    )
    if summary.key_files == 0:
        print(
            "timebank: warning: the backup holds no keys: the next log checkpoints will be"
            " signed with new keys that auditors do not know; restore the old keys first",
            file=sys.stderr,
        )
    return _report(summary.violations)


async def _export(settings: Settings, slug: str, output: Path | None) -> int:
    async with migrated_database(settings) as (pool, _), pool.acquire() as connection:
        if output is None:
            size = await export_bundle(connection, slug, sys.stdout)
        else:
            with output.open("w", encoding="utf-8") as file:
                size = await export_bundle(connection, slug, file)
    print(f"exported {size} log entries of {slug}", file=sys.stderr)
    return EXIT_OK


async def _run_policies(settings: Settings, slug: str | None) -> int:
    async with migrated_database(settings) as (pool, _):
        ledger = LedgerStore(pool, settings)
        community_id = (await ledger.community_by_slug(slug)).id if slug else None
        runs = await PolicyStore(pool, ledger).run_due(community_id=community_id)
    for run in runs:
        print(
            f"{run.schedule_id} {run.period_start}..{run.period_end}: {run.charged_count} charged,"
            f" {run.charged_total} in all, {run.unpaid_count} unpaid"
        )
    print(f"{len(runs)} period(s) run")
    return EXIT_OK


def _verify(bundle: Path, earlier: Path | None, jobs: int | None) -> int:
    """Offline: no database, no settings beyond the command line."""

    def progress(done: int, total: int) -> None:
        print(f"verified {done:,} of {total:,} entries", file=sys.stderr, flush=True)

    note = earlier.read_text(encoding="utf-8") if earlier is not None else None
    result = verify_bundle(bundle, earlier_checkpoint=note, progress=progress, jobs=jobs)
    if result.ok:
        print(
            f"log of {result.origin} verified: {result.size:,} entries,"
            f" {result.checkpoints_verified} signed checkpoints, {result.accounts:,} balances"
        )
        return EXIT_OK
    for problem in result.problems:
        print(f"verification failed: {problem}")
    return EXIT_FAILED


def _event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed (the service answers a third more
    requests per core with it), else asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run_on_service_loop(main: Coroutine[Any, Any, T]) -> T:
    """Runs `main` on the event loop the service runs on (uvloop's where installed):
    for the service, and for the benchmarks that measure its parts."""
    with asyncio.Runner(loop_factory=_event_loop_factory()) as runner:
        return runner.run(main)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    try:
        settings = Settings()
        overrides = {
            key: value
            for key in ("host", "port")
            if (value := getattr(arguments, key, None)) is not None
        }
        settings = settings.model_copy(update=overrides) if overrides else settings
    except SettingsValidationError as error:
        first = error.errors()[0]
        print(f"timebank: invalid setting {first['loc']}: {first['msg']}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(settings)
    try:
        if arguments.command == "migrate":
            return asyncio.run(_migrate(settings))
        if arguments.command == "check":
            return asyncio.run(_check(settings))
        if arguments.command == "backup":
            return asyncio.run(_backup(settings, arguments.output))
        if arguments.command == "restore":
            return asyncio.run(_restore(settings, arguments.backup, arguments.force))
        if arguments.command == "audit" and arguments.audit_command == "verify":
            return _verify(arguments.bundle, arguments.earlier, arguments.jobs)
        if arguments.command == "audit":
            return asyncio.run(_export(settings, arguments.community, arguments.output))
        if arguments.command == "policies":
            return asyncio.run(_run_policies(settings, arguments.community))
        if arguments.command == "admin":
            return asyncio.run(
                _create_operator(settings, arguments.email, arguments.password, arguments.name)
            )
        prepare = create_demo_community if arguments.command == "demo" else None
        run_on_service_loop(serve(settings, prepare=prepare))
        return EXIT_OK
    except (
        DatabaseError,
        MigrationError,
        TimebankError,
        OSError,
        BundleError,
        BackupError,
    ) as error:
        print(f"timebank: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_OK
