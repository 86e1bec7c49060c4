"""A ledger write, and a member's inbox, statement, directory page or invitations,
read the rows they touch by index, whatever the size of their community: no
statement scans every account, reservation or transaction of the community. The
ledger functions run generic plans, in which the planner takes an array argument
for ten elements; a join with such an array alone was planned as a hash join over a
sequential scan of the community's accounts, paid by every call and growing with
the community.

Counted with pg_stat_xact_user_tables, the current transaction's own scans and rows
read, in a database of its own whose statistics say the community is large."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date

import asyncpg
import pytest

from tests.integration.helpers import hours_unit, transfer
from timebank.auth import queries as auth_queries
from timebank.database import DatabaseConnection, create_pool
from timebank.ledger import queries
from timebank.ledger.models import (
    Account,
    PartyKind,
    TransactionState,
    default_reversal_id,
    reversal_fingerprint,
)
from timebank.ledger.store import JOURNAL_AFTER_LAST, SEQ_AFTER_LAST, LedgerStore
from timebank.migrations import apply_migrations
from timebank.policies import queries as policy_queries
from timebank.settings import Settings

# A community of the size the benchmarks use, where a join alone was planned as a
# scan of every account. Both PostgreSQL 15 and 18 find the index cheaper here with
# the `= ANY` conditions (for a few hundred accounts, they scan the few pages).
ACCOUNTS = 1_000
# Pending transfers between the community's other accounts, each holding two legs.
PENDING_TRANSFERS = 3_000
BATCH_SIZE_MAX = 1_000
OPENED_AT_ONCE = 20
SCANNED_TABLES = ["accounts", "holds", "transactions"]


@dataclass
class LargeCommunity:
    pool: asyncpg.Pool
    store: LedgerStore
    community_id: uuid.UUID
    accounts: list[Account]


@pytest.fixture(scope="module")
async def large_community(
    create_database: Callable[[], Awaitable[str]], settings: Settings
) -> AsyncIterator[LargeCommunity]:
    uri = await create_database()
    pool = await create_pool(uri, settings)
    try:
        async with pool.acquire() as connection:
            await apply_migrations(connection)
        store = LedgerStore(pool, settings)
        community = await store.create_community("large", "A large community")
        unit = await hours_unit(store, community.id)

        async def member_account(index: int) -> Account:
            party = await store.create_party(community.id, PartyKind.MEMBER, f"member {index}")
            return await store.open_account(community.id, owner_id=party.id, unit_id=unit.id)

        accounts: list[Account] = []
        for first in range(0, ACCOUNTS, OPENED_AT_ONCE):
            accounts += await asyncio.gather(
                *(member_account(index) for index in range(first, first + OPENED_AT_ONCE))
            )
        # Reservations all over the community, none on the first ten accounts.
        others = accounts[10:]
        pending = [
            transfer(
                community.id,
                others[index % len(others)],
                others[(index + 1) % len(others)],
                1,
                pending=True,
            )
            for index in range(PENDING_TRANSFERS)
        ]
        for first in range(0, PENDING_TRANSFERS, BATCH_SIZE_MAX):
            await store.post_atomic(pending[first : first + BATCH_SIZE_MAX])
        await pool.execute("ANALYZE")
        yield LargeCommunity(pool, store, community.id, accounts)
    finally:
        await pool.close()


async def sequential_scans(
    pool: asyncpg.Pool, call: Callable[[DatabaseConnection], Awaitable[object]]
) -> dict[str, int]:
    """The sequential scans of SCANNED_TABLES that `call` made, in a transaction."""
    return await _counted(pool, call, "seq_scan")


async def rows_read(
    pool: asyncpg.Pool,
    call: Callable[[DatabaseConnection], Awaitable[object]],
    tables: Sequence[str] = SCANNED_TABLES,
) -> dict[str, int]:
    """The rows of these tables that `call` read, by scan or by index."""
    return await _counted(pool, call, ROWS_READ, tables)


ROWS_READ = "seq_tup_read + coalesce(idx_tup_fetch, 0)"


async def _counted(
    pool: asyncpg.Pool,
    call: Callable[[DatabaseConnection], Awaitable[object]],
    counter: str,
    tables: Sequence[str] = SCANNED_TABLES,
) -> dict[str, int]:
    async with pool.acquire() as connection:
        return await _counted_on(connection, call, counter, tables)


async def _counted_on(
    connection: DatabaseConnection,
    call: Callable[[DatabaseConnection], Awaitable[object]],
    counter: str,
    tables: Sequence[str] = SCANNED_TABLES,
) -> dict[str, int]:
    async with connection.transaction():
        before = await _counters(connection, counter, tables)
        await call(connection)
        after = await _counters(connection, counter, tables)
    return {table: after[table] - before[table] for table in tables}


async def _counters(
    connection: DatabaseConnection, counter: str, tables: Sequence[str]
) -> dict[str, int]:
    rows = await connection.fetch(
        f"SELECT relname, {counter} AS counted FROM pg_stat_xact_user_tables"
        " WHERE relname = ANY ($1)",
        list(tables),
    )
    counted = {row["relname"]: row["counted"] for row in rows}
    return {table: counted.get(table, 0) for table in tables}


NO_SCANS = dict.fromkeys(SCANNED_TABLES, 0)
SWEEP_LIMIT = 1_000


async def test_statistics_see_a_large_community(large_community: LargeCommunity) -> None:
    """The premise of the tests below: the planner knows the tables' sizes."""
    estimates = {
        row["relname"]: row["reltuples"]
        for row in await large_community.pool.fetch(
            "SELECT relname, reltuples FROM pg_class WHERE relname = ANY ($1)", SCANNED_TABLES
        )
    }
    assert estimates == {
        "accounts": ACCOUNTS,
        "holds": 2 * PENDING_TRANSFERS,
        "transactions": PENDING_TRANSFERS,
    }


