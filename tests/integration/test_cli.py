"""The `timebank` command, run as a user would: as a separate process."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import asyncpg

from tests.integration.helpers import hours_unit, sound_ledger
from timebank.database import create_pool, database_uri
from timebank.ledger.models import PartyKind, TransactionRequest
from timebank.ledger.store import LedgerStore
from timebank.log.store import LogKeys, LogStore
from timebank.settings import Settings

STARTUP_TIMEOUT_S = 30.0


async def run_cli(
    *arguments: str, database_url: str, data_dir: Path | None = None
) -> tuple[int, str, str]:
    environment = {**os.environ, "DATABASE_URL": database_url, "TIMEBANK_LOG_FORMAT": "json"}
    if data_dir is not None:
        environment["TIMEBANK_DATA_DIR"] = str(data_dir)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "timebank",
        *arguments,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_migrate_is_idempotent(
    create_database: Callable[[], Awaitable[str]], tmp_path: Path
) -> None:
    """`timebank migrate` applies everything once, then reports it is up to date; with
    DATABASE_URL set it never starts an embedded server."""
    uri = await create_database()
    code, out, _ = await run_cli("migrate", database_url=uri, data_dir=tmp_path)
    assert not (tmp_path / "postgres").exists(), "an embedded server was started"
    assert code == 0
    assert "0001_ledger_schema" in out
    code, out, _ = await run_cli("migrate", database_url=uri)
    assert (code, out.strip()) == (0, "migrations applied: none (up to date)")


async def test_check_passes_on_a_sound_ledger_and_names_a_broken_invariant(
    create_database: Callable[[], Awaitable[str]],
) -> None:
    """`timebank check` exits 0 when every invariant holds, and 1 naming each broken one."""
    uri = await create_database()
    pool, (_, second_account), _ = await sound_ledger(uri)
    try:
        code, out, _ = await run_cli("check", database_url=uri)
        assert (code, out.strip()) == (0, "ledger invariants hold")

        # Someone edits a balance behind the ledger's back.
        await pool.execute(
            "UPDATE accounts SET balance = balance + 7 WHERE id = $1", second_account
        )
        code, out, _ = await run_cli("check", database_url=uri)
        assert code == 1
        assert "invariant broken: balances_sum_to_zero_per_unit" in out
        assert "invariant broken: balance_equals_sum_of_postings" in out
        assert str(second_account) in out
    finally:
        await pool.close()


async def test_create_operator_is_idempotent(
    create_database: Callable[[], Awaitable[str]], tmp_path: Path
) -> None:
    """`timebank admin create-operator` creates once, then says it exists; exit 0 both."""
    uri = await create_database()
    arguments = ("admin", "create-operator", "--email", "op@example.org", "--password", "x" * 12)
    code, out, _ = await run_cli(*arguments, database_url=uri, data_dir=tmp_path)
    assert (code, out.strip()) == (0, "operator op@example.org created")
    code, out, _ = await run_cli(*arguments, database_url=uri, data_dir=tmp_path)
    assert (code, out.strip()) == (0, "operator op@example.org already exists")
    code, _, err = await run_cli(
        "admin",
        "create-operator",
        "--email",
        "weak@example.org",
        "--password",
        "short",
        database_url=uri,
        data_dir=tmp_path,
    )
    assert code == 1
    assert err.strip().startswith("timebank: error: a password has")


async def test_unreachable_database_is_a_one_line_error() -> None:
    """A database that cannot be reached gives one clear line and exit code 1."""
    code, _out, err = await run_cli(
        "check", database_url="postgresql://nobody@127.0.0.1:1/none?connect_timeout=2"
    )
    assert code == 1
    assert err.strip().startswith("timebank: error: cannot connect to the database")
    assert len(err.strip().splitlines()) == 1


async def test_invalid_setting_is_a_one_line_usage_error(
    create_database: Callable[[], Awaitable[str]],
) -> None:
    """A malformed setting is named on one line, exit code 2."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "timebank",
        "check",
        env={**os.environ, "TIMEBANK_PORT": "eighty"},
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await process.communicate()
    assert process.returncode == 2
    assert stderr.decode().strip().startswith("timebank: invalid setting ('port',)")


