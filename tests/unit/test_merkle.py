"""The journal's Merkle tree: RFC 9162 roots, frontiers, proofs and their verification.

Known answers come from independent implementations and the RFC, cited where they are used:

- transparency-dev/merkle (Go), testonly/constants.go: the eight leaf inputs (also those of
  google/certificate-transparency's merkle_tree_test.cc), every perfect subtree's hash, the root
  of every size 0..8 and the compact range (our frontier) of every size;
- transparency-dev/merkle, proof/verify_test.go: inclusion and consistency proofs as hashes,
  and the ways it corrupts them;
- transparency-dev/merkle, proof/proof_test.go: which stored nodes each proof is made of;
- RFC 6962 section 2.1.3 (the same example is RFC 9162 section 2.1.5): the seven-leaf tree
  with its inclusion paths and consistency proofs named by node.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from timebank.log.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    PROOF_HASHES_MAX,
    TREE_SIZE_MAX,
    Frontier,
    InvalidTreeArgument,
    SubtreeHash,
    append,
    append_with_nodes,
    consistency_proof,
    frontier_of,
    inclusion_proof,
    leaf_hash,
    node_hash,
    perfect_subtree_levels,
    root_from_frontier,
    root_of,
    subtree_hash_of,
    verify_consistency,
    verify_inclusion,
)

# transparency-dev/merkle testonly/constants.go, LeafInputs().
LEAF_INPUTS = [
    bytes.fromhex(text)
    for text in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]

# transparency-dev/merkle testonly/constants.go, RootHashes(): index = tree size.
ROOTS_BY_SIZE = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]

# transparency-dev/merkle testonly/constants.go, NodeHashes(): [level][index].
NODE_HASHES = [
    [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    [
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    [
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    ["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
]

# transparency-dev/merkle testonly/constants.go, CompactTrees(): index = tree size, as
# (level, index) into NODE_HASHES.
FRONTIER_NODES_BY_SIZE: list[list[tuple[int, int]]] = [
    [],
    [(0, 0)],
    [(1, 0)],
    [(1, 0), (0, 2)],
    [(2, 0)],
    [(2, 0), (0, 4)],
    [(2, 0), (1, 2)],
    [(2, 0), (1, 2), (0, 6)],
    [(3, 0)],
]

# transparency-dev/merkle proof/verify_test.go, inclusionProofs (its leaf numbers start at 1;
# these are 0-based indexes): (leaf index, tree size, proof).
INCLUSION_VECTORS: list[tuple[int, int, list[str]]] = [
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (0, 1, []),
]

# transparency-dev/merkle proof/verify_test.go, consistencyProofs: (old size, new size, proof).
CONSISTENCY_VECTORS: list[tuple[int, int, list[str]]] = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]

# transparency-dev/merkle proof/proof_test.go, TestInclusion: the stored nodes, as
# (level, index), that an inclusion proof of (leaf index, tree size) is made of.
INCLUSION_NODES: list[tuple[int, int, set[tuple[int, int]]]] = [
    (0, 1, set()),
    (0, 2, {(0, 1)}),
    (1, 3, {(0, 0), (0, 2)}),
    (0, 7, {(0, 1), (1, 1), (0, 6), (1, 2)}),
    (2, 7, {(0, 3), (1, 0), (0, 6), (1, 2)}),
    (4, 7, {(0, 5), (0, 6), (2, 0)}),
    (6, 7, {(1, 2), (2, 0)}),
    (3, 5, {(0, 2), (1, 0), (0, 4)}),
    (4, 6, {(0, 5), (2, 0)}),
    (10, 15, {(0, 11), (1, 4), (0, 14), (1, 6), (3, 0)}),
    (24, 31, {(0, 25), (1, 13), (0, 30), (1, 14), (3, 2), (4, 0)}),
    (81, 95, {(0, 80), (1, 41), (2, 21), (0, 94), (1, 46), (2, 22), (4, 4), (6, 0)}),
]

# transparency-dev/merkle proof/proof_test.go, TestConsistency: (old size, new size, nodes).
CONSISTENCY_NODES: list[tuple[int, int, set[tuple[int, int]]]] = [
    (1, 2, {(0, 1)}),
    (1, 4, {(0, 1), (1, 1)}),
    (1, 6, {(0, 1), (1, 1), (1, 2)}),
    (2, 3, {(0, 2)}),
    (2, 8, {(1, 1), (2, 1)}),
    (3, 7, {(0, 2), (0, 3), (1, 0), (0, 6), (1, 2)}),
    (4, 7, {(0, 6), (1, 2)}),
    (5, 7, {(0, 4), (0, 5), (0, 6), (2, 0)}),
    (6, 7, {(1, 2), (0, 6), (2, 0)}),
    (7, 8, {(0, 6), (0, 7), (1, 2), (2, 0)}),
    (5, 5, set()),
    (3, 6, {(0, 2), (0, 3), (1, 0), (1, 2)}),
    (10, 15, {(1, 4), (1, 5), (0, 14), (1, 6), (3, 0)}),
    (24, 31, {(3, 2), (0, 30), (1, 14), (2, 6), (4, 0)}),
    (81, 95, {(0, 80), (0, 81), (1, 41), (2, 21), (0, 94), (1, 46), (2, 22), (4, 4), (6, 0)}),
]

# transparency-dev/merkle proof/verify_test.go: a hash that is in no test tree.
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")

# A bigger tree for the properties: perfect subtrees never change as a tree grows, so one
# table of them serves every prefix of these leaves.
PROPERTY_SIZE_MAX = 300
PROPERTY_LEAVES = [leaf_hash(i.to_bytes(4, "big")) for i in range(2 * PROPERTY_SIZE_MAX + 1)]
PROPERTY_SUBTREES = subtree_hash_of(PROPERTY_LEAVES)
EXHAUSTIVE_SIZE_MAX = 40


def hashes(texts: Sequence[str]) -> list[bytes]:
    return [bytes.fromhex(text) for text in texts]


def vector_leaf_hashes() -> list[bytes]:
    return [leaf_hash(entry) for entry in LEAF_INPUTS]


def prefix_roots(leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """The root of every prefix of `leaf_hashes`, sizes 0..len, grown through the frontier."""
    roots = [EMPTY_ROOT]
    frontier: Frontier = ()
    for size, new_leaf_hash in enumerate(leaf_hashes):
        frontier = append(frontier, size, new_leaf_hash)
        roots.append(root_from_frontier(frontier, size + 1))
    return roots


PROPERTY_ROOTS = prefix_roots(PROPERTY_LEAVES)


def recording(subtree_hash: SubtreeHash) -> tuple[SubtreeHash, set[tuple[int, int]]]:
    """A SubtreeHash that also remembers which nodes it was asked for."""
    reads: set[tuple[int, int]] = set()

    def recorded(level: int, index: int) -> bytes:
        reads.add((level, index))
        return subtree_hash(level, index)

    return recorded, reads


def flip_bit(data: bytes, position: int, bit: int = 0) -> bytes:
    changed = bytearray(data)
    changed[position] ^= 1 << bit
    return bytes(changed)


def with_replaced(proof: Sequence[bytes], position: int, node: bytes) -> list[bytes]:
    changed = list(proof)
    changed[position] = node
    return changed


# Known answers.


def test_hashes_are_domain_separated_sha256() -> None:
    """A leaf is SHA-256(0x00 || entry), a node SHA-256(0x01 || left || right): the leaf hashes
    of the test inputs are transparency-dev's level-0 nodes and the empty root is SHA-256("")."""
    assert [leaf_hash(entry).hex() for entry in LEAF_INPUTS] == NODE_HASHES[0]
    first, second = (bytes.fromhex(text) for text in NODE_HASHES[0][:2])
    assert node_hash(first, second).hex() == NODE_HASHES[1][0]
    assert EMPTY_ROOT.hex() == ROOTS_BY_SIZE[0]


