-- The tamper-evident journal: per community, an append-only list of entries (the
-- leaves of an RFC 9162 Merkle tree), written by triggers in the same transaction
-- as the ledger change each tells of, with gap-free leaf indexes. Checkpoints
-- (signed tree heads) and the tree's interior nodes are added by the service's
-- checkpointer, outside the writing transactions.
--
-- An entry is RFC 8785 canonical JSON, built here from the rows: keys in sorted
-- order, no whitespace, strings escaped as JSON.stringify does (PostgreSQL's
-- to_json does the same), integers only for amounts (at most 2^53 - 1), and
-- bigger numbers (limits) as strings. The offline verifier re-canonicalises each
-- entry and requires the same bytes. Names, emails and memo texts never enter a
-- leaf: a memo appears as its SHA-256.

CREATE TABLE log_heads (
    community_id uuid        PRIMARY KEY REFERENCES communities (id),
    -- Leaves so far; the next entry gets this index.
    size         bigint      NOT NULL DEFAULT 0 CHECK (size >= 0)
);

-- A community's log identity: its origin (the first line of its checkpoints) and
-- the public keys that sign them, each kept for good so old checkpoints verify.
CREATE TABLE log_identities (
    community_id uuid        PRIMARY KEY REFERENCES communities (id),
    origin       text        NOT NULL UNIQUE CHECK (origin ~ '^[^\s+]{1,200}$')
);
CREATE TABLE log_keys (
    community_id uuid        NOT NULL REFERENCES communities (id),
    -- The verifier key: <name>+<hex key id>+<base64 of 0x01 || public key>.
    vkey         text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, vkey)
);

CREATE TABLE log_entries (
    community_id uuid   NOT NULL,
    leaf_index   bigint NOT NULL CHECK (leaf_index >= 0),
    entry        bytea  NOT NULL,
    PRIMARY KEY (community_id, leaf_index)
);

-- Hashes of perfect subtrees (2^level leaves from index * 2^level), level >= 0,
-- written by the checkpointer; proofs are read from here.
CREATE TABLE log_nodes (
    community_id uuid     NOT NULL,
    level        smallint NOT NULL CHECK (level BETWEEN 0 AND 62),
    index        bigint   NOT NULL CHECK (index >= 0),
    hash         bytea    NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (community_id, level, index)
);

CREATE TABLE log_checkpoints (
    community_id uuid        NOT NULL,
    tree_size    bigint      NOT NULL CHECK (tree_size >= 0),
    root_hash    bytea       NOT NULL CHECK (length(root_hash) = 32),
    -- The signed note (C2SP tlog-checkpoint), exactly as published.
    note         text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, tree_size)
);

-- Witnesses' cosignatures of checkpoints: one signature line each.
CREATE TABLE log_cosignatures (
    community_id   uuid        NOT NULL,
    tree_size      bigint      NOT NULL,
    witness_name   text        NOT NULL CHECK (witness_name ~ '^[^\s+]{1,200}$'),
    signature_line text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, tree_size, witness_name),
    FOREIGN KEY (community_id, tree_size) REFERENCES log_checkpoints (community_id, tree_size)
);

-- Whatever was logged stays as it was.
CREATE TRIGGER log_entries_append_only BEFORE UPDATE OR DELETE ON log_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER log_entries_no_truncate BEFORE TRUNCATE ON log_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER log_nodes_append_only BEFORE UPDATE OR DELETE ON log_nodes
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER log_checkpoints_append_only BEFORE UPDATE OR DELETE ON log_checkpoints
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER log_heads_no_delete BEFORE DELETE ON log_heads
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();

