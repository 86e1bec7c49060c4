"""Auditing a community's log: export it as a self-contained bundle, verify a bundle
offline (nothing but this package needed), and compare the database with its log.

A bundle is JSON Lines: a header line (`format`, the origin, the verifier keys,
the checkpoints with their cosignatures, the size, and the account balances the
service published with it), then one line per entry, each the entry's exact
bytes (canonical JSON holds no newline)."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, ParamSpec, TextIO, TypeVar

from timebank.ledger.invariants import InvariantViolation
from timebank.log import merkle, queries
from timebank.log.note import (
    NoteError,
    Verifier,
    parse_checkpoint,
    parse_verifier_key,
    verify_note,
)
from timebank.log.replay import (
    LoggedKey,
    Precomputed,
    Replay,
    ReplayError,
    apply_entry,
    parse_entry,
)
from timebank.log.replay_transfers import PlainTransfer, apply_plain_transfers, read_plain_transfers

if TYPE_CHECKING:  # the verifier's workers import this module: no database driver for them
    from timebank.database import DatabaseConnection

BUNDLE_FORMAT = "timebank-log-bundle/1"
ENTRIES_PER_READ = 10_000
PROGRESS_EVERY_ENTRIES = 100_000
# Entries a worker reads at a time: a power of two, so that each whole chunk is a perfect
# subtree of the log's Merkle tree; a few MB of text, about half a second of work: the
# last chunks keep a worker busy while the others have none left, so not more.
ENTRIES_PER_CHUNK = 4_096
# Chunks read ahead per worker: enough to keep the workers busy while the replay runs,
# few enough to bound memory (each chunk and its results are some 20 MB at most).
CHUNKS_IN_FLIGHT_PER_WORKER = 2
# In canonical JSON, a key entry holds this; other entries cannot (quotes are escaped).
KEY_ENTRY_MARK = b'"type":"key"'

_P = ParamSpec("_P")
_T = TypeVar("_T")

SELECT_COMMUNITY = "SELECT id, slug FROM communities WHERE slug = $1"
SELECT_COMMUNITIES = "SELECT id, slug FROM communities ORDER BY slug"
SELECT_CHECKPOINTS = """
SELECT c.tree_size, c.note,
       coalesce((SELECT array_agg(s.signature_line ORDER BY s.witness_name)
                   FROM log_cosignatures s
                  WHERE s.community_id = c.community_id AND s.tree_size = c.tree_size),
                '{}') AS cosignatures
  FROM log_checkpoints c WHERE c.community_id = $1 ORDER BY c.tree_size
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
            queries.SELECT_ENTRIES,
            community_id,
            len(entries),
            min(size, len(entries) + ENTRIES_PER_READ),
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
        size = await connection.fetchval(queries.SELECT_SIZE, community_id)
        checkpoints = await connection.fetch(SELECT_CHECKPOINTS, community_id)
        header = {
            "format": BUNDLE_FORMAT,
            "community": slug,
            "origin": await connection.fetchval(queries.SELECT_ORIGIN, community_id),
            "keys": [
                row["vkey"] for row in await connection.fetch(queries.SELECT_KEYS, community_id)
            ],
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
                queries.SELECT_ENTRIES, community_id, written, min(size, written + ENTRIES_PER_READ)
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


def _read_bundle(path: Path) -> tuple[dict[str, Any], BinaryIO]:
    """The header, and the file open at the first entry's line (each line ends with
    its newline, which is no part of the entry; the last line may lack it)."""
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
    return header, handle


def verify_bundle(
    path: Path,
    *,
    earlier_checkpoint: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    jobs: int | None = None,
    chunk_entries: int = ENTRIES_PER_CHUNK,
) -> Verification:
    """Checks a bundle offline: every checkpoint's signature and root against the
    entries, consistency with an earlier checkpoint (a signed note you kept), every
    entry's form and place (replayed in order), and the published balances against
    the replay. Problems name the first bad entry and why.

    The entries' reading, hashing and signature checks run in `jobs` processes
    (default: one per core), `chunk_entries` (a power of two) at a time; the
    replay itself runs here, in order, on their results: for plain transfers, a
    few lookups and two additions each (replay_transfers)."""
    assert chunk_entries > 0, "chunks hold entries"
    assert chunk_entries & (chunk_entries - 1) == 0, "chunks of a power of two, aligned"
    header, entries = _read_bundle(path)
    result = Verification(origin=str(header.get("origin") or ""), size=int(header["size"]))
    verifiers = _verifiers(header, result)
    checkpoints = _signed_checkpoints(header, verifiers, result)
    state = Replay(origin=result.origin or None)
    tree = _ChunkedTree(chunk_entries, {size for size, _ in checkpoints})
    workers = jobs if jobs is not None else (os.cpu_count() or 1)
    try:
        with entries:
            _replay_chunks(state, tree, entries, workers, _progress_every(progress, result.size))
    except ReplayError as error:
        result.problems.append(str(error))
        return result
    if state.size != result.size:
        result.problems.append(
            f"the bundle holds {state.size} entries, its header says {result.size}"
        )
    roots_at = tree.roots(state.size)
    for size, root in checkpoints:
        if roots_at.get(size) != root:
            result.problems.append(f"checkpoint of size {size}: its root is not the entries' root")
        else:
            result.checkpoints_verified += 1
    if earlier_checkpoint is not None:
        _check_earlier(earlier_checkpoint, verifiers, roots_at, state, result)
    _compare_balances(state, header.get("balances") or {}, result)
    return result


def _progress_every(
    progress: Callable[[int, int], None] | None, total: int
) -> Callable[[int, int], None]:
    """report(before, done): progress at each multiple of PROGRESS_EVERY_ENTRIES passed."""

    def report(before: int, done: int) -> None:
        if progress is None:
            return
        first = before - before % PROGRESS_EVERY_ENTRIES + PROGRESS_EVERY_ENTRIES
        for reached in range(first, done + 1, PROGRESS_EVERY_ENTRIES):
            progress(reached, total)

    return report


# The entries, a chunk at a time: read, hashed and their signatures checked in worker
# processes; replayed here, in order.


@dataclass(frozen=True, slots=True)
class _ChunkJob:
    """What a worker needs to read a chunk of entries."""

    first_index: int
    lines: list[bytes]  # as read, each with its newline (the last one may lack it)
    # The log's origin, which signed intents must name (None: any).
    origin: str | None
    # The member keys logged up to the chunk's end, each under its first registration.
    keys: dict[str, LoggedKey]
    # Tree sizes (counted from the chunk's start, below its length) whose frontier is wanted.
    frontier_sizes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class _ChunkRead:
    """A chunk's entries checked canonical (up to the first that is not): the plain
    transfers among them read and checked as far as they can be without the state,
    the costly steps of the other entries' replay done ahead; and the chunk's Merkle
    tree's hashes. The other entries themselves are not sent back: parsing them
    again costs less than unpickling."""

    canonical_entries: int
    # By offset in the chunk: the entry read as a plain transfer, or None.
    transfers: list[PlainTransfer | None]
    ahead: Precomputed
    failure: ReplayError | None
    # The root of the chunk's leaves (its perfect subtree, when the chunk is whole).
    root: bytes | None
    frontiers: dict[int, merkle.Frontier]


def _read_chunk(job: _ChunkJob) -> _ChunkRead:
    """Runs in a worker: nothing here depends on earlier chunks."""
    entries = [line.rstrip(b"\n") for line in job.lines]
    leaf_hashes = [merkle.leaf_hash(raw) for raw in entries]
    # The quick lane's transfers first, their signatures checked back to back; then
    # the careful lane's entries, up to the first that is not canonical.
    transfers = read_plain_transfers(entries, job.origin, job.keys)
    ahead = Precomputed()
    for offset, (raw, transfer) in enumerate(zip(entries, transfers, strict=True)):
        if transfer is not None:
            continue
        try:
            entry = parse_entry(job.first_index + offset, raw)
        except ReplayError as error:
            return _ChunkRead(offset, transfers[:offset], ahead, error, None, {})
        ahead.compute(entry, job.keys)
    frontiers: dict[int, merkle.Frontier] = {}
    if job.frontier_sizes:
        subtree_hash = merkle.subtree_hash_of(leaf_hashes)
        for size in job.frontier_sizes:
            if size <= len(leaf_hashes):  # a last chunk may be shorter
                frontiers[size] = merkle.frontier_of(size, subtree_hash)
    return _ChunkRead(
        len(leaf_hashes), transfers, ahead, None, merkle.root_of(leaf_hashes), frontiers
    )


class _ChunkedTree:
    """The entries' Merkle tree, a chunk at a time: each whole chunk's perfect subtree
    (chunks start at multiples of their power-of-two size), and each wanted size's
    frontier within its chunk. A tree's frontier is that of its whole chunks followed
    by that of the rest, so the roots at the wanted sizes follow, with no leaf kept."""

    def __init__(self, chunk_entries: int, wanted_sizes: set[int]) -> None:
        self.chunk_entries = chunk_entries
        self.wanted_sizes = wanted_sizes
        self._chunk_roots: list[bytes] = []
        self._frontiers: dict[int, merkle.Frontier] = {}  # by size, within its chunk
        self._sizes_by_chunk: dict[int, list[int]] = {}
        for size in sorted(wanted_sizes):
            chunk_index, within = divmod(size, chunk_entries)
            if within:
                self._sizes_by_chunk.setdefault(chunk_index, []).append(within)

    def frontier_sizes(self, chunk_index: int) -> tuple[int, ...]:
        return tuple(self._sizes_by_chunk.get(chunk_index, ()))

    def add(self, chunk_index: int, read: _ChunkRead) -> None:
        start = chunk_index * self.chunk_entries
        assert len(self._chunk_roots) == chunk_index, "chunks are added in order"
        if read.canonical_entries == self.chunk_entries and read.root is not None:
            self._chunk_roots.append(read.root)
        for within, frontier in read.frontiers.items():
            self._frontiers[start + within] = frontier

    def roots(self, size_max: int) -> dict[int, bytes]:
        """The roots at the wanted sizes up to `size_max` (the entries added)."""
        whole_chunks = merkle.subtree_hash_of(self._chunk_roots)
        roots = {}
        for size in self.wanted_sizes:
            if not 0 < size <= size_max:
                continue
            chunk_count, within = divmod(size, self.chunk_entries)
            frontier = merkle.frontier_of(chunk_count, whole_chunks)
            if within:
                frontier += self._frontiers[size]
            roots[size] = merkle.root_from_frontier(frontier, size)
        return roots


def _replay_chunks(
    state: Replay,
    tree: _ChunkedTree,
    entries: Iterator[bytes],
    workers: int,
    report: Callable[[int, int], None],
) -> None:
    """Replays all the entries onto `state`, their chunks read ahead by `workers`
    processes (here, when one or a single chunk); raises the first ReplayError."""
    chunks = _chunks(entries, tree.chunk_entries)
    first = next(chunks, [])
    second = next(chunks, [])
    in_process = workers <= 1 or not second
    keys: dict[str, LoggedKey] = {}
    with _InProcess() if in_process else _worker_pool(workers) as executor:
        in_flight: deque[tuple[_ChunkJob, Future[_ChunkRead]]] = deque()
        try:
            for chunk_index, lines in enumerate(itertools.chain([first, second], chunks)):
                if not lines:
                    break
                if _note_keys(lines, keys):
                    keys = dict(keys)  # the submitted jobs keep theirs unchanged
                job = _ChunkJob(
                    chunk_index * tree.chunk_entries,
                    lines,
                    state.origin,
                    keys,
                    tree.frontier_sizes(chunk_index),
                )
                in_flight.append((job, executor.submit(_read_chunk, job)))
                if len(in_flight) > workers * CHUNKS_IN_FLIGHT_PER_WORKER:
                    _apply_chunk(state, tree, *in_flight.popleft(), report)
            while in_flight:
                _apply_chunk(state, tree, *in_flight.popleft(), report)
        except BaseException:
            executor.shutdown(wait=False, cancel_futures=True)
            raise


def _apply_chunk(
    state: Replay,
    tree: _ChunkedTree,
    job: _ChunkJob,
    reading: Future[_ChunkRead],
    report: Callable[[int, int], None],
) -> None:
    read = reading.result()
    assert state.size == job.first_index, "chunks are applied in order"
    offset = 0  # in the chunk
    while offset < read.canonical_entries:
        # The plain transfers in a row, then the next entry the careful way.
        applied = apply_plain_transfers(state, read.transfers, offset, job.keys)
        state.size += applied
        report(state.size - applied, state.size)
        offset += applied
        if offset < read.canonical_entries:
            # The worker found the entry canonical; JSON ignores the line's newline.
            apply_entry(state, json.loads(job.lines[offset]), read.ahead)
            state.size += 1
            report(state.size - 1, state.size)
            offset += 1
    if read.failure is not None:
        raise read.failure
    tree.add(job.first_index // tree.chunk_entries, read)


def _chunks(entries: Iterator[bytes], chunk_entries: int) -> Iterator[list[bytes]]:
    while lines := list(itertools.islice(entries, chunk_entries)):
        yield lines


def _note_keys(lines: list[bytes], keys: dict[str, LoggedKey]) -> bool:
    """Adds the member keys these lines register (the first registration of each key
    id) to `keys`; True if any. Only a hint for the workers, which check signatures
    with these keys: the replay uses a worker's result only when the key it finds
    live at that position is the same, and checks itself otherwise."""
    added = False
    for raw in lines:
        if KEY_ENTRY_MARK not in raw:
            continue
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(entry, dict) or entry.get("type") != "key":
            continue
        key_id, algorithm, public_key = (
            entry.get("key_id"),
            entry.get("algorithm"),
            entry.get("public_key"),
        )
        if (
            isinstance(key_id, str)
            and isinstance(algorithm, str)
            and isinstance(public_key, str)
            and key_id not in keys
        ):
            keys[key_id] = (algorithm, public_key)
            added = True
    return added


def _worker_pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=workers, mp_context=_worker_context())


def _worker_context() -> multiprocessing.context.BaseContext:
    """How the workers start. Forked, when this process runs a single thread (the
    command line, a benchmark): at once, with nothing to import (a fork server's or a
    spawned worker imports the program's main module, a second or more of CPU each).
    The workers touch nothing they inherit but this module's functions, and leave by
    os._exit, so the caller's open connections are left alone. With other threads (a
    server's, a test's), one could hold a lock the child would wait on forever: then
    the fork server, which preloads this module; spawn where there is none."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["__main__", __name__])  # the default, and this module
        return context
    return multiprocessing.get_context("spawn")


class _InProcess(Executor):
    """Runs each job at once, in this process."""

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        future: Future[_T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:
            future.set_exception(error)
        return future


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
    size = await connection.fetchval(queries.SELECT_SIZE, community_id)
    entries = await _read_entries(connection, community_id, size)
    if len(entries) != size:
        return [f"the log's head says {size} entries, {len(entries)} are stored"]
    state = Replay(origin=await connection.fetchval(queries.SELECT_ORIGIN, community_id))
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
        parse_verifier_key(row["vkey"])
        for row in await connection.fetch(queries.SELECT_KEYS, community_id)
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
