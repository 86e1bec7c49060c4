"""The schema shards by community (docs/scaling.md): checked on the catalog of the
migrated database, so a new table or constraint that would tie communities
together fails here instead of in production on a distributed PostgreSQL.

A community-keyed table has `community_id` first in its primary key (the
distribution column: all of a community's rows live on one node); a global table
is small and copied to every node (a reference table). The rules: every table is
one or the other; a unique index of a community-keyed table includes
`community_id` (a node can only enforce uniqueness among its own rows); a foreign
key between community-keyed tables matches `community_id` to `community_id`, so no
row can point into another community; global tables never point at
community-keyed ones."""

from __future__ import annotations

import asyncpg

# Global by nature: identities that span communities, the directory of
# communities (its id *is* the community: the distribution key's own table, with
# the globally unique slug), the login throttle, the migration record, and the
# frozen map from the bare client_ids issued before migration 0025 to their
# community (written by that migration only; a trigger refuses any addition).
GLOBAL_TABLES = {
    "communities",
    "people",
    "refresh_tokens",
    "login_failures",
    "schema_migrations",
    "api_client_legacy_ids",
}
# Known gaps, to close with a migration before sharding (docs/scaling.md, "Before
# sharding"). Listed so that nothing new joins them; the test fails when one is
# fixed and still listed. None left since migration 0025 (api_clients).
NOT_YET_COMMUNITY_KEYED: set[str] = set()
# Unique indexes of community tables without community_id. None left since
# migration 0025: log origins are unique by construction (they end with the
# community's slug, tied to communities (id, slug)).
UNIQUE_ACROSS_COMMUNITIES: set[str] = set()

PRIMARY_KEYS = """
    SELECT c.relname AS table_name,
           (SELECT array_agg(a.attname ORDER BY k.position)
              FROM unnest(p.conkey) WITH ORDINALITY AS k(attnum, position)
              JOIN pg_attribute a ON a.attrelid = p.conrelid AND a.attnum = k.attnum
           ) AS columns
      FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_constraint p ON p.conrelid = c.oid AND p.contype = 'p'
     WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
"""
UNIQUE_INDEXES = """
    SELECT t.relname AS table_name, i.relname AS index_name,
           array(SELECT a.attname FROM unnest(x.indkey) AS k(attnum)
                   JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
           ) AS columns
      FROM pg_index x
      JOIN pg_class i ON i.oid = x.indexrelid
      JOIN pg_class t ON t.oid = x.indrelid
      JOIN pg_namespace n ON n.oid = t.relnamespace
     WHERE n.nspname = 'public' AND x.indisunique
"""
FOREIGN_KEYS = """
    SELECT f.conname AS name, s.relname AS source, d.relname AS target,
           array(SELECT a.attname FROM unnest(f.conkey) WITH ORDINALITY AS k(attnum, position)
                   JOIN pg_attribute a ON a.attrelid = f.conrelid AND a.attnum = k.attnum
                  ORDER BY k.position) AS source_columns,
           array(SELECT a.attname FROM unnest(f.confkey) WITH ORDINALITY AS k(attnum, position)
                   JOIN pg_attribute a ON a.attrelid = f.confrelid AND a.attnum = k.attnum
                  ORDER BY k.position) AS target_columns
      FROM pg_constraint f
      JOIN pg_class s ON s.oid = f.conrelid
      JOIN pg_class d ON d.oid = f.confrelid
      JOIN pg_namespace n ON n.oid = f.connamespace
     WHERE n.nspname = 'public' AND f.contype = 'f'
"""


async def primary_keys(pool: asyncpg.Pool) -> dict[str, list[str]]:
    return {row["table_name"]: list(row["columns"] or []) for row in await pool.fetch(PRIMARY_KEYS)}


def community_keyed(keys: dict[str, list[str]]) -> set[str]:
    return {table for table, columns in keys.items() if columns[:1] == ["community_id"]}


async def test_every_table_is_keyed_by_community_first_or_a_named_exception(
    pool: asyncpg.Pool,
) -> None:
    """Each table's primary key begins with community_id, unless it is a listed
    global table or a listed gap; and every listed exception is a table that
    really is not community-keyed (the lists stay true)."""
    keys = await primary_keys(pool)
    keyed = community_keyed(keys)
    exceptions = GLOBAL_TABLES | NOT_YET_COMMUNITY_KEYED
    unkeyed = {table: keys[table] for table in sorted(set(keys) - keyed - exceptions)}
    assert unkeyed == {}, "tables whose primary key does not start with community_id"
    assert sorted(exceptions - (set(keys) - keyed)) == [], "listed exceptions that are gone"


async def test_unique_indexes_of_community_tables_include_community_id(
    pool: asyncpg.Pool,
) -> None:
    """A node can only enforce uniqueness among its own rows: each unique index
    of a community-keyed table includes community_id (one listed gap)."""
    keyed = community_keyed(await primary_keys(pool))
    spanning = sorted(
        row["index_name"]
        for row in await pool.fetch(UNIQUE_INDEXES)
        if row["table_name"] in keyed
        and "community_id" not in row["columns"]
        and row["index_name"] not in UNIQUE_ACROSS_COMMUNITIES
    )
    assert spanning == []
    names = {row["index_name"] for row in await pool.fetch(UNIQUE_INDEXES)}
    assert names >= UNIQUE_ACROSS_COMMUNITIES, "a listed gap is gone: remove it from the list"


async def test_no_foreign_key_crosses_communities(pool: asyncpg.Pool) -> None:
    """A foreign key between community-keyed tables pairs community_id with
    community_id (or with communities.id); one from a community-keyed table to a
    global table is a reference; a global table never points at a community-keyed
    one. Keys touching the listed gaps are left to their migration."""
    keyed = community_keyed(await primary_keys(pool))
    crossing = []
    for row in await pool.fetch(FOREIGN_KEYS):
        source, target = row["source"], row["target"]
        if {source, target} & NOT_YET_COMMUNITY_KEYED:
            continue
        pairs = set(zip(row["source_columns"], row["target_columns"], strict=True))
        if source in keyed and target in keyed:
            joined = ("community_id", "community_id") in pairs
        elif source in keyed and target == "communities":
            joined = ("community_id", "id") in pairs
        elif source in keyed:
            joined = True  # to a global table, copied to every node
        else:
            joined = target in GLOBAL_TABLES
        if not joined:
            crossing.append(f"{row['name']}: {source} -> {target}")
    assert crossing == []
