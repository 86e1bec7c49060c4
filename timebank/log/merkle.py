"""RFC 9162 (formerly RFC 6962) Merkle trees over SHA-256, as pure functions on bytes.

Words used here:

- a *leaf hash* is SHA-256(0x00 || entry) and a *node hash* SHA-256(0x01 || left || right);
- the *perfect subtree* (level, index) covers the 2**level leaves that start at leaf
  index * 2**level; its hash never changes once its last leaf is in, so the store can keep it;
- the *frontier* of a tree of `size` leaves holds the hashes of the perfect subtrees that cover
  [0, size), largest (leftmost) first: one per set bit of `size`. It is all a checkpointer needs
  to append a leaf and compute the root, in O(log size), without reading older leaves.

Proofs are built from a `SubtreeHash` callable so that the store can serve the nodes it keeps;
subtrees that are not perfect (the right edge of a tree whose size is not a power of two) are
recomputed from perfect ones.

The verifiers judge data from strangers (proofs, sizes and roots from checkpoints) and never
raise on it: anything malformed or out of range is False. The other functions raise
`InvalidTreeArgument` on arguments that describe no tree, which is a bug in the caller or
corrupt storage.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()
# Checkpoints carry tree sizes as unsigned 64-bit integers (C2SP tlog-checkpoint, Go's uint64).
TREE_DEPTH_MAX = 64
TREE_SIZE_MAX = 2**TREE_DEPTH_MAX - 1
# An inclusion proof holds at most one hash per level, a consistency proof at most one more
# (RFC 9162 sections 2.1.3.1 and 2.1.4.1); longer proofs are refused before any hashing.
PROOF_HASHES_MAX = TREE_DEPTH_MAX + 1

SubtreeHash = Callable[[int, int], bytes]
"""subtree_hash(level, index): the hash of the perfect subtree of 2**level leaves starting at
leaf index * 2**level (level 0 is the leaf hash itself)."""

Frontier = tuple[bytes, ...]


class InvalidTreeArgument(ValueError):
    """A size, index, frontier or stored hash that belongs to no RFC 9162 tree: a bug in the
    caller or corrupt storage. The verifiers never raise it; they return False."""


@dataclass(frozen=True, slots=True)
class Subtree:
    """A perfect subtree, as the store keeps it."""

    level: int
    index: int
    digest: bytes


class Appended(NamedTuple):
    """The frontier after appending one leaf, and the perfect subtrees that leaf completed."""

    frontier: Frontier
    new_nodes: tuple[Subtree, ...]


def leaf_hash(entry: bytes) -> bytes:
    """The hash of a leaf whose entry is `entry` (RFC 9162 section 2.1.1)."""
    return hashlib.sha256(LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node whose children hash to `left` and `right`."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of RFC 9162 section 2.1.1, computed from all the leaves' hashes."""
    _require_hashes(leaf_hashes)
    _require_size(len(leaf_hashes))
    if not leaf_hashes:
        return EMPTY_ROOT
    return _range_root(leaf_hashes, 0, len(leaf_hashes))


def _range_root(leaf_hashes: Sequence[bytes], start: int, end: int) -> bytes:
    if end - start == 1:
        return leaf_hashes[start]
    split = start + _largest_power_of_two_below(end - start)
    return node_hash(_range_root(leaf_hashes, start, split), _range_root(leaf_hashes, split, end))


def append(frontier: Frontier, size: int, new_leaf_hash: bytes) -> Frontier:
    """The frontier of the tree of `size` + 1 leaves, from the frontier of its first `size`."""
    return append_with_nodes(frontier, size, new_leaf_hash).frontier


def append_with_nodes(frontier: Frontier, size: int, new_leaf_hash: bytes) -> Appended:
    """Like `append`, also naming the perfect subtrees the new leaf completed, for the store to
    keep: the leaf itself at level 0, then each interior node it closed, lowest first."""
    _require_frontier(frontier, size)
    _require_size(size + 1)
    _require_hashes([new_leaf_hash])
    remaining = list(frontier)
    merged = new_leaf_hash
    new_nodes = [Subtree(0, size, new_leaf_hash)]
    level = 0
    while (size >> level) & 1:
        merged = node_hash(remaining.pop(), merged)
        level += 1
        new_nodes.append(Subtree(level, size >> level, merged))
    remaining.append(merged)
    return Appended(tuple(remaining), tuple(new_nodes))


