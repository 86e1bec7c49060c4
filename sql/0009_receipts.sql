-- Receipts: each transaction's entries (its own, and its resolution) are found by
-- transaction id, so any posted transaction can show its leaf index, a checkpoint
-- and the inclusion proof. The id rides on the entry's row (one index entry per
-- transaction), not in a table of its own.

ALTER TABLE log_entries ADD COLUMN transaction_id uuid;

-- Entries written before: their ids, read from the entries themselves (the
-- append-only guard is lifted for this one statement of the migration).
ALTER TABLE log_entries DISABLE TRIGGER log_entries_append_only;
UPDATE log_entries
   SET transaction_id = (convert_from(entry, 'UTF8')::json ->> 'id')::uuid
 WHERE convert_from(entry, 'UTF8')::json ->> 'type' IN ('transaction', 'resolution');
ALTER TABLE log_entries ENABLE TRIGGER log_entries_append_only;

CREATE INDEX log_entries_by_transaction ON log_entries (community_id, transaction_id)
    WHERE transaction_id IS NOT NULL;

CREATE OR REPLACE FUNCTION log_transactions_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_community uuid;
    v_count     bigint;
    v_start     bigint;
    v_signed    boolean := coalesce(current_setting('timebank.signed', true), '') = 'on';
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
        INSERT INTO log_entries (community_id, leaf_index, entry, transaction_id)
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
                   || '","postings":[' || p.postings
                   || '],"reverses":' || CASE WHEN n.reverses_id IS NULL THEN 'null'
                                              ELSE '"' || n.reverses_id::text || '"' END
                   || CASE WHEN v_signed THEN log_signatures_member(n.community_id, n.id, 'intent')
                           ELSE '' END
                   || ',"state":"' || n.state::text
                   || '","type":"transaction","v":1}',
                   'UTF8'),
               n.id
          FROM new_rows n
         CROSS JOIN LATERAL (
               SELECT string_agg('["' || l.a::text || '",' || l.m::text || ']', ',' ORDER BY l.i)
                      AS postings
                 FROM unnest(n.leg_accounts, n.leg_amounts) WITH ORDINALITY AS l(a, m, i)) p
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
        SELECT n.community_id, count(*)
          FROM new_rows n JOIN old_rows o ON o.community_id = n.community_id AND o.id = n.id
         WHERE o.state = 'pending' AND n.state <> 'pending'
         GROUP BY n.community_id ORDER BY 1
    LOOP
        INSERT INTO log_heads (community_id) VALUES (v_community) ON CONFLICT DO NOTHING;
        UPDATE log_heads SET size = size + v_count WHERE community_id = v_community
        RETURNING size - v_count INTO v_start;
        INSERT INTO log_entries (community_id, leaf_index, entry, transaction_id)
        SELECT v_community, v_start + row_number() OVER (ORDER BY n.resolved_at, n.id) - 1,
               convert_to(log_resolution_entry(n), 'UTF8'), n.id
          FROM new_rows n JOIN old_rows o ON o.community_id = n.community_id AND o.id = n.id
         WHERE n.community_id = v_community AND o.state = 'pending' AND n.state <> 'pending';
    END LOOP;
    RETURN NULL;
END
$$;