def test_root_of_matches_the_published_roots_of_sizes_0_to_8() -> None:
    """root_of (the RFC's recursive MTH) gives transparency-dev's root for every size 0..8."""
    leaf_hashes = vector_leaf_hashes()
    actual = [root_of(leaf_hashes[:size]).hex() for size in range(len(leaf_hashes) + 1)]
    assert actual == ROOTS_BY_SIZE


def test_frontier_roots_match_the_published_roots_of_sizes_0_to_8() -> None:
    """Appending the test leaves one at a time gives the published root at every size."""
    assert [root.hex() for root in prefix_roots(vector_leaf_hashes())] == ROOTS_BY_SIZE


def test_frontiers_match_the_published_compact_ranges() -> None:
    """The frontier of each size holds exactly transparency-dev's compact-range hashes."""
    frontier: Frontier = ()
    actual: list[list[str]] = [[]]
    for size, new_leaf_hash in enumerate(vector_leaf_hashes()):
        frontier = append(frontier, size, new_leaf_hash)
        actual.append([digest.hex() for digest in frontier])
    expected = [
        [NODE_HASHES[level][index] for level, index in nodes] for nodes in FRONTIER_NODES_BY_SIZE
    ]
    assert actual == expected


def test_perfect_subtree_levels_match_the_published_node_hashes() -> None:
    """The in-memory helper computes every perfect subtree of the 8 leaves as published."""
    levels = perfect_subtree_levels(vector_leaf_hashes())
    assert [[digest.hex() for digest in level] for level in levels] == NODE_HASHES


