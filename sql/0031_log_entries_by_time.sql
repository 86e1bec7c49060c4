-- A transaction's log entries found by time, not by a random key. Every write
-- added an entry to `log_entries_by_transaction` (community_id, transaction_id):
-- a client-chosen UUID, so each insert descended the tree to a random leaf, one of
-- the three random-place index entries of a transfer (docs/scaling.md). A batch of
-- 1,000 took 41 ms with it and 38 ms without it (interleaved runs, embedded
-- PostgreSQL 18).
--
-- An entry of a transaction now records when the transaction was written: its
-- `created_at` for the entry of its writing, its `resolved_at` for that of its
-- resolution. The receipts' lookup (timebank/log/queries.py) reads those times from
-- the transaction and finds its entries by (community_id, written_at,
-- transaction_id): entries arrive in that order, so the index grows at its right
-- edge (PostgreSQL's fast path for the rightmost leaf). Entries written before this
-- migration keep no time and are found by the former index, now over them alone.

ALTER TABLE log_entries ADD COLUMN written_at timestamptz;
ALTER TABLE log_entries ADD CONSTRAINT log_entries_written_with_transaction
    CHECK (written_at IS NULL OR transaction_id IS NOT NULL);

DROP INDEX log_entries_by_transaction;
CREATE INDEX log_entries_by_transaction_time ON log_entries (community_id, written_at, transaction_id)
    WHERE written_at IS NOT NULL;
CREATE INDEX log_entries_by_transaction_before_0031 ON log_entries (community_id, transaction_id)
    WHERE transaction_id IS NOT NULL AND written_at IS NULL;

-- The triggers of 0023 and 0027, each entry with its time.
CREATE OR REPLACE FUNCTION log_transactions_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_community  uuid;
    v_count      bigint;
    v_start      bigint;
    v_signatures jsonb := nullif(current_setting('timebank.signatures', true), '')::jsonb;
BEGIN
    FOR v_community, v_count IN
        SELECT n.community_id, count(*) FROM new_rows n GROUP BY n.community_id ORDER BY 1
    LOOP
        UPDATE log_heads SET size = size + v_count WHERE community_id = v_community
        RETURNING size - v_count INTO v_start;
        IF NOT FOUND THEN
            INSERT INTO log_heads (community_id) VALUES (v_community) ON CONFLICT DO NOTHING;
            UPDATE log_heads SET size = size + v_count WHERE community_id = v_community
            RETURNING size - v_count INTO v_start;
        END IF;
        INSERT INTO log_entries (community_id, leaf_index, entry, transaction_id, written_at)
        SELECT v_community,
               v_start + row_number() OVER (ORDER BY n.created_at, n.id) - 1,
               convert_to(
                   '{"category":' || CASE WHEN n.category IS NULL THEN 'null'
                                          ELSE to_json(n.category::text)::text END
                   || ',"created_at":"'
                   || to_char(n.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
                   || '","expires_at":'
                   || CASE WHEN n.expires_at IS NULL THEN 'null'
                           ELSE '"' || to_char(n.expires_at AT TIME ZONE 'UTC',
                                               'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') || '"' END
                   || ',"id":"' || n.id::text
                   || '","kind":"' || n.kind::text
                   || '","memo_sha256":"' || encode(sha256(convert_to(n.memo, 'UTF8')), 'hex')
                   || '","postings":['
                   || CASE WHEN cardinality(n.leg_accounts) = 2
                                 AND array_lower(n.leg_accounts, 1) = 1
                                 AND array_lower(n.leg_amounts, 1) = 1
                           THEN '["' || n.leg_accounts[1]::text || '",' || n.leg_amounts[1]::text
                                || '],["' || n.leg_accounts[2]::text || '",'
                                || n.leg_amounts[2]::text || ']'
                           ELSE (SELECT string_agg('["' || l.a::text || '",' || l.m::text || ']', ','
                                                   ORDER BY l.i)
                                   FROM unnest(n.leg_accounts, n.leg_amounts)
                                        WITH ORDINALITY AS l(a, m, i))
                      END
                   || '],"reverses":' || CASE WHEN n.reverses_id IS NULL THEN 'null'
                                              ELSE '"' || n.reverses_id::text || '"' END
                   || CASE WHEN v_signatures IS NULL THEN ''
                           ELSE coalesce(v_signatures ->> n.id::text, '') END
                   || ',"state":"' || n.state::text
                   || '","type":"transaction","v":1}',
                   'UTF8'),
               n.id,
               n.created_at
          FROM new_rows n
         WHERE n.community_id = v_community;
    END LOOP;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION log_transactions_resolved() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_community uuid;
    v_count     bigint;
    v_start     bigint;
BEGIN
    FOR v_community, v_count IN
        SELECT n.community_id, count(*) FROM new_rows n
         WHERE n.state <> 'pending'
         GROUP BY n.community_id ORDER BY 1
    LOOP
        INSERT INTO log_heads (community_id) VALUES (v_community) ON CONFLICT DO NOTHING;
        UPDATE log_heads SET size = size + v_count WHERE community_id = v_community
        RETURNING size - v_count INTO v_start;
        INSERT INTO log_entries (community_id, leaf_index, entry, transaction_id, written_at)
        SELECT v_community, v_start + row_number() OVER (ORDER BY n.resolved_at, n.id) - 1,
               convert_to(log_resolution_entry(n), 'UTF8'), n.id, n.resolved_at
          FROM new_rows n
         WHERE n.community_id = v_community AND n.state <> 'pending';
    END LOOP;
    RETURN NULL;
END
$$;