async def test_a_coalesced_call_scans_no_table(large_community: LargeCommunity) -> None:
    store, accounts = large_community.store, large_community.accounts
    requests = [
        transfer(large_community.community_id, accounts[0], accounts[1], 5),
        transfer(large_community.community_id, accounts[2], accounts[3], 7),
    ]

    async def post(connection: DatabaseConnection) -> None:
        rows = await connection.fetch(queries.POST_EACH, *store.batch_arguments(requests))
        assert sorted(row["outcome"] for row in rows) == ["created", "created"]

    assert await sequential_scans(large_community.pool, post) == NO_SCANS


async def test_an_atomic_batch_scans_no_table(large_community: LargeCommunity) -> None:
    store, accounts = large_community.store, large_community.accounts
    requests = [
        transfer(large_community.community_id, accounts[4], accounts[5], 3),
        transfer(large_community.community_id, accounts[5], accounts[6], 2, pending=True),
    ]

    async def post(connection: DatabaseConnection) -> None:
        rows = await connection.fetch(queries.POST_ATOMIC_GROUPED, *store.batch_arguments(requests))
        assert sorted(row["state"] for row in rows) == ["pending", "posted"]

    assert await sequential_scans(large_community.pool, post) == NO_SCANS


async def test_confirming_scans_no_table(large_community: LargeCommunity) -> None:
    store, accounts = large_community.store, large_community.accounts
    pending = transfer(large_community.community_id, accounts[7], accounts[8], 4, pending=True)
    await store.post(pending)

    async def confirm(connection: DatabaseConnection) -> None:
        row = await connection.fetchrow(queries.CONFIRM, large_community.community_id, pending.id)
        assert row is not None
        assert (row["outcome"], row["state"]) == ("created", "posted")

    assert await sequential_scans(large_community.pool, confirm) == NO_SCANS


async def test_a_call_of_one_transaction_scans_no_table(large_community: LargeCommunity) -> None:
    store, accounts = large_community.store, large_community.accounts
    request = transfer(large_community.community_id, accounts[0], accounts[9], 1)

    async def post(connection: DatabaseConnection) -> None:
        row = await connection.fetchrow(queries.POST_ONE, *store.post_one_arguments(request))
        assert row is not None
        assert row["outcome"] == "created"

    assert await sequential_scans(large_community.pool, post) == NO_SCANS