def test_append_names_the_subtrees_each_leaf_completes() -> None:
    """Appending leaf 7 of 8 completes the leaf (0, 7) and nodes (1, 3), (2, 1) and (3, 0),
    lowest first, with the published hashes; appending leaf 4 completes only the leaf."""
    leaf_hashes = vector_leaf_hashes()
    frontier: Frontier = ()
    reported = []
    for size, new_leaf_hash in enumerate(leaf_hashes):
        appended = append_with_nodes(frontier, size, new_leaf_hash)
        frontier = appended.frontier
        reported.append([(n.level, n.index, n.digest.hex()) for n in appended.new_nodes])
    assert reported[4] == [(0, 4, NODE_HASHES[0][4])]
    assert reported[7] == [
        (0, 7, NODE_HASHES[0][7]),
        (1, 3, NODE_HASHES[1][3]),
        (2, 1, NODE_HASHES[2][1]),
        (3, 0, NODE_HASHES[3][0]),
    ]


@pytest.mark.parametrize(("leaf_index", "tree_size", "expected"), INCLUSION_VECTORS)
def test_inclusion_proofs_match_the_published_vectors(
    leaf_index: int, tree_size: int, expected: list[str]
) -> None:
    """PATH(m, D[n]) is built and verified exactly as transparency-dev publishes it."""
    leaf_hashes = vector_leaf_hashes()
    proof = inclusion_proof(leaf_index, tree_size, subtree_hash_of(leaf_hashes[:tree_size]))
    assert [node.hex() for node in proof] == expected
    root = bytes.fromhex(ROOTS_BY_SIZE[tree_size])
    assert verify_inclusion(leaf_hashes[leaf_index], leaf_index, tree_size, proof, root) is True


@pytest.mark.parametrize(("old_size", "new_size", "expected"), CONSISTENCY_VECTORS)
def test_consistency_proofs_match_the_published_vectors(
    old_size: int, new_size: int, expected: list[str]
) -> None:
    """PROOF(m, D[n]) is built and verified exactly as transparency-dev publishes it."""
    subtrees = subtree_hash_of(vector_leaf_hashes()[:new_size])
    proof = consistency_proof(old_size, new_size, subtrees)
    assert [node.hex() for node in proof] == expected
    old_root = bytes.fromhex(ROOTS_BY_SIZE[old_size])
    new_root = bytes.fromhex(ROOTS_BY_SIZE[new_size])
    assert verify_consistency(old_size, new_size, old_root, new_root, proof) is True


