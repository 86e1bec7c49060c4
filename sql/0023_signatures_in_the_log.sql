-- Signatures are kept once: in the log entry that carries them. Until now a signed
-- write stored each signature in transaction_signatures (a row, its primary key
-- and a foreign key check) and the log trigger looked it up again, row by row;
-- the bytes then lay twice on disk. Now the writing function hands the log
-- triggers this database transaction's signatures in a transaction-local setting,
-- keyed by transaction id, and the entry is the only copy. Readers find a
-- transaction's signatures in its log entries (log_entries_by_transaction).
-- transaction_signatures is no longer written; the rows it holds from earlier
-- versions were logged with their transactions, so the log has them too.
--
-- Keys: a signed write took FOR SHARE locks on its keys' rows (a lock record and a
-- dirtied page per key, multixacts when writers share a key) so that a revocation
-- waits for it. Now it takes the community's key lock in shared mode (memory only,
-- shared by every signed write) and a revocation takes it exclusively, whatever
-- path revokes (a trigger): a signature is logged before its key's revocation,
-- never after, as before.

-- base64url without padding, as before (0007), without translate(), which walks
-- the text character by character: three plain replacements cost a third.
CREATE OR REPLACE FUNCTION log_b64url(p bytea) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT rtrim(replace(replace(replace(encode(p, 'base64'), E'\n', ''), '+', '-'), '/', '_'), '=');
$$;

-- One signature as the log writes it: the JSON member with its leading comma.
-- Same text as log_signatures_member's (0007).
CREATE FUNCTION log_signature_member(p_purpose text, p_key_id text, p_signature bytea,
                                     p_signed bytea)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ',"signatures":[{"key_id":"' || p_key_id
        || '","purpose":"' || p_purpose
        || '","signature":"' || log_b64url(p_signature)
        || '","signed":"' || log_b64url(p_signed) || '"}]';
$$;

-- The community's key lock: shared by signed writes, exclusive for a revocation.
CREATE FUNCTION ledger_keys_lock_key(p_community uuid) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (hashtext('timebank.member_keys')::bigint << 32) | (hashtext(p_community::text)::bigint & 4294967295);
$$;

CREATE FUNCTION member_keys_revocation_lock() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(ledger_keys_lock_key(NEW.community_id));
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER member_keys_revocation_locked BEFORE UPDATE OF revoked_at ON member_keys
    FOR EACH ROW EXECUTE FUNCTION member_keys_revocation_lock();

-- Takes the community's key lock (shared, until commit), then says which keys of
-- p_key_ids are not live (revoked or unknown): true there, in the same order. The
-- check runs after the lock, in a snapshot of its own, so it sees any revocation
-- that committed before. One index probe per key (LATERAL ... LIMIT 1): an EXISTS
-- in the select list was planned as a hashed subplan reading every key of the
-- community.
CREATE FUNCTION ledger_keys_not_live(p_community uuid, p_key_ids text[])
RETURNS boolean[] LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(ledger_keys_lock_key(p_community));
    RETURN ARRAY(
        SELECT l.live IS NULL
          FROM unnest(p_key_ids) WITH ORDINALITY AS i(key_id, ord)
          LEFT JOIN LATERAL (
                SELECT true AS live FROM member_keys k
                 WHERE k.community_id = p_community AND k.key_id = i.key_id
                   AND k.revoked_at IS NULL
                 LIMIT 1) AS l ON true
         ORDER BY i.ord);
END
$$;