async def test_a_reversal_scans_no_table(large_community: LargeCommunity) -> None:
    store, accounts = large_community.store, large_community.accounts
    posted = transfer(large_community.community_id, accounts[1], accounts[2], 2)
    await store.post(posted)

    async def reverse(connection: DatabaseConnection) -> None:
        row = await connection.fetchrow(
            queries.REVERSE,
            large_community.community_id,
            posted.id,
            default_reversal_id(posted.id),
            "",
            reversal_fingerprint(posted.id, ""),
        )
        assert row is not None
        assert row["outcome"] == "created"

    assert await sequential_scans(large_community.pool, reverse) == NO_SCANS


async def test_a_refused_call_scans_no_table(large_community: LargeCommunity) -> None:
    """The refusal's detailed judgement reads the reservations of its accounts only."""
    store, accounts = large_community.store, large_community.accounts
    too_much = transfer(large_community.community_id, accounts[3], accounts[4], 100_000)
    fine = transfer(large_community.community_id, accounts[4], accounts[3], 1)

    async def post(connection: DatabaseConnection) -> None:
        rows = await connection.fetch(queries.POST_EACH, *store.batch_arguments([too_much, fine]))
        outcomes = {row["tx_index"]: row["outcome"] for row in rows}
        assert outcomes == {1: "limit_exceeded", 2: "created"}

    assert await sequential_scans(large_community.pool, post) == NO_SCANS


async def test_a_sweep_with_nothing_due_reads_no_transaction(
    large_community: LargeCommunity,
) -> None:
    """Thousands of pending transactions, none due: the sweep reads none of them."""

    async def sweep(connection: DatabaseConnection) -> None:
        assert await connection.fetchval(queries.EXPIRE_OVERDUE, SWEEP_LIMIT) == 0

    assert await rows_read(large_community.pool, sweep) == NO_SCANS


async def test_a_sweep_expires_by_key(large_community: LargeCommunity) -> None:
    store, accounts = large_community.store, large_community.accounts
    due = [
        transfer(
            large_community.community_id, accounts[5], accounts[6], 1, pending=True, expires_in_s=1
        )
        for _ in range(3)
    ]
    await store.post_atomic(due)
    await asyncio.sleep(1.1)

    async def sweep(connection: DatabaseConnection) -> None:
        assert await connection.fetchval(queries.EXPIRE_OVERDUE, SWEEP_LIMIT) == len(due)

    assert await sequential_scans(large_community.pool, sweep) == NO_SCANS
    for request in due:
        assert (await store.transaction(large_community.community_id, request.id)).state == (
            TransactionState.EXPIRED
        )


JOURNAL_PAGE_SIZE = 50
# The fixture's ring of pending transfers gives each of these accounts seven.
RING_ACCOUNT_INDEX = 10
RING_ACCOUNT_PENDING = 7


def journal_page_arguments() -> tuple[object, ...]:
    return (JOURNAL_AFTER_LAST, uuid.UUID(int=0), JOURNAL_PAGE_SIZE)


async def test_an_accounts_pending_transactions_are_read_from_its_reservations(
    large_community: LargeCommunity,
) -> None:
    """A member's inbox (`?account=&state=pending`): the account's reservations lead
    to its pending transactions, instead of the community's transactions being read
    for the few that name it."""
    account = large_community.accounts[RING_ACCOUNT_INDEX]
    found: list[asyncpg.Record] = []

    async def read(connection: DatabaseConnection) -> None:
        found.extend(
            await connection.fetch(
                queries.journal_query([], pending_of_account=True),
                large_community.community_id,
                account.id,
                *journal_page_arguments(),
            )
        )

    read_rows = await rows_read(large_community.pool, read)
    assert len(found) == RING_ACCOUNT_PENDING
    assert read_rows == {
        "accounts": 0,
        "holds": RING_ACCOUNT_PENDING,
        "transactions": RING_ACCOUNT_PENDING,
    }


