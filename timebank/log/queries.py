"""The log's SQL, as named constants; values are always parameters."""

from timebank.ledger import queries as ledger_queries

SELECT_ORIGIN = "SELECT origin FROM log_identities WHERE community_id = $1"
# An origin is <prefix>/<slug> and names its community's slug (0025): unique across
# communities by construction, as slugs are.
INSERT_ORIGIN = """
INSERT INTO log_identities (community_id, slug, origin) VALUES ($1, $2, $3)
ON CONFLICT (community_id) DO NOTHING
"""
INSERT_KEY = """
INSERT INTO log_keys (community_id, vkey) VALUES ($1, $2) ON CONFLICT DO NOTHING
"""
SELECT_KEYS = "SELECT vkey FROM log_keys WHERE community_id = $1 ORDER BY created_at, vkey"
SELECT_SIZE = "SELECT coalesce((SELECT size FROM log_heads WHERE community_id = $1), 0)"
# Communities whose log grew since their last checkpoint.
SELECT_BEHIND = """
SELECT h.community_id, c.slug
  FROM log_heads h JOIN communities c ON c.id = h.community_id
 WHERE h.size > coalesce((SELECT max(c.tree_size) FROM log_checkpoints c
                           WHERE c.community_id = h.community_id), 0)
 ORDER BY h.community_id
"""
# One checkpointer per community at a time, in any number of processes.
TRY_LOCK_COMMUNITY = (
    "SELECT pg_try_advisory_xact_lock(hashtext('timebank.log'), hashtext($1::uuid::text))"
)
SELECT_LATEST_CHECKPOINT = """
SELECT tree_size, root_hash, note, created_at FROM log_checkpoints
 WHERE community_id = $1 ORDER BY tree_size DESC LIMIT 1
"""
SELECT_CHECKPOINT = """
SELECT tree_size, root_hash, note, created_at FROM log_checkpoints
 WHERE community_id = $1 AND tree_size = $2
"""
# Stored interior nodes, and leaf hashes (level 0) computed from the entries.
SELECT_NODES = """
SELECT n.level, n.index, n.hash
  FROM unnest($2::smallint[], $3::bigint[]) AS w(level, index)
  JOIN log_nodes n ON n.community_id = $1 AND n.level = w.level AND n.index = w.index
 WHERE w.level > 0
UNION ALL
SELECT 0::smallint, e.leaf_index, sha256('\\x00'::bytea || e.entry)
  FROM unnest($2::smallint[], $3::bigint[]) AS w(level, index)
  JOIN log_entries e ON e.community_id = $1 AND e.leaf_index = w.index
 WHERE w.level = 0
"""
INSERT_NODES = """
INSERT INTO log_nodes (community_id, level, index, hash)
SELECT $1, level, index, hash
  FROM unnest($2::smallint[], $3::bigint[], $4::bytea[]) AS n(level, index, hash)
"""
# Leaf hashes (RFC 9162: SHA-256 of 0x00 || entry), hashed where the entries are.
SELECT_LEAF_HASHES = """
SELECT leaf_index, sha256('\\x00'::bytea || entry) AS leaf_hash FROM log_entries
 WHERE community_id = $1 AND leaf_index >= $2 AND leaf_index < $3
 ORDER BY leaf_index
"""
SELECT_ENTRIES = """
SELECT leaf_index, entry FROM log_entries
 WHERE community_id = $1 AND leaf_index >= $2 AND leaf_index < $3
 ORDER BY leaf_index
"""
INSERT_CHECKPOINT = """
INSERT INTO log_checkpoints (community_id, tree_size, root_hash, note) VALUES ($1, $2, $3, $4)
RETURNING created_at
"""
SELECT_COSIGNATURES = """
SELECT witness_name, signature_line FROM log_cosignatures
 WHERE community_id = $1 AND tree_size = $2 ORDER BY witness_name
"""
INSERT_WITNESS = """
INSERT INTO log_witnesses (community_id, name, vkey) VALUES ($1, $2, $3)
ON CONFLICT DO NOTHING RETURNING created_at
"""
SELECT_WITNESSES = """
SELECT name, vkey, created_at FROM log_witnesses WHERE community_id = $1 ORDER BY name
"""
INSERT_COSIGNATURE = """
INSERT INTO log_cosignatures (community_id, tree_size, witness_name, signature_line)
VALUES ($1, $2, $3, $4)
ON CONFLICT (community_id, tree_size, witness_name)
DO UPDATE SET signature_line = EXCLUDED.signature_line
"""
SELECT_TRANSACTION_LEAVES = ledger_queries.SELECT_TRANSACTION_LOG_ENTRIES
