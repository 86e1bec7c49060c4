"""The `timebank` command: serve, migrate, check, demo."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence

from pydantic import ValidationError as SettingsValidationError

from timebank.app import serve, signing_keys_directory
from timebank.auth.service import IdentityService
from timebank.auth.signing_keys import KeyRing
from timebank.database import DatabaseError
from timebank.demo import create_demo_community
from timebank.errors import TimebankError
from timebank.ledger.invariants import check_invariants
from timebank.logging import configure_logging
from timebank.migrations import MigrationError, migrated_database
from timebank.settings import Settings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


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
    commands.add_parser("check", help="verify the ledger's invariants; exit 1 if any fails")
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
        violations = await check_invariants(connection)
    if not violations:
        print("ledger invariants hold")
        return EXIT_OK
    for violation in violations:
        print(f"invariant broken: {violation.describe()}")
    return EXIT_FAILED


def _event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed (the service answers a third more
    requests per core with it), else asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


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
        if arguments.command == "admin":
            return asyncio.run(
                _create_operator(settings, arguments.email, arguments.password, arguments.name)
            )
        prepare = create_demo_community if arguments.command == "demo" else None
        with asyncio.Runner(loop_factory=_event_loop_factory()) as runner:
            runner.run(serve(settings, prepare=prepare))
        return EXIT_OK
    except (DatabaseError, MigrationError, TimebankError, OSError) as error:
        print(f"timebank: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_OK