-- JSON pieces, canonical per RFC 8785 for the values entries hold.
CREATE FUNCTION log_json_text(p text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p IS NULL THEN 'null' ELSE to_json(p)::text END;
$$;

CREATE FUNCTION log_json_time(p timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p IS NULL THEN 'null'
                ELSE '"' || to_char(p AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') || '"' END;
$$;

CREATE FUNCTION log_json_uuid(p uuid) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p IS NULL THEN 'null' ELSE '"' || p::text || '"' END;
$$;

-- p_state: the state it was written in (a transaction confirmed later was pending).
CREATE FUNCTION log_transaction_entry(t transactions, p_state text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT '{"category":' || log_json_text(t.category)
        || ',"created_at":' || log_json_time(t.created_at)
        || ',"expires_at":' || log_json_time(t.expires_at)
        || ',"id":"' || t.id::text
        || '","kind":"' || t.kind::text
        || '","memo_sha256":"' || encode(sha256(convert_to(t.memo, 'UTF8')), 'hex')
        || '","postings":[' || (SELECT string_agg('["' || a::text || '",' || m::text || ']', ',' ORDER BY i)
                                  FROM unnest(t.leg_accounts, t.leg_amounts) WITH ORDINALITY AS l(a, m, i))
        || '],"reverses":' || log_json_uuid(t.reverses_id)
        || ',"state":"' || p_state
        || '","type":"transaction","v":1}';
$$;

CREATE FUNCTION log_resolution_entry(t transactions) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT '{"at":' || log_json_time(t.resolved_at)
        || ',"id":"' || t.id::text
        || '","state":"' || t.state::text
        || '","type":"resolution","v":1}';
$$;

CREATE FUNCTION log_account_entry(a accounts, p_unit_code text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT '{"account":"' || a.id::text
        || '","max_balance":"' || a.max_balance::text
        || '","min_balance":"' || a.min_balance::text
        || '","owner":"' || a.owner_id::text
        || '","purpose":' || log_json_text(a.purpose)
        || ',"status":"' || a.status::text
        || '","type":"account","unit":' || log_json_text(p_unit_code)
        || ',"v":1}';
$$;

CREATE FUNCTION log_unit_entry(u units) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT '{"code":' || log_json_text(u.code)
        || ',"decimals":' || u.decimals::text
        || ',"default_max_balance":"' || u.default_max_balance::text
        || '","default_min_balance":"' || u.default_min_balance::text
        || '","kind":"' || u.kind
        || '","type":"unit","unit":"' || u.id::text
        || '","v":1}';
$$;

-- Appends entries (in the given order) to each community's log: heads are locked
-- in community order, so concurrent appends never deadlock, and held until
-- commit, so indexes are gap-free and in commit order per community.
CREATE FUNCTION log_append(p_communities uuid[], p_entries text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_community uuid;
    v_start     bigint;
    v_count     bigint;
BEGIN
    FOR v_community, v_count IN
        SELECT c, count(*) FROM unnest(p_communities) AS c GROUP BY c ORDER BY c
    LOOP
        INSERT INTO log_heads (community_id) VALUES (v_community) ON CONFLICT DO NOTHING;
        UPDATE log_heads SET size = size + v_count WHERE community_id = v_community
        RETURNING size - v_count INTO v_start;
        INSERT INTO log_entries (community_id, leaf_index, entry)
        SELECT v_community, v_start + row_number() OVER (ORDER BY x.i) - 1,
               convert_to(x.e, 'UTF8')
          FROM unnest(p_communities, p_entries) WITH ORDINALITY AS x(c, e, i)
         WHERE x.c = v_community;
    END LOOP;
END
$$;

CREATE FUNCTION log_transactions_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_communities uuid[];
    v_entries     text[];
BEGIN
    SELECT array_agg(n.community_id ORDER BY n.created_at, n.id),
           array_agg(log_transaction_entry(n, n.state::text) ORDER BY n.created_at, n.id)
      INTO v_communities, v_entries
      FROM new_rows n;
    IF v_communities IS NOT NULL THEN
        PERFORM log_append(v_communities, v_entries);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER transactions_log_inserted AFTER INSERT ON transactions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION log_transactions_inserted();

CREATE FUNCTION log_transactions_resolved() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_communities uuid[];
    v_entries     text[];
BEGIN
    SELECT array_agg(n.community_id ORDER BY n.resolved_at, n.id),
           array_agg(log_resolution_entry(n) ORDER BY n.resolved_at, n.id)
      INTO v_communities, v_entries
      FROM new_rows n JOIN old_rows o ON o.community_id = n.community_id AND o.id = n.id
     WHERE o.state = 'pending' AND n.state <> 'pending';
    IF v_communities IS NOT NULL THEN
        PERFORM log_append(v_communities, v_entries);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER transactions_log_resolved AFTER UPDATE ON transactions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION log_transactions_resolved();

-- Accounts: when opened, and when their limits or status change. A balance update
-- names neither column, so it never fires these.
CREATE FUNCTION log_account_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM log_append(ARRAY[NEW.community_id], ARRAY[log_account_entry(NEW,
        (SELECT u.code FROM units u WHERE u.community_id = NEW.community_id AND u.id = NEW.unit_id))]);
    RETURN NULL;
END
$$;
CREATE TRIGGER accounts_log_opened AFTER INSERT ON accounts
    FOR EACH ROW EXECUTE FUNCTION log_account_changed();
CREATE TRIGGER accounts_log_changed AFTER UPDATE OF min_balance, max_balance, status ON accounts
    FOR EACH ROW
    WHEN (OLD.min_balance IS DISTINCT FROM NEW.min_balance
          OR OLD.max_balance IS DISTINCT FROM NEW.max_balance
          OR OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION log_account_changed();

CREATE FUNCTION log_unit_created() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM log_append(ARRAY[NEW.community_id], ARRAY[log_unit_entry(NEW)]);
    RETURN NULL;
END
$$;
CREATE TRIGGER units_log_created AFTER INSERT ON units
    FOR EACH ROW EXECUTE FUNCTION log_unit_created();

-- Communities that existed before the log: their units and accounts as they stand
-- now, then their transactions in order, so that every community's log replays to
-- its balances.
DO $$
DECLARE
    v_community uuid;
BEGIN
    FOR v_community IN SELECT id FROM communities ORDER BY id LOOP
        PERFORM log_append(array_agg(v_community), array_agg(entry ORDER BY ord, at, id))
           FROM (
                SELECT 1 AS ord, u.created_at AS at, u.id, log_unit_entry(u) AS entry
                  FROM units u WHERE u.community_id = v_community
                UNION ALL
                SELECT 2, a.created_at, a.id, log_account_entry(a, u.code)
                  FROM accounts a JOIN units u ON u.community_id = a.community_id AND u.id = a.unit_id
                 WHERE a.community_id = v_community
                UNION ALL
                SELECT 3, t.created_at, t.id, log_transaction_entry(
                           t, CASE WHEN t.expires_at IS NULL THEN t.state::text ELSE 'pending' END)
                  FROM transactions t WHERE t.community_id = v_community
                UNION ALL
                SELECT 4, t.resolved_at, t.id, log_resolution_entry(t)
                  FROM transactions t
                 WHERE t.community_id = v_community AND t.state <> 'pending'
                   AND t.expires_at IS NOT NULL
           ) AS existing
         HAVING count(*) > 0;
    END LOOP;
END
$$;