async def test_an_accounts_pending_transactions_are_those_of_the_whole_journal(
    large_community: LargeCommunity,
) -> None:
    """The store's inbox query finds exactly what filtering the journal finds."""
    store = large_community.store
    account = large_community.accounts[RING_ACCOUNT_INDEX]
    inbox = await store.journal(
        large_community.community_id,
        limit=JOURNAL_PAGE_SIZE,
        account_id=account.id,
        state=TransactionState.PENDING,
    )
    filtered = await large_community.pool.fetch(
        queries.journal_query(["account", "state"]),
        large_community.community_id,
        account.id,
        TransactionState.PENDING.value,
        *journal_page_arguments(),
    )
    assert [transaction.id for transaction in inbox] == [row["id"] for row in filtered]
    assert len(inbox) == RING_ACCOUNT_PENDING
    assert all(transaction.state is TransactionState.PENDING for transaction in inbox)


async def test_an_unfiltered_page_reads_its_page_after_filtered_ones(
    large_community: LargeCommunity,
) -> None:
    """Each combination of filters is a statement of its own: pages filtered by
    account (which PostgreSQL plans generically after five calls) leave the plan of
    the unfiltered page alone. With one statement for all, that page then read the
    whole community."""
    account = large_community.accounts[RING_ACCOUNT_INDEX]
    async with large_community.pool.acquire() as connection:
        for _ in range(6):
            await connection.fetch(
                queries.journal_query(["account"]),
                large_community.community_id,
                account.id,
                *journal_page_arguments(),
            )

        async def unfiltered(reader: DatabaseConnection) -> None:
            page = await reader.fetch(
                queries.journal_query([]),
                large_community.community_id,
                *journal_page_arguments(),
            )
            assert len(page) == JOURNAL_PAGE_SIZE

        # On the same connection: the same prepared statements and cached plans.
        read_rows = await _counted_on(connection, unfiltered, ROWS_READ)
    # The page's rows, and the reversal of any of them (the community has thousands).
    assert read_rows["transactions"] <= 2 * JOURNAL_PAGE_SIZE


PERIOD_POSTINGS = 10
LATER_POSTINGS = 500


async def test_a_statement_of_a_period_reads_that_period(large_community: LargeCommunity) -> None:
    """An account's statement for a period long past reads the period's postings
    (and a bisection of the sequence for its bounds), not the history since."""
    store, accounts = large_community.store, large_community.accounts
    community_id = large_community.community_id
    payer, payee = accounts[11], accounts[12]
    period_from = await large_community.pool.fetchval("SELECT clock_timestamp()")
    await store.post_atomic(
        [transfer(community_id, payer, payee, 1) for _ in range(PERIOD_POSTINGS)]
    )
    period_before = await large_community.pool.fetchval("SELECT clock_timestamp()")
    await store.post_atomic(
        [transfer(community_id, payee, payer, 1) for _ in range(LATER_POSTINGS)]
    )
    found: list[asyncpg.Record] = []

    async def statement(connection: DatabaseConnection) -> None:
        row = await connection.fetchrow(
            queries.SELECT_STATEMENT,
            community_id,
            payer.id,
            SEQ_AFTER_LAST,
            period_from,
            period_before,
            JOURNAL_PAGE_SIZE + 1,
        )
        assert row is not None
        found.append(row)

    read_rows = await rows_read(large_community.pool, statement, ["postings"])
    assert found[0]["seqs"] == list(range(PERIOD_POSTINGS, 0, -1))
    history = PERIOD_POSTINGS + LATER_POSTINGS
    # The period, and for each of its two bounds one posting per step of a bisection.
    assert read_rows["postings"] <= PERIOD_POSTINGS + 2 * (history.bit_length() + 1)


