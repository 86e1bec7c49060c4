"""Auditing a community's log: export it as a self-contained bundle, verify a bundle
offline (nothing but this package needed), and compare the database with its log.

A bundle is JSON Lines: a header line (`format`, the origin, the verifier keys,
the checkpoints with their cosignatures, the size, and the account balances the
service published with it), then one line per entry, each the entry's exact
bytes (canonical JSON holds no newline)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from timebank.database import DatabaseConnection
from timebank.ledger.invariants import InvariantViolation
from timebank.log import merkle
from timebank.log.note import (
    NoteError,
    Verifier,
    parse_checkpoint,
    parse_verifier_key,
    verify_note,
)
from timebank.log.replay import Replay, ReplayError, apply_entry, parse_entry

BUNDLE_FORMAT = "timebank-log-bundle/1"
ENTRIES_PER_READ = 10_000
PROGRESS_EVERY_ENTRIES = 100_000

SELECT_COMMUNITY = "SELECT id, slug FROM communities WHERE slug = $1"
SELECT_COMMUNITIES = "SELECT id, slug FROM communities ORDER BY slug"
SELECT_HEAD = "SELECT coalesce((SELECT size FROM log_heads WHERE community_id = $1), 0)"
SELECT_ORIGIN = "SELECT origin FROM log_identities WHERE community_id = $1"
SELECT_KEYS = "SELECT vkey FROM log_keys WHERE community_id = $1 ORDER BY created_at, vkey"
SELECT_CHECKPOINTS = """
SELECT c.tree_size, c.note,
       coalesce((SELECT array_agg(s.signature_line ORDER BY s.witness_name)
                   FROM log_cosignatures s
                  WHERE s.community_id = c.community_id AND s.tree_size = c.tree_size),
                '{}') AS cosignatures
  FROM log_checkpoints c WHERE c.community_id = $1 ORDER BY c.tree_size
"""
SELECT_ENTRIES = """
SELECT leaf_index, entry FROM log_entries
 WHERE community_id = $1 AND leaf_index >= $2 AND leaf_index < $3 ORDER BY leaf_index
"""
SELECT_BALANCES = "SELECT id, balance FROM accounts WHERE community_id = $1"
SELECT_TRANSACTION_IDS = "SELECT id FROM transactions WHERE community_id = $1"


class BundleError(Exception):
    """The bundle cannot be read as one."""


async def _read_entries(
    connection: DatabaseConnection, community_id: uuid.UUID, size: int
) -> list[bytes]:
    entries: list[bytes] = []
    while len(entries) < size:
        rows = await connection.fetch(
            SELECT_ENTRIES, community_id, len(entries), min(size, len(entries) + ENTRIES_PER_READ)
        )
        for row in rows:
            if row["leaf_index"] != len(entries):
                raise AssertionError(f"the log has a gap at {len(entries)}")
            entries.append(bytes(row["entry"]))
        if not rows:
            break
    return entries


# Export.


async def export_bundle(connection: DatabaseConnection, slug: str, output: TextIO) -> int:
    """Writes the community's bundle, all read in one snapshot; returns its size."""
    async with connection.transaction(isolation="repeatable_read", readonly=True):
        community = await connection.fetchrow(SELECT_COMMUNITY, slug)
        if community is None:
            raise BundleError(f"no community {slug!r}")
        community_id = community["id"]
        size = await connection.fetchval(SELECT_HEAD, community_id)
        checkpoints = await connection.fetch(SELECT_CHECKPOINTS, community_id)
        header = {
            "format": BUNDLE_FORMAT,
            "community": slug,
            "origin": await connection.fetchval(SELECT_ORIGIN, community_id),
            "keys": [row["vkey"] for row in await connection.fetch(SELECT_KEYS, community_id)],
            "checkpoints": [
                {"note": row["note"], "cosignatures": list(row["cosignatures"])}
                for row in checkpoints
            ],
            "size": size,
            "balances": {
                str(row["id"]): row["balance"]
                for row in await connection.fetch(SELECT_BALANCES, community_id)
            },
        }
        output.write(json.dumps(header, sort_keys=True) + "\n")
        written = 0
        while written < size:
            rows = await connection.fetch(
                SELECT_ENTRIES, community_id, written, min(size, written + ENTRIES_PER_READ)
            )
            for row in rows:
                assert row["leaf_index"] == written, "the log has no gap"
                output.write(bytes(row["entry"]).decode() + "\n")
                written += 1
            if not rows:
                break
    return written


