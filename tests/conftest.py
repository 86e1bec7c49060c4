"""Test databases: the embedded PostgreSQL by default, or the server named by
TIMEBANK_TEST_DATABASE_URL, else by DATABASE_URL (e.g. the system PostgreSQL 15).
Either way each test session works in fresh databases of its own, dropped at the
end; nothing else on that server is touched."""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from tests.summary import SummaryLines
from timebank.database import create_pool, start_embedded_server, with_database_name
from timebank.ledger.models import Account, PartyKind, UnitKind
from timebank.ledger.store import LedgerStore
from timebank.migrations import apply_migrations
from timebank.settings import Settings

TEST_SERVER_URL_VARIABLE = "TIMEBANK_TEST_DATABASE_URL"
TIME_MIN_BALANCE = -600
TIME_MAX_BALANCE = 6_000
CURRENCY_MAX_BALANCE = 100_000
# pytest-xdist's modes that hand a worker whole files or scopes: they group tests by
# node id, and schemathesis's generated cases share one (tests/api/test_schemathesis.py),
# so all but one of them would silently not run.
GROUPING_DISTRIBUTIONS = frozenset({"loadfile", "loadscope", "loadgroup"})


def pytest_configure(config: pytest.Config) -> None:
    distribution = config.getoption("dist", default="no")
    if distribution in GROUPING_DISTRIBUTIONS:
        raise pytest.UsageError(
            f"--dist {distribution} would run one of the API contract's generated cases "
            "instead of all of them; use --dist worksteal (the default here), load, or -n 0"
        )
    config.pluginmanager.register(SummaryLines(), "timebank-summary-lines")


@pytest.fixture(scope="session")
def database_server_uri() -> Iterator[str]:
    """A PostgreSQL server to test against, as a URI to its maintenance database."""
    external = os.environ.get(TEST_SERVER_URL_VARIABLE) or os.environ.get("DATABASE_URL")
    if external:
        yield external
        return
    with tempfile.TemporaryDirectory(prefix="timebank-test-") as directory:
        server = start_embedded_server(Path(directory))
        try:
            yield with_database_name(server.uri, "postgres")
        finally:
            server.stop()


@pytest.fixture(scope="session")
def create_database(
    database_server_uri: str,
) -> Iterator[Callable[[], Awaitable[str]]]:
    """Makes fresh empty databases on the test server; drops them all at the end."""
    created: list[str] = []

    async def create() -> str:
        name = f"timebank_test_{secrets.token_hex(6)}"
        connection = await asyncpg.connect(database_server_uri)
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()
        created.append(name)
        return with_database_name(database_server_uri, name)

    yield create

    async def drop_all() -> None:
        connection = await asyncpg.connect(database_server_uri)
        try:
            for name in created:
                await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()

    asyncio.run(drop_all())


@pytest.fixture(scope="session")
async def database_uri(create_database: Callable[[], Awaitable[str]]) -> str:
    """The session's migrated database."""
    uri = await create_database()
    connection = await asyncpg.connect(uri)
    try:
        await apply_migrations(connection)
    finally:
        await connection.close()
    return uri


@pytest.fixture(scope="session")
def settings(database_uri: str) -> Settings:
    return Settings(
        database_url=database_uri,
        log_format="console",
        database_pool_min_size=2,
        database_pool_max_size=24,
    )


@pytest.fixture(scope="session")
async def pool(settings: Settings, database_uri: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_uri, settings)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
def store(pool: asyncpg.Pool, settings: Settings) -> LedgerStore:
    return LedgerStore(pool, settings)


@dataclass
class CommunityFixture:
    """A fresh community with an hour unit 'H' and a currency 'G', and helpers to
    open accounts in it."""

    store: LedgerStore
    id: uuid.UUID
    slug: str
    hours_unit_id: uuid.UUID
    currency_unit_id: uuid.UUID

    async def member_account(
        self,
        name: str = "member",
        *,
        currency: bool = False,
        min_balance: int | None = None,
        max_balance: int | None = None,
    ) -> Account:
        party = await self.store.create_party(self.id, PartyKind.MEMBER, name)
        return await self.store.open_account(
            self.id,
            owner_id=party.id,
            unit_id=self.currency_unit_id if currency else self.hours_unit_id,
            min_balance=min_balance,
            max_balance=max_balance,
        )


@pytest.fixture
def make_community(store: LedgerStore) -> Callable[[], Awaitable[CommunityFixture]]:
    async def make() -> CommunityFixture:
        slug = f"c-{secrets.token_hex(6)}"
        community = await store.create_community(slug, f"Community {slug}")
        hours = await store.create_unit(
            community.id,
            code="H",
            name="Hours",
            kind=UnitKind.TIME,
            decimals=0,
            default_min_balance=TIME_MIN_BALANCE,
            default_max_balance=TIME_MAX_BALANCE,
        )
        currency = await store.create_unit(
            community.id,
            code="G",
            name="Gonettes",
            kind=UnitKind.CURRENCY,
            decimals=2,
            default_min_balance=0,
            default_max_balance=CURRENCY_MAX_BALANCE,
        )
        return CommunityFixture(store, community.id, slug, hours.id, currency.id)

    return make


@pytest.fixture
async def community(
    make_community: Callable[[], Awaitable[CommunityFixture]],
) -> CommunityFixture:
    return await make_community()