@pytest.mark.parametrize(("leaf_index", "tree_size", "expected"), INCLUSION_NODES)
def test_inclusion_proofs_read_the_published_stored_nodes(
    leaf_index: int, tree_size: int, expected: set[tuple[int, int]]
) -> None:
    """An inclusion proof reads exactly the perfect subtrees transparency-dev's proof uses."""
    subtree_hash, reads = recording(PROPERTY_SUBTREES)
    inclusion_proof(leaf_index, tree_size, subtree_hash)
    assert reads == expected


@pytest.mark.parametrize(("old_size", "new_size", "expected"), CONSISTENCY_NODES)
def test_consistency_proofs_read_the_published_stored_nodes(
    old_size: int, new_size: int, expected: set[tuple[int, int]]
) -> None:
    """A consistency proof reads exactly the perfect subtrees transparency-dev's proof uses."""
    subtree_hash, reads = recording(PROPERTY_SUBTREES)
    consistency_proof(old_size, new_size, subtree_hash)
    assert reads == expected


def test_the_rfc_example_tree_of_seven_leaves() -> None:
    """RFC 6962 section 2.1.3 (RFC 9162 section 2.1.5): the inclusion paths of d0, d3, d4, d6
    are [b, h, l], [c, g, l], [f, j, k], [i, k]; PROOF(3, D[7]) = [c, d, g, l],
    PROOF(4, D[7]) = [l] and PROOF(6, D[7]) = [i, j, k]."""
    a, b, c, d, e, f, j = (leaf_hash(bytes([n])) for n in range(7))
    g, h, i = node_hash(a, b), node_hash(c, d), node_hash(e, f)
    k, l = node_hash(g, h), node_hash(i, j)  # noqa: E741 (the RFC's name for the node)
    subtrees = subtree_hash_of([a, b, c, d, e, f, j])
    actual_paths = [inclusion_proof(index, 7, subtrees) for index in (0, 3, 4, 6)]
    actual_proofs = [consistency_proof(old_size, 7, subtrees) for old_size in (3, 4, 6)]
    assert actual_paths == [[b, h, l], [c, g, l], [f, j, k], [i, k]]
    assert actual_proofs == [[c, d, g, l], [l], [i, j, k]]
    assert root_of([a, b, c, d, e, f, j]) == node_hash(k, l)


# Verification refuses what transparency-dev's probes refuse.


