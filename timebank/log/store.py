"""The log in PostgreSQL: its entries (appended by the database itself, see
sql/0005_log.sql), the tree's nodes and the signed checkpoints, which the
checkpointer adds; proofs are read from the stored nodes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from timebank.auth.signing_keys import create_private_key_file, read_private_key_file
from timebank.database import DatabaseConnection
from timebank.ledger.store import run_translated
from timebank.log import merkle, queries
from timebank.log.note import (
    Checkpoint,
    Verifier,
    format_checkpoint,
    format_verifier_key,
    sign_note,
)

# Entries read and hashed per round trip while a checkpoint catches up.
ENTRIES_PER_READ = 1_000
LEAVES_BETWEEN_YIELDS = 64
LOG_KEY_FILE_SUFFIX = ".log.ed25519.pem"
# While another caller signs a checkpoint, a reader that needs one waits this long.
COVERING_CHECKPOINT_WAITS = 100
COVERING_CHECKPOINT_WAIT_S = 0.05


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    tree_size: int
    root_hash: bytes
    note: str
    created_at: datetime


class NodeReader:
    """Stored perfect-subtree hashes, fetched in one round trip for what a proof
    or a frontier needs."""

    def __init__(self, nodes: dict[tuple[int, int], bytes]) -> None:
        self._nodes = nodes

    def __call__(self, level: int, index: int) -> bytes:
        try:
            return self._nodes[(level, index)]
        except KeyError:
            raise merkle.InvalidTreeArgument(f"no stored node ({level}, {index})") from None

    @classmethod
    async def load(
        cls,
        connection: DatabaseConnection | asyncpg.Pool,
        community_id: uuid.UUID,
        wanted: Sequence[tuple[int, int]],
    ) -> NodeReader:
        rows = await connection.fetch(
            queries.SELECT_NODES,
            community_id,
            [level for level, _ in wanted],
            [index for _, index in wanted],
        )
        return cls({(row["level"], row["index"]): bytes(row["hash"]) for row in rows})


class RecordingReader:
    """Answers every node with a placeholder and records which were asked: running
    a proof once with it tells which nodes to fetch."""

    def __init__(self) -> None:
        self.wanted: list[tuple[int, int]] = []

    def __call__(self, level: int, index: int) -> bytes:
        self.wanted.append((level, index))
        return bytes(32)


class LogKeys:
    """Each community's log key (Ed25519), made at its first checkpoint in the data
    directory (readable by the service's user only)."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._keys: dict[uuid.UUID, Ed25519PrivateKey] = {}

    def key_of(self, community_id: uuid.UUID) -> Ed25519PrivateKey:
        key = self._keys.get(community_id)
        if key is None:
            self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            path = self._directory / f"{community_id}{LOG_KEY_FILE_SUFFIX}"
            try:
                key = create_private_key_file(path)
            except FileExistsError:
                key = read_private_key_file(path)
            self._keys[community_id] = key
        return key


class LogStore:
    def __init__(self, pool: asyncpg.Pool, keys: LogKeys, origin_prefix: str) -> None:
        self._pool = pool
        self._keys = keys
        self._origin_prefix = origin_prefix
        # Origins never change once fixed: kept for the process's life.
        self._origins: dict[uuid.UUID, str] = {}

    async def communities_behind(self) -> list[tuple[uuid.UUID, str]]:
        """Communities (id, slug) whose log grew since their last checkpoint."""
        rows = await run_translated(lambda: self._pool.fetch(queries.SELECT_BEHIND))
        return [(row["community_id"], row["slug"]) for row in rows]

    async def size(self, community_id: uuid.UUID) -> int:
        size = await run_translated(lambda: self._pool.fetchval(queries.SELECT_SIZE, community_id))
        assert isinstance(size, int)
        return size

    async def origin(self, community_id: uuid.UUID, slug: str) -> str:
        """The community's log origin (what signed intents name as their ledger),
        fixed on first use (and so kept once read)."""
        known = self._origins.get(community_id)
        if known is not None:
            return known

        async def fetch() -> str:
            async with self._pool.acquire() as connection:
                return await self._origin(connection, community_id, slug)

        origin = await run_translated(fetch)
        self._origins[community_id] = origin
        return origin

    async def _origin(
        self, connection: DatabaseConnection, community_id: uuid.UUID, slug: str
    ) -> str:
        origin = await connection.fetchval(queries.SELECT_ORIGIN, community_id)
        if origin is None:
            await connection.execute(
                queries.INSERT_ORIGIN, community_id, slug, f"{self._origin_prefix}/{slug}"
            )
            origin = await connection.fetchval(queries.SELECT_ORIGIN, community_id)
        assert isinstance(origin, str)
        return origin

    async def verifier(
        self, connection: DatabaseConnection, community_id: uuid.UUID, slug: str
    ) -> Verifier:
        """The community's origin and log key, recorded on first use."""
        origin = await self._origin(connection, community_id, slug)
        key = self._keys.key_of(community_id)
        verifier = Verifier.from_public_key(origin, key.public_key())
        await connection.execute(queries.INSERT_KEY, community_id, format_verifier_key(verifier))
        return verifier

    async def checkpoint(self, community_id: uuid.UUID, slug: str) -> StoredCheckpoint | None:
        """Extends the stored tree to the log's size and signs a checkpoint of it;
        None when another process is doing it. The latest one if nothing is new."""

        async def run() -> StoredCheckpoint | None:
            async with self._pool.acquire() as connection, connection.transaction():
                if not await connection.fetchval(queries.TRY_LOCK_COMMUNITY, community_id):
                    return None
                return await self._checkpoint(connection, community_id, slug)

        return await run_translated(run)

    async def checkpoint_covering(
        self,
        community_id: uuid.UUID,
        slug: str,
        tree_size_min: int,
        *,
        waits: int = COVERING_CHECKPOINT_WAITS,
        wait_s: float = COVERING_CHECKPOINT_WAIT_S,
    ) -> StoredCheckpoint | None:
        """A signed checkpoint of at least `tree_size_min` entries: the latest if it
        covers them, else one signed now; while another caller (the checkpointer,
        here or in another process) is signing, waits for its checkpoint. None if
        none came within the wait."""
        checkpoint = await self.latest_checkpoint(community_id)
        for _ in range(waits):
            if checkpoint is not None and checkpoint.tree_size >= tree_size_min:
                return checkpoint
            signed = await self.checkpoint(community_id, slug)
            if signed is not None and signed.tree_size >= tree_size_min:
                return signed
            await asyncio.sleep(wait_s)
            checkpoint = await self.latest_checkpoint(community_id)
        if checkpoint is not None and checkpoint.tree_size >= tree_size_min:
            return checkpoint
        return None

    async def _checkpoint(
        self, connection: DatabaseConnection, community_id: uuid.UUID, slug: str
    ) -> StoredCheckpoint:
        verifier = await self.verifier(connection, community_id, slug)
        latest = await connection.fetchrow(queries.SELECT_LATEST_CHECKPOINT, community_id)
        old_size = latest["tree_size"] if latest is not None else 0
        size = await connection.fetchval(queries.SELECT_SIZE, community_id)
        if latest is not None and size == old_size:
            return _stored(latest)
        recorder = RecordingReader()
        merkle.frontier_of(old_size, recorder)
        reader = await NodeReader.load(connection, community_id, recorder.wanted)
        frontier = merkle.frontier_of(old_size, reader)
        tree_size = old_size
        while tree_size < size:
            rows = await connection.fetch(
                queries.SELECT_LEAF_HASHES,
                community_id,
                tree_size,
                min(size, tree_size + ENTRIES_PER_READ),
            )
            levels: list[int] = []
            indexes: list[int] = []
            hashes: list[bytes] = []
            for position, row in enumerate(rows):
                assert row["leaf_index"] == tree_size, "the log has no gap"
                if position % LEAVES_BETWEEN_YIELDS == 0:
                    # Let requests through: a long catch-up must not stall them.
                    await asyncio.sleep(0)
                appended = merkle.append_with_nodes(frontier, tree_size, bytes(row["leaf_hash"]))
                frontier = appended.frontier
                tree_size += 1
                # Leaves are not stored twice: their hashes come from the entries.
                for node in appended.new_nodes[1:]:
                    assert node.level > 0
                    levels.append(node.level)
                    indexes.append(node.index)
                    hashes.append(node.digest)
            await connection.execute(queries.INSERT_NODES, community_id, levels, indexes, hashes)
        root = merkle.root_from_frontier(frontier, size)
        body = format_checkpoint(Checkpoint(verifier.name, size, root))
        note = sign_note(body, verifier.name, self._keys.key_of(community_id))
        created_at = await connection.fetchval(
            queries.INSERT_CHECKPOINT, community_id, size, root, note
        )
        return StoredCheckpoint(size, root, note, created_at)

    async def latest_checkpoint(self, community_id: uuid.UUID) -> StoredCheckpoint | None:
        row = await run_translated(
            lambda: self._pool.fetchrow(queries.SELECT_LATEST_CHECKPOINT, community_id)
        )
        return None if row is None else _stored(row)

    async def checkpoint_at(
        self, community_id: uuid.UUID, tree_size: int
    ) -> StoredCheckpoint | None:
        row = await run_translated(
            lambda: self._pool.fetchrow(queries.SELECT_CHECKPOINT, community_id, tree_size)
        )
        return None if row is None else _stored(row)

    async def entries(self, community_id: uuid.UUID, start: int, end: int) -> list[bytes]:
        rows = await run_translated(
            lambda: self._pool.fetch(queries.SELECT_ENTRIES, community_id, start, end)
        )
        return [bytes(row["entry"]) for row in rows]

    async def transaction_leaves(
        self, community_id: uuid.UUID, transaction_id: uuid.UUID
    ) -> list[tuple[int, bytes]]:
        """The log entries of a transaction (written, then resolved), by index."""
        rows = await run_translated(
            lambda: self._pool.fetch(
                queries.SELECT_TRANSACTION_LEAVES, community_id, transaction_id
            )
        )
        return [(row["leaf_index"], bytes(row["entry"])) for row in rows]

    async def verifier_keys(self, community_id: uuid.UUID) -> list[str]:
        rows = await run_translated(lambda: self._pool.fetch(queries.SELECT_KEYS, community_id))
        return [row["vkey"] for row in rows]

    async def add_witness(self, community_id: uuid.UUID, verifier: Verifier) -> bool:
        """Registers a witness's key; False when a witness of that name exists."""
        created = await run_translated(
            lambda: self._pool.fetchval(
                queries.INSERT_WITNESS, community_id, verifier.name, format_verifier_key(verifier)
            )
        )
        return created is not None

    async def witnesses(self, community_id: uuid.UUID) -> list[tuple[str, str, datetime]]:
        rows = await run_translated(
            lambda: self._pool.fetch(queries.SELECT_WITNESSES, community_id)
        )
        return [(row["name"], row["vkey"], row["created_at"]) for row in rows]

    async def add_cosignature(
        self, community_id: uuid.UUID, tree_size: int, witness_name: str, line: str
    ) -> None:
        await run_translated(
            lambda: self._pool.execute(
                queries.INSERT_COSIGNATURE, community_id, tree_size, witness_name, line
            )
        )

    async def cosignatures(self, community_id: uuid.UUID, tree_size: int) -> list[str]:
        rows = await run_translated(
            lambda: self._pool.fetch(queries.SELECT_COSIGNATURES, community_id, tree_size)
        )
        return [row["signature_line"] for row in rows]

    async def inclusion_proof(
        self, community_id: uuid.UUID, leaf_index: int, tree_size: int
    ) -> list[bytes]:
        """The proof that leaf `leaf_index` is in the tree of `tree_size` leaves
        (which must have been checkpointed)."""
        recorder = RecordingReader()
        merkle.inclusion_proof(leaf_index, tree_size, recorder)
        reader = await run_translated(
            lambda: NodeReader.load(self._pool, community_id, recorder.wanted)
        )
        return merkle.inclusion_proof(leaf_index, tree_size, reader)

    async def consistency_proof(
        self, community_id: uuid.UUID, old_size: int, new_size: int
    ) -> list[bytes]:
        recorder = RecordingReader()
        merkle.consistency_proof(old_size, new_size, recorder)
        reader = await run_translated(
            lambda: NodeReader.load(self._pool, community_id, recorder.wanted)
        )
        return merkle.consistency_proof(old_size, new_size, reader)


def _stored(row: asyncpg.Record) -> StoredCheckpoint:
    return StoredCheckpoint(
        row["tree_size"], bytes(row["root_hash"]), row["note"], row["created_at"]
    )