async def test_demo_serves_health_and_stops_cleanly_on_sigterm(
    create_database: Callable[[], Awaitable[str]],
) -> None:
    """`timebank demo` migrates, creates the demo community once (with a pool, its
    levy and a paid request, gonettes backed by euros, a demurrage schedule),
    serves /health, and exits 0 on SIGTERM; a second run finds the community and
    adds nothing. The first run shows the demo people's logins once, and they work."""
    uri = await create_database()
    for run in range(2):
        port = free_port()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "timebank",
            "demo",
            "--port",
            str(port),
            env={**os.environ, "DATABASE_URL": uri, "TIMEBANK_LOG_FORMAT": "json"},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with aiohttp.ClientSession() as session:
                ready = await wait_until_ready(session, f"http://127.0.0.1:{port}")
                assert ready == {"status": "ok", "database": "ok"}
                async with session.get(f"http://127.0.0.1:{port}/health/live") as response:
                    assert response.status == 200
                if run == 0:
                    await demo_login_works(session, f"http://127.0.0.1:{port}", process)
        finally:
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), timeout=15) == 0
    connection = await asyncpg.connect(uri)
    try:
        counts = await connection.fetchrow(
            "SELECT (SELECT count(*) FROM communities) AS communities,"
            "       (SELECT count(*) FROM transactions) AS transactions,"
            "       (SELECT count(*) FROM transactions WHERE state = 'pending') AS pending,"
            "       (SELECT count(*) FROM transactions WHERE kind = 'reversal') AS reversals,"
            "       (SELECT count(*) FROM pool_grants) AS grants,"
            "       (SELECT count(*) FROM levy_rules) AS levies,"
            "       (SELECT reserve FROM currency_reserves) AS reserve,"
            "       (SELECT count(*) FROM policy_schedules) AS schedules"
        )
        assert counts is not None
        assert dict(counts) == {
            "communities": 1,
            "transactions": 9,
            "pending": 1,
            "reversals": 1,
            "grants": 1,
            "levies": 1,
            "reserve": 5_000,
            "schedules": 1,
        }
    finally:
        await connection.close()
    code, out, _ = await run_cli("check", database_url=uri)
    assert (code, out.strip()) == (0, "ledger invariants hold")