# Offline verification.


@dataclass
class Verification:
    """What a verification found: `problems` is empty when everything holds."""

    origin: str = ""
    size: int = 0
    checkpoints_verified: int = 0
    accounts: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _read_bundle(path: Path) -> tuple[dict[str, Any], Iterator[bytes]]:
    handle = path.open("rb")
    first = handle.readline()
    try:
        header = json.loads(first)
    except ValueError:
        handle.close()
        raise BundleError(f"{path}: the first line is not JSON") from None
    if not isinstance(header, dict) or header.get("format") != BUNDLE_FORMAT:
        handle.close()
        raise BundleError(f"{path}: not a {BUNDLE_FORMAT} bundle")

    def entries() -> Iterator[bytes]:
        with handle:
            for line in handle:
                yield line.rstrip(b"\n")

    return header, entries()


def verify_bundle(
    path: Path,
    *,
    earlier_checkpoint: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Verification:
    """Checks a bundle offline: every checkpoint's signature and root against the
    entries, consistency with an earlier checkpoint (a signed note you kept), every
    entry's form and place (replayed in order), and the published balances against
    the replay. Problems name the first bad entry and why."""
    header, entries = _read_bundle(path)
    result = Verification(origin=str(header.get("origin") or ""), size=int(header["size"]))
    verifiers = _verifiers(header, result)
    checkpoints = _signed_checkpoints(header, verifiers, result)
    wanted_sizes = {size for size, _ in checkpoints}
    roots_at: dict[int, bytes] = {}
    state = Replay(origin=result.origin or None)
    frontier: merkle.Frontier = ()
    for raw in entries:
        index = state.size
        try:
            apply_entry(state, parse_entry(index, raw))
        except ReplayError as error:
            result.problems.append(str(error))
            return result
        frontier = merkle.append(frontier, index, merkle.leaf_hash(raw))
        state.size += 1
        if state.size in wanted_sizes:
            roots_at[state.size] = merkle.root_from_frontier(frontier, state.size)
        if progress is not None and state.size % PROGRESS_EVERY_ENTRIES == 0:
            progress(state.size, result.size)
    if state.size != result.size:
        result.problems.append(
            f"the bundle holds {state.size} entries, its header says {result.size}"
        )
    for size, root in checkpoints:
        if roots_at.get(size) != root:
            result.problems.append(f"checkpoint of size {size}: its root is not the entries' root")
        else:
            result.checkpoints_verified += 1
    if earlier_checkpoint is not None:
        _check_earlier(earlier_checkpoint, verifiers, roots_at, frontier, state, result)
    _compare_balances(state, header.get("balances") or {}, result)
    return result


def _verifiers(header: dict[str, Any], result: Verification) -> list[Verifier]:
    verifiers = []
    for text in header.get("keys") or []:
        try:
            verifiers.append(parse_verifier_key(str(text)))
        except NoteError as error:
            result.problems.append(f"a log key cannot be read: {error}")
    return verifiers


def _signed_checkpoints(
    header: dict[str, Any], verifiers: list[Verifier], result: Verification
) -> list[tuple[int, bytes]]:
    """(size, root) of each checkpoint whose note verifies with the bundle's keys
    and names the bundle's origin."""
    checkpoints = []
    for item in header.get("checkpoints") or []:
        try:
            verified = verify_note(str(item["note"]), verifiers)
            checkpoint = parse_checkpoint(verified.body)
        except (NoteError, KeyError, TypeError) as error:
            result.problems.append(f"a checkpoint does not verify: {error}")
            continue
        if checkpoint.origin != result.origin:
            result.problems.append(
                f"checkpoint of size {checkpoint.tree_size} is for {checkpoint.origin!r}"
            )
            continue
        checkpoints.append((checkpoint.tree_size, checkpoint.root_hash))
    return checkpoints


def _check_earlier(
    note: str,
    verifiers: list[Verifier],
    roots_at: dict[int, bytes],
    frontier: merkle.Frontier,
    state: Replay,
    result: Verification,
) -> None:
    """A checkpoint kept from before must be a prefix of this log: same root at
    its size (so nothing before it was rewritten)."""
    try:
        earlier = parse_checkpoint(verify_note(note, verifiers).body)
    except NoteError as error:
        result.problems.append(f"the earlier checkpoint does not verify: {error}")
        return
    if earlier.tree_size > state.size:
        result.problems.append(
            f"the earlier checkpoint has {earlier.tree_size} entries, the bundle only {state.size}"
        )
        return
    root = roots_at.get(earlier.tree_size)
    if root is None:
        result.problems.append(
            f"the earlier checkpoint's size {earlier.tree_size} is not among the bundle's"
            " checkpoints; export again after a checkpoint of that size"
        )
    elif root != earlier.root_hash:
        result.problems.append(
            f"history was rewritten: the log's first {earlier.tree_size} entries no longer"
            " hash to the earlier checkpoint's root"
        )


def _compare_balances(state: Replay, published: dict[str, Any], result: Verification) -> None:
    replayed = state.balances()
    result.accounts = len(replayed)
    for account_id in sorted(set(replayed) | set(published)):
        if replayed.get(account_id) != published.get(account_id):
            result.problems.append(
                f"account {account_id}: published balance {published.get(account_id)},"
                f" replayed {replayed.get(account_id)}"
            )


# The database against its log (for `timebank check`).


async def check_logs(connection: DatabaseConnection) -> list[InvariantViolation]:
    """For every community, in one snapshot: the log replays (canonical entries,
    possible in order), to the balances of the accounts table, names every
    transaction once, and each checkpoint's root and signature hold."""
    violations: list[InvariantViolation] = []
    async with connection.transaction(isolation="repeatable_read", readonly=True):
        for community in await connection.fetch(SELECT_COMMUNITIES):
            problems = await _check_community_log(connection, community["id"])
            if problems:
                violations.append(
                    InvariantViolation(
                        "log_matches_ledger",
                        [
                            {"community": community["slug"], "problem": problem}
                            for problem in problems
                        ],
                    )
                )
    return violations


async def _check_community_log(
    connection: DatabaseConnection, community_id: uuid.UUID
) -> list[str]:
    size = await connection.fetchval(SELECT_HEAD, community_id)
    entries = await _read_entries(connection, community_id, size)
    if len(entries) != size:
        return [f"the log's head says {size} entries, {len(entries)} are stored"]
    state = Replay(origin=await connection.fetchval(SELECT_ORIGIN, community_id))
    try:
        for raw in entries:
            apply_entry(state, parse_entry(state.size, raw))
            state.size += 1
    except ReplayError as error:
        return [str(error)]
    problems: list[str] = []
    balances = {
        str(row["id"]): row["balance"]
        for row in await connection.fetch(SELECT_BALANCES, community_id)
    }
    for account_id in sorted(set(balances) | set(state.accounts)):
        logged = state.accounts.get(account_id)
        if logged is None or logged.balance != balances.get(account_id):
            problems.append(
                f"account {account_id}: balance {balances.get(account_id)} in the ledger,"
                f" {None if logged is None else logged.balance} by the log"
            )
    stored_ids = {
        str(row["id"]) for row in await connection.fetch(SELECT_TRANSACTION_IDS, community_id)
    }
    for missing in sorted(stored_ids - state.transactions)[:10]:
        problems.append(f"transaction {missing} is not in the log")
    for extra in sorted(state.transactions - stored_ids)[:10]:
        problems.append(f"transaction {extra} is in the log but not in the ledger")
    problems += await _check_checkpoints(connection, community_id, entries)
    return problems


async def _check_checkpoints(
    connection: DatabaseConnection, community_id: uuid.UUID, entries: list[bytes]
) -> list[str]:
    verifiers = [
        parse_verifier_key(row["vkey"]) for row in await connection.fetch(SELECT_KEYS, community_id)
    ]
    leaves = [merkle.leaf_hash(raw) for raw in entries]
    problems = []
    for row in await connection.fetch(SELECT_CHECKPOINTS, community_id):
        size = row["tree_size"]
        try:
            checkpoint = parse_checkpoint(verify_note(row["note"], verifiers).body)
        except NoteError as error:
            problems.append(f"checkpoint of size {size} does not verify: {error}")
            continue
        if checkpoint.tree_size != size or size > len(leaves):
            problems.append(f"checkpoint of size {size} does not match the log")
        elif merkle.root_of(leaves[:size]) != checkpoint.root_hash:
            problems.append(f"checkpoint of size {size}: the entries no longer hash to its root")
    return problems