def corrupted_inclusions(
    leaf: bytes, leaf_index: int, tree_size: int, proof: list[bytes], root: bytes
) -> dict[str, tuple[bytes, int, int, list[bytes], bytes]]:
    """transparency-dev's corruptInclusionProof: every way to get an inclusion proof wrong."""
    probes = {
        "index - 1": (leaf, leaf_index - 1, tree_size, proof, root),
        "index + 1": (leaf, leaf_index + 1, tree_size, proof, root),
        "index ^ 2": (leaf, leaf_index ^ 2, tree_size, proof, root),
        "size * 2": (leaf, leaf_index, tree_size * 2, proof, root),
        "size / 2": (leaf, leaf_index, tree_size // 2, proof, root),
        "wrong leaf": (b"WrongLeaf", leaf_index, tree_size, proof, root),
        "empty root": (leaf, leaf_index, tree_size, proof, EMPTY_ROOT),
        "random root": (leaf, leaf_index, tree_size, proof, SOME_HASH),
        "trailing garbage": (leaf, leaf_index, tree_size, [*proof, b""], root),
        "trailing root": (leaf, leaf_index, tree_size, [*proof, root], root),
        "preceding garbage": (leaf, leaf_index, tree_size, [b"", *proof], root),
        "preceding root": (leaf, leaf_index, tree_size, [root, *proof], root),
    }
    for position, node in enumerate(proof):
        changed = with_replaced(proof, position, flip_bit(node, 0, 3))
        probes[f"proof[{position}] bit 3"] = (leaf, leaf_index, tree_size, changed, root)
    if proof:
        probes["removed component"] = (leaf, leaf_index, tree_size, proof[:-1], root)
    if len(proof) > 1:
        inserted = [proof[0], SOME_HASH, *proof[1:]]
        probes["inserted component"] = (leaf, leaf_index, tree_size, inserted, root)
    return probes


@pytest.mark.parametrize(("leaf_index", "tree_size", "published"), INCLUSION_VECTORS)
def test_corrupted_inclusion_proofs_are_refused(
    leaf_index: int, tree_size: int, published: list[str]
) -> None:
    """No probe of transparency-dev's corruptInclusionProof verifies."""
    leaf = vector_leaf_hashes()[leaf_index]
    root = bytes.fromhex(ROOTS_BY_SIZE[tree_size])
    probes = corrupted_inclusions(leaf, leaf_index, tree_size, hashes(published), root)
    accepted = [name for name, probe in probes.items() if verify_inclusion(*probe)]
    assert accepted == []


def corrupted_consistencies(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> dict[str, tuple[int, int, bytes, bytes, list[bytes]]]:
    """transparency-dev's corruptConsistencyProof: every way to get a consistency proof wrong."""
    probes = {
        "old size - 1": (old_size - 1, new_size, old_root, new_root, proof),
        "old size + 1": (old_size + 1, new_size, old_root, new_root, proof),
        "old size ^ 2": (old_size ^ 2, new_size, old_root, new_root, proof),
        "new size * 2": (old_size, new_size * 2, old_root, new_root, proof),
        "new size / 2": (old_size, new_size // 2, old_root, new_root, proof),
        "wrong old root": (old_size, new_size, b"WrongRoot", new_root, proof),
        "wrong new root": (old_size, new_size, old_root, b"WrongRoot", proof),
        "swapped roots": (old_size, new_size, new_root, old_root, proof),
        "empty proof": (old_size, new_size, old_root, new_root, []),
        "trailing garbage": (old_size, new_size, old_root, new_root, [*proof, b""]),
        "trailing old root": (old_size, new_size, old_root, new_root, [*proof, old_root]),
        "trailing new root": (old_size, new_size, old_root, new_root, [*proof, new_root]),
        "preceding garbage": (old_size, new_size, old_root, new_root, [b"", *proof]),
        "preceding old root": (old_size, new_size, old_root, new_root, [old_root, *proof]),
        "preceding new root": (old_size, new_size, old_root, new_root, [new_root, *proof]),
        "preceding proof[0]": (old_size, new_size, old_root, new_root, [proof[0], *proof]),
        "truncated proof": (old_size, new_size, old_root, new_root, proof[:-1]),
    }
    for position, node in enumerate(proof):
        changed = with_replaced(proof, position, flip_bit(node, 0, 4))
        probes[f"proof[{position}] bit 4"] = (old_size, new_size, old_root, new_root, changed)
    return probes


@pytest.mark.parametrize(
    ("old_size", "new_size", "published"),
    [vector for vector in CONSISTENCY_VECTORS if vector[2]],
)
def test_corrupted_consistency_proofs_are_refused(
    old_size: int, new_size: int, published: list[str]
) -> None:
    """No probe of transparency-dev's corruptConsistencyProof verifies."""
    old_root = bytes.fromhex(ROOTS_BY_SIZE[old_size])
    new_root = bytes.fromhex(ROOTS_BY_SIZE[new_size])
    probes = corrupted_consistencies(old_size, new_size, old_root, new_root, hashes(published))
    accepted = [name for name, probe in probes.items() if verify_consistency(*probe)]
    assert accepted == []


@pytest.mark.parametrize(
    ("leaf_index", "tree_size", "leaf", "root"),
    [
        (0, 0, SOME_HASH, EMPTY_ROOT),
        (1, 0, SOME_HASH, EMPTY_ROOT),
        (2, 1, SOME_HASH, SOME_HASH),
        (0, 1, SOME_HASH, b""),
        (0, 1, b"", SOME_HASH),
        (0, 1, b"", b""),
        (-1, 1, SOME_HASH, SOME_HASH),
        (0, -1, SOME_HASH, SOME_HASH),
        (0, TREE_SIZE_MAX + 1, SOME_HASH, SOME_HASH),
    ],
)
def test_inclusion_in_impossible_trees_is_refused(
    leaf_index: int, tree_size: int, leaf: bytes, root: bytes
) -> None:
    """An index outside the tree, a negative or too large size, or a hash of the wrong length
    is False, not an exception (transparency-dev's TestVerifyInclusion and single-entry test)."""
    assert verify_inclusion(leaf, leaf_index, tree_size, [], root) is False


def test_a_single_leaf_is_its_own_root() -> None:
    """In a tree of one leaf the empty proof shows the leaf, whose hash is the root."""
    single = leaf_hash(b"data")
    assert verify_inclusion(single, 0, 1, [], single) is True
    assert root_of([single]) == single


@pytest.mark.parametrize(
    ("old_size", "new_size", "old_root", "new_root", "proof", "expected"),
    [
        # transparency-dev's TestVerifyConsistency, where our stricter rules agree.
        (0, 0, b"don't care 1", b"don't care 2", [], False),
        (1, 1, b"don't care 1", b"don't care 2", [], False),
        (1, 1, SOME_HASH, SOME_HASH, [], True),
        (1, 0, SOME_HASH, SOME_HASH, [], False),
        (2, 1, SOME_HASH, SOME_HASH, [], False),
        (1, 2, SOME_HASH, SOME_HASH, [], False),
        (0, 0, EMPTY_ROOT, SOME_HASH, [], False),
        (1, 1, EMPTY_ROOT, SOME_HASH, [], False),
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
        (0, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
        (1, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
        # Ours: the empty tree's root must be EMPTY_ROOT, and it is a prefix of every tree.
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [], True),
        (0, 5, EMPTY_ROOT, SOME_HASH, [], True),
        (0, 5, SOME_HASH, SOME_HASH, [], False),
        (0, 5, EMPTY_ROOT, b"short", [], False),
        (-1, 5, EMPTY_ROOT, SOME_HASH, [], False),
        (3, TREE_SIZE_MAX + 1, SOME_HASH, SOME_HASH, [SOME_HASH], False),
    ],
)
def test_consistency_edge_cases(
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: list[bytes],
    expected: bool,
) -> None:
    """Equal sizes need equal roots and an empty proof; shrinking is refused; the empty tree
    (root EMPTY_ROOT, empty proof) precedes every tree; wrong lengths are refused."""
    assert verify_consistency(old_size, new_size, old_root, new_root, proof) is expected


def test_overlong_and_mistyped_proofs_are_refused_without_raising() -> None:
    """A proof longer than any tree needs, or holding something other than 32-byte hashes,
    is False, not an exception."""
    leaf = PROPERTY_LEAVES[0]
    root = PROPERTY_ROOTS[2]
    overlong = [PROPERTY_LEAVES[1]] * (PROOF_HASHES_MAX + 1)
    mistyped = cast(list[bytes], ["a string, not bytes", None])
    assert verify_inclusion(leaf, 0, 2, overlong, root) is False
    assert verify_inclusion(leaf, 0, 2, mistyped, root) is False
    assert verify_consistency(1, 2, leaf, root, overlong) is False
    assert verify_consistency(1, 2, leaf, root, mistyped) is False


# Programming errors are loud.


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda: inclusion_proof(5, 5, PROPERTY_SUBTREES), id="index == size"),
        pytest.param(lambda: inclusion_proof(-1, 5, PROPERTY_SUBTREES), id="negative index"),
        pytest.param(lambda: inclusion_proof(0, 0, PROPERTY_SUBTREES), id="empty tree"),
        pytest.param(lambda: consistency_proof(6, 5, PROPERTY_SUBTREES), id="shrinking"),
        pytest.param(lambda: consistency_proof(-1, 5, PROPERTY_SUBTREES), id="negative size"),
        pytest.param(
            lambda: consistency_proof(1, TREE_SIZE_MAX + 1, PROPERTY_SUBTREES), id="size > max"
        ),
        pytest.param(lambda: append((), 1, EMPTY_ROOT), id="frontier too short"),
        pytest.param(lambda: append((EMPTY_ROOT,), 1, b"short"), id="short leaf hash"),
        pytest.param(lambda: root_from_frontier((EMPTY_ROOT,), 3), id="frontier shape"),
        pytest.param(lambda: root_of([b"short"]), id="short hash in root_of"),
        pytest.param(lambda: frontier_of(-1, PROPERTY_SUBTREES), id="negative frontier size"),
        pytest.param(
            lambda: inclusion_proof(0, 4, subtree_hash_of(PROPERTY_LEAVES[:2])), id="missing node"
        ),
        pytest.param(
            lambda: inclusion_proof(0, 2, lambda level, index: b"short"), id="short stored node"
        ),
    ],
)
def test_impossible_requests_raise_invalid_tree_argument(call: Callable[[], object]) -> None:
    """Building a proof outside the tree, appending to a frontier of the wrong shape, or a
    store serving a missing or malformed node raises InvalidTreeArgument."""
    with pytest.raises(InvalidTreeArgument):
        call()


# Properties over many trees.


def test_frontier_roots_equal_root_of_for_every_small_size() -> None:
    """Appending leaf by leaf gives root_of(all leaves so far) at every size up to the limit,
    and the frontier can be read back from stored subtrees."""
    for size in range(EXHAUSTIVE_SIZE_MAX * 4):
        assert PROPERTY_ROOTS[size] == root_of(PROPERTY_LEAVES[:size])
    frontier: Frontier = ()
    for size in range(EXHAUSTIVE_SIZE_MAX * 4):
        assert frontier == frontier_of(size, PROPERTY_SUBTREES)
        frontier = append(frontier, size, PROPERTY_LEAVES[size])


def test_every_proof_of_every_small_tree_verifies() -> None:
    """Every inclusion proof and every consistency proof of every tree up to the limit
    verifies against the roots."""
    failures = []
    for new_size in range(1, EXHAUSTIVE_SIZE_MAX + 1):
        new_root = PROPERTY_ROOTS[new_size]
        for index in range(new_size):
            proof = inclusion_proof(index, new_size, PROPERTY_SUBTREES)
            if not verify_inclusion(PROPERTY_LEAVES[index], index, new_size, proof, new_root):
                failures.append(("inclusion", index, new_size))
        for old_size in range(new_size + 1):
            proof = consistency_proof(old_size, new_size, PROPERTY_SUBTREES)
            old_root = PROPERTY_ROOTS[old_size]
            if not verify_consistency(old_size, new_size, old_root, new_root, proof):
                failures.append(("consistency", old_size, new_size))
    assert failures == []


@given(entries=st.lists(st.binary(max_size=16), max_size=PROPERTY_SIZE_MAX))
def test_frontier_root_equals_root_of_for_any_entries(entries: list[bytes]) -> None:
    """For any entries, appending their leaf hashes one by one ends at root_of(all of them),
    and the nodes reported along the way are each of the tree's perfect subtrees, once."""
    leaf_hashes = [leaf_hash(entry) for entry in entries]
    frontier: Frontier = ()
    reported: list[tuple[int, int, bytes]] = []
    for size, new_leaf_hash in enumerate(leaf_hashes):
        appended = append_with_nodes(frontier, size, new_leaf_hash)
        frontier = appended.frontier
        reported.extend((node.level, node.index, node.digest) for node in appended.new_nodes)
    levels = perfect_subtree_levels(leaf_hashes)
    expected = [
        (level, index, digest)
        for level, digests in enumerate(levels)
        for index, digest in enumerate(digests)
        if digests
    ]
    assert sorted(reported) == sorted(expected)
    assert root_from_frontier(frontier, len(leaf_hashes)) == root_of(leaf_hashes)


@st.composite
def leaves_in_trees(draw: st.DrawFn) -> tuple[int, int]:
    tree_size = draw(st.integers(min_value=1, max_value=PROPERTY_SIZE_MAX))
    return draw(st.integers(min_value=0, max_value=tree_size - 1)), tree_size


@given(position=leaves_in_trees(), data=st.data())
def test_inclusion_proofs_verify_and_any_change_is_refused(
    position: tuple[int, int], data: st.DataObject
) -> None:
    """An inclusion proof verifies; flipping any bit of the proof, the leaf or the root, using
    another index, or doubling or halving the size makes it fail."""
    leaf_index, tree_size = position
    leaf, root = PROPERTY_LEAVES[leaf_index], PROPERTY_ROOTS[tree_size]
    proof = inclusion_proof(leaf_index, tree_size, PROPERTY_SUBTREES)
    assert verify_inclusion(leaf, leaf_index, tree_size, proof, root) is True
    byte = data.draw(st.integers(0, HASH_SIZE - 1))
    bit = data.draw(st.integers(0, 7))
    wrong = [
        (flip_bit(leaf, byte, bit), leaf_index, tree_size, proof, root),
        (leaf, leaf_index, tree_size, proof, flip_bit(root, byte, bit)),
        (leaf, leaf_index, tree_size * 2, proof, root),
        (leaf, leaf_index, tree_size // 2, proof, root),
    ]
    if tree_size > 1:
        other_index = data.draw(st.integers(0, tree_size - 1).filter(lambda i: i != leaf_index))
        wrong.append((leaf, other_index, tree_size, proof, root))
    if proof:
        node = data.draw(st.integers(0, len(proof) - 1))
        changed = with_replaced(proof, node, flip_bit(proof[node], byte, bit))
        wrong.append((leaf, leaf_index, tree_size, changed, root))
    assert [probe for probe in wrong if verify_inclusion(*probe)] == []


@st.composite
def growths(draw: st.DrawFn) -> tuple[int, int]:
    new_size = draw(st.integers(min_value=2, max_value=PROPERTY_SIZE_MAX))
    return draw(st.integers(min_value=1, max_value=new_size - 1)), new_size


@given(sizes=growths(), data=st.data())
def test_consistency_proofs_verify_and_any_change_is_refused(
    sizes: tuple[int, int], data: st.DataObject
) -> None:
    """A consistency proof between two sizes verifies; flipping any bit of the proof or of
    either root, changing the old size by one, doubling or halving the new size, or dropping
    or adding a hash makes it fail."""
    old_size, new_size = sizes
    old_root, new_root = PROPERTY_ROOTS[old_size], PROPERTY_ROOTS[new_size]
    proof = consistency_proof(old_size, new_size, PROPERTY_SUBTREES)
    assert verify_consistency(old_size, new_size, old_root, new_root, proof) is True
    byte = data.draw(st.integers(0, HASH_SIZE - 1))
    bit = data.draw(st.integers(0, 7))
    node = data.draw(st.integers(0, len(proof) - 1))
    changed = with_replaced(proof, node, flip_bit(proof[node], byte, bit))
    wrong = [
        (old_size, new_size, old_root, new_root, changed),
        (old_size, new_size, flip_bit(old_root, byte, bit), new_root, proof),
        (old_size, new_size, old_root, flip_bit(new_root, byte, bit), proof),
        (old_size - 1, new_size, old_root, new_root, proof),
        (old_size + 1, new_size, old_root, new_root, proof),
        (old_size, new_size * 2, old_root, new_root, proof),
        (old_size, new_size // 2, old_root, new_root, proof),
        (old_size, new_size, old_root, new_root, proof[:-1]),
        (old_size, new_size, old_root, new_root, [*proof, proof[-1]]),
    ]
    assert [probe[:2] for probe in wrong if verify_consistency(*probe)] == []


@given(
    leaf_index=st.integers(min_value=-(2**70), max_value=2**70),
    tree_size=st.integers(min_value=-(2**70), max_value=2**70),
    digests=st.lists(st.binary(max_size=40), min_size=2, max_size=PROOF_HASHES_MAX + 2),
)
def test_verifiers_never_raise_on_arbitrary_input(
    leaf_index: int, tree_size: int, digests: list[bytes]
) -> None:
    """Any sizes, indexes and byte strings give a bool (almost always False), never an error."""
    first, second, *proof = digests
    inclusion = verify_inclusion(first, leaf_index, tree_size, proof, second)
    consistency = verify_consistency(leaf_index, tree_size, first, second, proof)
    assert (type(inclusion), type(consistency)) == (bool, bool)