async def test_a_members_accounts_are_found_by_owner(large_community: LargeCommunity) -> None:
    """A member's own accounts (the home screen), by the index of the accounts'
    owners (their unique constraint), not the community's accounts read for them."""
    accounts = large_community.accounts
    owner_id = accounts[13].owner_id
    found: list[asyncpg.Record] = []

    async def read(connection: DatabaseConnection) -> None:
        found.extend(
            await connection.fetch(
                queries.SELECT_ACCOUNTS_OF_OWNERS, large_community.community_id, [owner_id]
            )
        )

    read_rows = await rows_read(large_community.pool, read, ["accounts"])
    assert [row["id"] for row in found] == [accounts[13].id]
    assert read_rows == {"accounts": 1}


DIRECTORY_PAGE_SIZE = 50
# A person for each member party of community $1, emailed $2 || party id: `made`
# (person_id, party_id, email) for the statement that follows.
PEOPLE_OF_THE_MEMBER_PARTIES = """
WITH made AS (
    INSERT INTO people (email, display_name)
    SELECT $2 || p.id || '@example.org', p.display_name
      FROM parties p WHERE p.community_id = $1 AND p.kind = 'member'
    RETURNING id AS person_id, substr(email, length($2) + 1, 36)::uuid AS party_id, email)
"""


async def test_a_page_of_the_members_directory_reads_that_page(
    large_community: LargeCommunity,
) -> None:
    """The directory (loaded by every session of the web front) pages by name through
    an index: a page reads its members, not the community's."""
    pool, community_id = large_community.pool, large_community.community_id
    async with pool.acquire() as connection, connection.transaction():
        # Every party of the community a member, as sign-ups would make them.
        await connection.execute(
            PEOPLE_OF_THE_MEMBER_PARTIES
            + """
            INSERT INTO memberships (community_id, person_id, party_id, role)
            SELECT $1, m.person_id, m.party_id, 'member' FROM made m
            """,
            community_id,
            "member-",
        )
    await pool.execute("ANALYZE parties, memberships, people")
    found: list[asyncpg.Record] = []

    async def page(connection: DatabaseConnection) -> None:
        found.extend(
            await connection.fetch(
                auth_queries.SELECT_MEMBERS,
                community_id,
                None,
                "",
                uuid.UUID(int=0),
                DIRECTORY_PAGE_SIZE,
            )
        )

    read_rows = await rows_read(pool, page, ["parties", "memberships", "people"])
    names = [row["display_name"] for row in found]
    assert len(found) == DIRECTORY_PAGE_SIZE
    assert names == sorted(names)
    # The page's members, and at most the community's own party (not a member) and
    # the row after the page, against a thousand each without the index.
    assert read_rows["parties"] <= DIRECTORY_PAGE_SIZE + 2
    assert read_rows["memberships"] <= DIRECTORY_PAGE_SIZE + 2
    assert read_rows["people"] <= DIRECTORY_PAGE_SIZE + 2


INVITATIONS_PAGE_SIZE = 50


@pytest.fixture(scope="module")
async def invited_community(large_community: LargeCommunity) -> LargeCommunity:
    """Every member of the large community invited once."""
    async with large_community.pool.acquire() as connection, connection.transaction():
        await connection.execute(
            PEOPLE_OF_THE_MEMBER_PARTIES
            + """
            INSERT INTO invitations (community_id, person_id, party_id, token_hash, expires_at)
            SELECT $1, m.person_id, m.party_id, sha256(convert_to(m.email, 'UTF8')),
                   now() + interval '7 days'
              FROM made m
            """,
            large_community.community_id,
            "invited-",
        )
    await large_community.pool.execute("ANALYZE invitations, people, parties")
    return large_community


async def test_a_page_of_invitations_reads_that_page(invited_community: LargeCommunity) -> None:
    found: list[asyncpg.Record] = []

    async def page(connection: DatabaseConnection) -> None:
        found.extend(
            await connection.fetch(
                auth_queries.SELECT_INVITATIONS,
                invited_community.community_id,
                INVITATIONS_PAGE_SIZE,
            )
        )

    read_rows = await rows_read(invited_community.pool, page, ["invitations"])
    assert len(found) == INVITATIONS_PAGE_SIZE
    assert read_rows["invitations"] <= INVITATIONS_PAGE_SIZE + 1