async def demo_login_works(
    session: aiohttp.ClientSession, base_url: str, process: asyncio.subprocess.Process
) -> None:
    assert process.stdout is not None
    shown = ""
    while "password (shown only now)" not in shown:
        line = await asyncio.wait_for(process.stdout.readline(), timeout=STARTUP_TIMEOUT_S)
        assert line, f"the demo ended its output without a password: {shown}"
        shown += line.decode()
    password = shown.rsplit(": ", 1)[1].strip()
    email = re.search(r"(alice@\S+)", shown)
    assert email is not None, shown
    login = {"grant_type": "password", "username": email.group(1), "password": password}
    async with session.post(f"{base_url}/v1/auth/token", data=login) as response:
        assert response.status == 200, await response.text()
        token = (await response.json())["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    async with session.get(f"{base_url}/v1/me", headers=headers) as response:
        me = await response.json()
    (membership,) = me["memberships"]
    assert (membership["community"], membership["role"]) == ("demo", "admin")
    async with session.get(f"{base_url}/v1/communities/demo/trial-balance", headers=headers) as r:
        assert (await r.json())["balanced"] is True


async def wait_until_ready(session: aiohttp.ClientSession, base_url: str) -> object:
    deadline = asyncio.get_running_loop().time() + STARTUP_TIMEOUT_S
    while True:
        try:
            async with session.get(f"{base_url}/health") as response:
                if response.status == 200:
                    return await response.json()
        except aiohttp.ClientConnectionError:
            pass
        assert asyncio.get_running_loop().time() < deadline, "the service never became ready"
        await asyncio.sleep(0.1)


async def test_embedded_server_starts_is_reused_and_stops(tmp_path: Path) -> None:
    """With no DATABASE_URL, an embedded PostgreSQL starts in the data directory, keeps
    its data for the next start, and is stopped when we are done."""
    settings = Settings(database_url=None, data_dir=tmp_path / "data")
    async with database_uri(settings) as uri:
        connection = await asyncpg.connect(uri)
        await connection.execute("CREATE TABLE kept (note text); INSERT INTO kept VALUES ('hi')")
        await connection.close()
    pid_file = tmp_path / "data" / "postgres" / "postmaster.pid"
    assert not pid_file.exists(), "the embedded server was left running"
    async with database_uri(settings) as uri:
        connection = await asyncpg.connect(uri)
        assert await connection.fetchval("SELECT note FROM kept") == "hi"
        await connection.close()
    assert not pid_file.exists()


async def test_audit_export_verify_and_check_catch_a_rewrite(
    create_database: Callable[[], Awaitable[str]], tmp_path: Path
) -> None:
    """`audit export` writes a bundle that `audit verify` accepts offline; after an
    entry is rewritten in SQL, `check` names the log and `audit verify` fails."""
    uri = await create_database()
    assert (await run_cli("migrate", database_url=uri))[0] == 0
    settings = Settings(database_url=uri, data_dir=tmp_path)
    pool = await create_pool(uri, settings)
    try:
        store = LedgerStore(pool, settings)
        community = await store.create_community("audited", "Audited")
        unit = await hours_unit(store, community.id)
        accounts = [
            await store.open_account(
                community.id,
                owner_id=(await store.create_party(community.id, PartyKind.MEMBER, name)).id,
                unit_id=unit.id,
            )
            for name in ("ann", "ben")
        ]
        await store.post(
            TransactionRequest.transfer(
                id=uuid.uuid4(),
                community_id=community.id,
                unit_code="H",
                from_account=accounts[0].id,
                to_account=accounts[1].id,
                amount=45,
            )
        )
        log = LogStore(pool, LogKeys(tmp_path / "keys" / "log"), "cli.test")
        await log.checkpoint(community.id, community.slug)
        bundle = tmp_path / "bundle.jsonl"
        code, _, err = await run_cli(
            "audit", "export", "--community", "audited", "--output", str(bundle), database_url=uri
        )
        assert code == 0, err
        code, out, _ = await run_cli("audit", "verify", str(bundle), database_url="unused")
        assert (code, out.split(":")[0]) == (0, "log of cli.test/audited verified")
        async with pool.acquire() as connection, connection.transaction():
            await connection.execute("SET LOCAL session_replication_role = replica")
            await connection.execute(
                "UPDATE log_entries SET entry = convert_to(replace(convert_from(entry, 'UTF8'),"
                " ',45]', ',46]'), 'UTF8') WHERE community_id = $1",
                community.id,
            )
    finally:
        await pool.close()
    code, out, _ = await run_cli("check", database_url=uri)
    assert code == 1
    assert "invariant broken: log_matches_ledger: community=audited" in out
    code, _, _ = await run_cli(
        "audit", "export", "--community", "audited", "--output", str(bundle), database_url=uri
    )
    code, out, _ = await run_cli("audit", "verify", str(bundle), database_url="unused")
    assert code == 1
    assert out.startswith("verification failed: entry ")


async def test_policies_run_runs_due_periods_and_names_an_unknown_community(
    create_database: Callable[[], Awaitable[str]],
) -> None:
    """`timebank policies run` runs what is due (nothing in a new database) and an
    unknown community is a one-line error, exit 1."""
    uri = await create_database()
    code, out, _ = await run_cli("policies", "run", database_url=uri)
    assert (code, out.strip()) == (0, "0 period(s) run")
    code, _, err = await run_cli("policies", "run", "--community", "nowhere", database_url=uri)
    assert code == 1
    assert err.strip().startswith("timebank: error:")
    assert len(err.strip().splitlines()) == 1