def root_from_frontier(frontier: Frontier, size: int) -> bytes:
    """MTH of the tree of `size` leaves whose frontier is `frontier`."""
    _require_frontier(frontier, size)
    if size == 0:
        return EMPTY_ROOT
    return _fold_right(frontier)


def frontier_of(size: int, subtree_hash: SubtreeHash) -> Frontier:
    """The frontier of the first `size` leaves, read from stored perfect subtrees (e.g. to
    resume appending after a restart)."""
    _require_size(size)
    return tuple(_stored(subtree_hash, level, index) for level, index in _perfect_cover(0, size))


def perfect_subtree_levels(leaf_hashes: Sequence[bytes]) -> list[list[bytes]]:
    """Every perfect subtree's hash of an in-memory tree: result[level][index]."""
    _require_hashes(leaf_hashes)
    levels = [list(leaf_hashes)]
    while len(levels[-1]) >= 2:
        below = levels[-1]
        levels.append([node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)])
    return levels


def subtree_hash_of(leaf_hashes: Sequence[bytes]) -> SubtreeHash:
    """A `SubtreeHash` over an in-memory list of leaf hashes (tests, offline verifiers)."""
    levels = perfect_subtree_levels(leaf_hashes)

    def subtree_hash(level: int, index: int) -> bytes:
        if not (0 <= level < len(levels) and 0 <= index < len(levels[level])):
            raise InvalidTreeArgument(f"no perfect subtree ({level}, {index}) in this tree")
        return levels[level][index]

    return subtree_hash


def inclusion_proof(leaf_index: int, tree_size: int, subtree_hash: SubtreeHash) -> list[bytes]:
    """PATH(leaf_index, D[tree_size]) of RFC 9162 section 2.1.3.1: the sibling hashes from the
    leaf up to the root. Requires 0 <= leaf_index < tree_size."""
    _require_size(tree_size)
    if not 0 <= leaf_index < tree_size:
        raise InvalidTreeArgument(f"leaf {leaf_index} is not in a tree of {tree_size} leaves")
    siblings: list[bytes] = []
    start, end = 0, tree_size
    while end - start > 1:
        split = start + _largest_power_of_two_below(end - start)
        if leaf_index < split:
            siblings.append(_range_hash(split, end, subtree_hash))
            end = split
        else:
            siblings.append(_range_hash(start, split, subtree_hash))
            start = split
    siblings.reverse()
    return siblings


def consistency_proof(old_size: int, new_size: int, subtree_hash: SubtreeHash) -> list[bytes]:
    """PROOF(old_size, D[new_size]) of RFC 9162 section 2.1.4.1. Requires
    0 <= old_size <= new_size; the proof is empty when old_size is 0 or equals new_size (the
    RFC defines proofs only for 0 < old_size < new_size)."""
    _require_size(new_size)
    if not 0 <= old_size <= new_size:
        raise InvalidTreeArgument(f"a tree of {old_size} leaves cannot grow into {new_size}")
    if old_size in (0, new_size):
        return []
    proof: list[bytes] = []
    start, end, old_tree_is_whole = 0, new_size, True
    while old_size != end:
        split = start + _largest_power_of_two_below(end - start)
        if old_size <= split:
            proof.append(_range_hash(split, end, subtree_hash))
            end = split
        else:
            proof.append(_range_hash(start, split, subtree_hash))
            start, old_tree_is_whole = split, False
    if not old_tree_is_whole:
        proof.append(_range_hash(start, end, subtree_hash))
    proof.reverse()
    return proof