async def test_revoking_a_members_pending_invitations_reads_theirs(
    invited_community: LargeCommunity,
) -> None:
    party_id = invited_community.accounts[14].owner_id

    async def revoke(connection: DatabaseConnection) -> None:
        status = await connection.execute(
            auth_queries.REVOKE_PENDING_INVITATIONS, invited_community.community_id, party_id
        )
        assert status == "UPDATE 1"

    read_rows = await rows_read(invited_community.pool, revoke, ["invitations"])
    assert read_rows["invitations"] == 1


CHARGED_MONTHS = 12


@pytest.fixture(scope="module")
async def charged_community(large_community: LargeCommunity) -> LargeCommunity:
    """A monthly membership fee charged to every account of the large community for a
    year: 12,000 charges."""
    pool, community_id = large_community.pool, large_community.community_id
    payee = large_community.accounts[0]
    async with pool.acquire() as connection, connection.transaction():
        schedule_id = await connection.fetchval(
            """
            INSERT INTO policy_schedules (community_id, kind, unit_id, period, starts_on,
                                          amount, payer_kind, target_account)
            SELECT $1, 'membership_fee', a.unit_id, 'month', '2025-01-01', 60, 'member', a.id
              FROM accounts a WHERE a.community_id = $1 AND a.id = $2
            RETURNING id
            """,
            community_id,
            payee.id,
        )
        await connection.execute(
            """
            INSERT INTO policy_runs (community_id, schedule_id, period_start, period_end)
            SELECT $1, $2, m, m + interval '1 month'
              FROM generate_series('2025-01-01'::date, '2025-12-01'::date, interval '1 month') m
            """,
            community_id,
            schedule_id,
        )
        await connection.execute(
            """
            INSERT INTO policy_charges (community_id, schedule_id, period_start, account_id,
                                        amount, transaction_id, state, due_on, paid_at)
            SELECT $1, $2, r.period_start, a.id, 60, gen_random_uuid(), 'paid',
                   r.period_start, now()
              FROM policy_runs r
              JOIN accounts a ON a.community_id = r.community_id
             WHERE r.community_id = $1 AND r.schedule_id = $2
            """,
            community_id,
            schedule_id,
        )
    await pool.execute("ANALYZE policy_charges, policy_runs, policy_schedules, accounts")
    return large_community


async def test_a_members_dues_are_read_from_their_accounts(
    charged_community: LargeCommunity,
) -> None:
    """A member's dues (asked by the member's page of fees and donations) read their
    own accounts' charges by index, not every charge of the community. (PostgreSQL
    18 finds them without migration 0030 too, skipping through the primary key's
    schedules and periods; 15 reads every charge.)"""
    pool, community_id = charged_community.pool, charged_community.community_id
    member = charged_community.accounts[21]
    found: list[asyncpg.Record] = []

    async def dues(connection: DatabaseConnection) -> None:
        found[:] = await connection.fetch(
            policy_queries.SELECT_DUES_OF_OWNERS, community_id, False, [member.owner_id]
        )

    read_rows = await rows_read(pool, dues, ["policy_charges"])
    read_entries = await index_entries_read(pool, dues, "policy_charges")
    assert [row["account_id"] for row in found] == [member.id] * CHARGED_MONTHS
    periods = [row["period_start"] for row in found]
    assert periods == sorted(periods, reverse=True)
    assert read_rows["policy_charges"] == CHARGED_MONTHS
    # Against the community's 12,000 without the index (the primary key, probed by
    # schedule, reads them all and fetches only the member's).
    assert read_entries <= CHARGED_MONTHS + 1


DUES_LIST_SIZE = 500  # SELECT_DUES's LIMIT