-- A resolution's signature (the payee's 'ack', or the payer's confirming 'intent'),
-- handed to the resolution's log entry: raises key_revoked if the key is not live.
CREATE FUNCTION ledger_stage_resolution_signature(
    p_community uuid, p_transaction uuid, p_purpose text, p_signed bytea,
    p_signature bytea, p_key_id text
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF p_purpose NOT IN ('intent', 'ack') OR length(p_signature) <> 64
       OR length(p_signed) > 4096 THEN
        RAISE EXCEPTION 'not a storable signature' USING ERRCODE = 'check_violation';
    END IF;
    IF (ledger_keys_not_live(p_community, ARRAY[p_key_id]))[1] THEN
        RAISE EXCEPTION USING ERRCODE = 'TB000', MESSAGE = 'key_revoked',
            DETAIL = jsonb_build_object('key_id', p_key_id)::text;
    END IF;
    PERFORM set_config('timebank.resolution_signatures',
        jsonb_build_object(p_transaction::text,
                           log_signature_member(p_purpose, p_key_id, p_signature, p_signed))::text,
        true);
END
$$;

-- Resolutions carry the signature this database transaction staged for them.
CREATE OR REPLACE FUNCTION log_resolution_entry(t transactions) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT '{"at":' || log_json_time(t.resolved_at)
        || ',"id":"' || t.id::text || '"'
        || coalesce(nullif(current_setting('timebank.resolution_signatures', true), '')::jsonb
                    ->> t.id::text, '')
        || ',"state":"' || t.state::text
        || '","type":"resolution","v":1}';
$$;

-- Signed posts: the keys checked under the shared key lock, the intents handed to
-- the log trigger, then ledger_post_each's all-or-nothing items. A transaction
-- found written before is not inserted, so its entry (and signature) stay the
-- first call's: nothing of this call is kept.
CREATE OR REPLACE FUNCTION ledger_post_signed_each(
    p_community    uuid,
    p_ids          uuid[],
    p_kinds        text[],
    p_memos        text[],
    p_categories   text[],
    p_fingerprints bytea[],
    p_unit_codes   text[],
    p_pending      boolean[],
    p_expires_in_s integer[],
    p_reverses     uuid[],
    p_leg_tx       integer[],
    p_leg_accounts uuid[],
    p_leg_amounts  bigint[],
    p_signed       bytea[],
    p_signatures   bytea[],
    p_key_ids      text[]
) RETURNS TABLE (tx_index integer, outcome text, state text,
                 created_at timestamptz, resolved_at timestamptz, expires_at timestamptz,
                 error_detail text)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
    v_not_live boolean[];
    v_live     integer[];
BEGIN
    IF EXISTS (SELECT 1 FROM unnest(p_signed, p_signatures) AS s(signed, signature)
                WHERE length(s.signature) <> 64 OR length(s.signed) > 4096) THEN
        RAISE EXCEPTION 'not a storable signature' USING ERRCODE = 'check_violation';
    END IF;
    v_not_live := ledger_keys_not_live(p_community, p_key_ids);
    SELECT array_agg(i.ord ORDER BY i.ord) INTO v_live
      FROM generate_subscripts(p_ids, 1) AS i(ord) WHERE NOT v_not_live[i.ord];
    PERFORM set_config('timebank.signatures',
        (SELECT jsonb_object_agg(p_ids[m]::text,
                                 log_signature_member('intent', p_key_ids[m], p_signatures[m],
                                                      p_signed[m]))
           FROM unnest(v_live) AS m)::text,
        true);
    IF cardinality(v_live) = cardinality(p_ids) THEN
        RETURN QUERY SELECT * FROM ledger_post_each(
            p_community, p_ids, p_kinds, p_memos, p_categories, p_fingerprints, p_unit_codes,
            p_pending, p_expires_in_s, p_reverses, p_leg_tx, p_leg_accounts, p_leg_amounts);
    ELSIF v_live IS NOT NULL THEN
        RETURN QUERY SELECT v_live[e.tx_index], e.outcome, e.state, e.created_at,
                            e.resolved_at, e.expires_at, e.error_detail
          FROM ledger_post_each(
              p_community,
              ARRAY(SELECT p_ids[m] FROM unnest(v_live) AS m),
              ARRAY(SELECT p_kinds[m] FROM unnest(v_live) AS m),
              ARRAY(SELECT p_memos[m] FROM unnest(v_live) AS m),
              ARRAY(SELECT p_categories[m] FROM unnest(v_live) AS m),
              ARRAY(SELECT p_fingerprints[m] FROM unnest(v_live) AS m),
              ARRAY(SELECT p_unit_codes[m] FROM unnest(v_live) AS m),
              ARRAY(SELECT p_pending[m] FROM unnest(v_live) AS m),
              ARRAY(SELECT p_expires_in_s[m] FROM unnest(v_live) AS m),
              ARRAY(SELECT p_reverses[m] FROM unnest(v_live) AS m),
              ARRAY(SELECT array_position(v_live, p_leg_tx[l])
                      FROM generate_subscripts(p_leg_tx, 1) AS l
                     WHERE NOT v_not_live[p_leg_tx[l]] ORDER BY l),
              ARRAY(SELECT p_leg_accounts[l] FROM generate_subscripts(p_leg_tx, 1) AS l
                     WHERE NOT v_not_live[p_leg_tx[l]] ORDER BY l),
              ARRAY(SELECT p_leg_amounts[l] FROM generate_subscripts(p_leg_tx, 1) AS l
                     WHERE NOT v_not_live[p_leg_tx[l]] ORDER BY l)) AS e;
    END IF;
    PERFORM set_config('timebank.signatures', '', true);
    RETURN QUERY
        SELECT i.ord::integer, 'key_revoked', NULL::text, NULL::timestamptz,
               NULL::timestamptz, NULL::timestamptz,
               jsonb_build_object('key_id', p_key_ids[i.ord])::text
          FROM generate_subscripts(p_ids, 1) AS i(ord)
         WHERE v_not_live[i.ord];
END;
$$;

-- The transactions' log trigger of 0021, the signatures taken from the setting.
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
               n.id
          FROM new_rows n
         WHERE n.community_id = v_community;
    END LOOP;
    RETURN NULL;
END
$$;

-- Earlier versions' lookups, no longer called.
DROP FUNCTION log_signatures_member(uuid, uuid, text);