def verify_inclusion(
    leaf_hash: bytes, leaf_index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Whether `proof` shows the leaf hashing to `leaf_hash` at `leaf_index` in the tree of
    `tree_size` leaves whose root is `root` (RFC 9162 section 2.1.3.2). Never raises."""
    if not 0 <= leaf_index < tree_size <= TREE_SIZE_MAX:
        return False
    if not (_is_hash(leaf_hash) and _is_hash(root) and _is_proof(proof)):
        return False
    return _root_from_inclusion(leaf_hash, leaf_index, tree_size, proof) == root


def _root_from_inclusion(
    leaf_hash: bytes, leaf_index: int, tree_size: int, proof: Sequence[bytes]
) -> bytes | None:
    node_index, last_index = leaf_index, tree_size - 1
    computed = leaf_hash
    for sibling in proof:
        if last_index == 0:
            return None
        if node_index & 1 or node_index == last_index:
            computed = node_hash(sibling, computed)
            # Skip the levels where this node is a lone right edge and is carried up unchanged.
            while not node_index & 1 and node_index != 0:
                node_index, last_index = node_index >> 1, last_index >> 1
        else:
            computed = node_hash(computed, sibling)
        node_index, last_index = node_index >> 1, last_index >> 1
    return computed if last_index == 0 else None


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether `proof` shows the tree of `old_size` leaves with root `old_root` to be a prefix
    of the tree of `new_size` leaves with root `new_root` (RFC 9162 section 2.1.4.2). Equal
    sizes need equal roots and an empty proof; the empty tree (whose root must be EMPTY_ROOT)
    is a prefix of every tree, with an empty proof. Never raises."""
    if not 0 <= old_size <= new_size <= TREE_SIZE_MAX:
        return False
    if not (_is_hash(old_root) and _is_hash(new_root) and _is_proof(proof)):
        return False
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT and (new_size > 0 or new_root == EMPTY_ROOT)
    if old_size == new_size:
        return not proof and old_root == new_root
    return _roots_from_consistency(old_size, new_size, old_root, proof) == (old_root, new_root)


def _roots_from_consistency(
    old_size: int, new_size: int, old_root: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes] | None:
    if not proof:
        return None
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        # The old tree is a perfect subtree of the new one, so its root starts the path.
        path.insert(0, old_root)
    old_index, new_index = old_size - 1, new_size - 1
    while old_index & 1:
        old_index, new_index = old_index >> 1, new_index >> 1
    old_computed = new_computed = path[0]
    for node in path[1:]:
        if new_index == 0:
            return None
        if old_index & 1 or old_index == new_index:
            old_computed = node_hash(node, old_computed)
            new_computed = node_hash(node, new_computed)
            while not old_index & 1 and old_index != 0:
                old_index, new_index = old_index >> 1, new_index >> 1
        else:
            new_computed = node_hash(new_computed, node)
        old_index, new_index = old_index >> 1, new_index >> 1
    return (old_computed, new_computed) if new_index == 0 else None


def _range_hash(start: int, end: int, subtree_hash: SubtreeHash) -> bytes:
    """MTH of leaves [start, end), from the perfect subtrees that cover them."""
    cover = _perfect_cover(start, end)
    return _fold_right([_stored(subtree_hash, level, index) for level, index in cover])


def _perfect_cover(start: int, end: int) -> list[tuple[int, int]]:
    """The (level, index) of the fewest perfect subtrees covering [start, end), left to right."""
    cover: list[tuple[int, int]] = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start:
            level = min(level, (start & -start).bit_length() - 1)
        cover.append((level, start >> level))
        start += 1 << level
    return cover


def _fold_right(hashes: Sequence[bytes]) -> bytes:
    """Join perfect subtrees, largest first, as the RFC's split joins the right edge."""
    root = hashes[-1]
    for left in reversed(hashes[:-1]):
        root = node_hash(left, root)
    return root


def _stored(subtree_hash: SubtreeHash, level: int, index: int) -> bytes:
    digest = bytes(subtree_hash(level, index))
    if len(digest) != HASH_SIZE:
        raise InvalidTreeArgument(f"subtree ({level}, {index}) has a {len(digest)}-byte hash")
    return digest


def _largest_power_of_two_below(count: int) -> int:
    assert count >= 2
    return 1 << ((count - 1).bit_length() - 1)


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _is_proof(proof: Sequence[bytes]) -> bool:
    return len(proof) <= PROOF_HASHES_MAX and all(_is_hash(node) for node in proof)


def _require_size(size: int) -> None:
    if not 0 <= size <= TREE_SIZE_MAX:
        raise InvalidTreeArgument(f"a tree cannot have {size} leaves")


def _require_hashes(hashes: Sequence[bytes]) -> None:
    if not all(_is_hash(digest) for digest in hashes):
        raise InvalidTreeArgument(f"hashes must be {HASH_SIZE} bytes")


def _require_frontier(frontier: Frontier, size: int) -> None:
    _require_size(size)
    _require_hashes(frontier)
    if len(frontier) != size.bit_count():
        raise InvalidTreeArgument(f"a tree of {size} leaves has {size.bit_count()} frontier hashes")