async def test_the_communitys_dues_read_their_newest_page(
    charged_community: LargeCommunity,
) -> None:
    """The admins' list of dues (newest first, DUES_LIST_SIZE of them) reads that
    many charges by index (0032), not every charge of the community sorted."""
    pool, community_id = charged_community.pool, charged_community.community_id
    found: list[asyncpg.Record] = []

    async def dues(connection: DatabaseConnection) -> None:
        found[:] = await connection.fetch(policy_queries.SELECT_DUES, community_id, False)

    read_rows = await rows_read(pool, dues, ["policy_charges"])
    read_entries = await index_entries_read(pool, dues, "policy_charges")
    assert len(found) == DUES_LIST_SIZE
    order = [(row["period_start"], row["account_id"]) for row in found]
    assert order == sorted(order, key=lambda key: (-key[0].toordinal(), key[1]))
    assert {row["period_start"] for row in found} == {date(2025, 12, 1)}
    # Against the community's 12,000 without the index.
    assert read_rows["policy_charges"] <= DUES_LIST_SIZE + 1
    assert read_entries <= DUES_LIST_SIZE + 1


async def index_entries_read(
    pool: asyncpg.Pool, call: Callable[[DatabaseConnection], Awaitable[object]], table: str
) -> int:
    """The index entries of this table's indexes that `call` read (cumulative
    statistics, flushed before and after: a transaction has no counter of its own)."""

    async def entries(connection: DatabaseConnection) -> int:
        await connection.execute("SELECT pg_stat_force_next_flush()")
        await connection.execute("SELECT pg_sleep(0.01)")  # idle once: the flush
        await connection.execute("SELECT pg_stat_clear_snapshot()")
        counted: int = await connection.fetchval(
            "SELECT sum(idx_tup_read)::bigint FROM pg_stat_user_indexes WHERE relname = $1",
            table,
        )
        return counted

    async with pool.acquire() as connection:
        before = await entries(connection)
        await call(connection)
        return await entries(connection) - before


async def test_a_transactions_log_entries_are_read_by_index(
    large_community: LargeCommunity,
) -> None:
    """A receipt (and a transaction's signatures) reads the transaction's log
    entries, its writing's and its resolution's, by the times it was written and
    resolved (0031), not by scanning the community's log."""
    store, accounts = large_community.store, large_community.accounts
    community_id = large_community.community_id
    pending = transfer(community_id, accounts[3], accounts[4], 2, pending=True)
    await store.post(pending)
    await store.confirm(community_id, pending.id)
    found: list[asyncpg.Record] = []

    async def entries(connection: DatabaseConnection) -> None:
        found[:] = await connection.fetch(
            queries.SELECT_TRANSACTION_LOG_ENTRIES, community_id, pending.id
        )

    scans = await _counted(large_community.pool, entries, "seq_scan", ["log_entries"])
    read_entries = await index_entries_read(large_community.pool, entries, "log_entries")
    assert scans == {"log_entries": 0}
    assert read_entries == 2
    assert [row["leaf_index"] for row in found] == sorted(row["leaf_index"] for row in found)
    assert [json.loads(row["entry"])["type"] for row in found] == ["transaction", "resolution"]
    assert {json.loads(row["entry"])["id"] for row in found} == {str(pending.id)}


async def test_log_entries_written_before_their_time_was_kept_are_found(
    large_community: LargeCommunity,
) -> None:
    """Entries written before 0031 keep no time: they are found by id alone."""
    store, accounts = large_community.store, large_community.accounts
    community_id = large_community.community_id
    pending = transfer(community_id, accounts[5], accounts[6], 2, pending=True)
    await store.post(pending)
    await store.void(community_id, pending.id)
    async with large_community.pool.acquire() as connection, connection.transaction():
        # As 0031 found them (the append-only trigger let aside, as a migration would).
        await connection.execute("SET LOCAL session_replication_role = replica")
        status = await connection.execute(
            "UPDATE log_entries SET written_at = NULL"
            " WHERE community_id = $1 AND transaction_id = $2",
            community_id,
            pending.id,
        )
        assert status == "UPDATE 2"
    rows = await large_community.pool.fetch(
        queries.SELECT_TRANSACTION_LOG_ENTRIES, community_id, pending.id
    )
    assert [json.loads(row["entry"])["type"] for row in rows] == ["transaction", "resolution"]
