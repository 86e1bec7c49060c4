-- A signed post's intent and signature arrive spelled as the log writes them
-- (base64url without padding), encoded by the service, instead of as bytes that
-- the database encoded for each log entry (0023, 0026, 0033): two encode() and
-- eight replace() per signed transfer, on one database backend that does all of a
-- community's writes in turn. The service's encoder is intents.b64url_encode, the
-- one its own readers and the audit decode with.
--
-- What the database still guarantees about what it is handed: each text has a
-- signature's length (86 characters: 64 bytes), an intent's length (at most 5,462
-- characters: 4,096 bytes), a key id's (22), and needs no escaping in JSON (no
-- quote, backslash or control character: to_json() would have added characters),
-- so the log entry stays one well-formed canonical JSON object whatever the
-- service sends; the keys are live under the shared key lock, as before. Whether
-- the text is the base64url of a valid signature is what `audit verify` checks
-- for every entry (and `intents.b64url_decode`, strict, when the store reads a
-- signature back): the database never held those bytes anywhere else.
--
-- The members are gathered with json_object_agg (text, as the log trigger reads
-- it) rather than jsonb_object_agg, whose binary form was built only to be printed.
--
-- Measured in the database alone (one backend's CPU from /proc/PID/schedstat,
-- calls of 16 signed transfers interleaved with the former function's, medians of
-- 60 blocks of 30 calls, three runs, embedded PostgreSQL 18 on a slow 2-core
-- machine): 1.4 to 2.8 us less per signed transfer, of about 110 us.

-- One signature as the log writes it, from its spelled parts: the JSON member with
-- its leading comma. The bytes' form (0023, used for resolutions) spells them first.
CREATE FUNCTION log_signature_member_spelled(p_purpose text, p_key_id text,
                                             p_signature text, p_signed text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ',"signatures":[{"key_id":"' || p_key_id
        || '","purpose":"' || p_purpose
        || '","signature":"' || p_signature
        || '","signed":"' || p_signed || '"}]';
$$;

CREATE OR REPLACE FUNCTION log_signature_member(p_purpose text, p_key_id text,
                                                p_signature bytea, p_signed bytea)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT log_signature_member_spelled(p_purpose, p_key_id, log_b64url(p_signature),
                                        log_b64url(p_signed));
$$;

-- Whether spelled signature parts can be written into a log entry as they are.
-- STABLE as to_json() is: an IMMUTABLE function calling it would not be inlined,
-- and a call of an SQL function that is not inlined costs microseconds per row.
CREATE FUNCTION log_signature_parts_storable(p_key_id text, p_signature text, p_signed text)
RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(octet_length(p_key_id) = 22
                    AND octet_length(p_signature) = 86
                    AND octet_length(p_signed) BETWEEN 2 AND 5462
                    AND octet_length(to_json(p_key_id || p_signature || p_signed)::text)
                        = octet_length(p_key_id) + octet_length(p_signature)
                          + octet_length(p_signed) + 2,
                    false);
$$;

DROP FUNCTION ledger_post_signed_each(uuid, uuid[], text[], text[], text[], bytea[], text[],
                                      boolean[], integer[], uuid[], integer[], uuid[], bigint[],
                                      bytea[], bytea[], text[]);

-- 0026's function, the intents and signatures spelled: p_signed and p_signatures
-- are base64url without padding.
CREATE FUNCTION ledger_post_signed_each(
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
    p_signed       text[],
    p_signatures   text[],
    p_key_ids      text[]
) RETURNS TABLE (tx_index integer, outcome text, state text,
                 created_at timestamptz, resolved_at timestamptz, expires_at timestamptz,
                 error_detail text)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
    v_unstorable boolean;
    v_not_live   boolean[];
    v_members    json;
    v_live       integer[];
BEGIN
    IF cardinality(p_signed) IS DISTINCT FROM cardinality(p_ids)
       OR cardinality(p_signatures) IS DISTINCT FROM cardinality(p_ids)
       OR cardinality(p_key_ids) IS DISTINCT FROM cardinality(p_ids) THEN
        RAISE EXCEPTION 'one signature per transaction' USING ERRCODE = 'check_violation';
    END IF;
    PERFORM pg_advisory_xact_lock_shared(ledger_keys_lock_key(p_community));
    -- After the lock, in a snapshot of its own: a revocation committed before is seen.
    -- One index probe per key (LATERAL ... LIMIT 1), as in ledger_keys_not_live.
    SELECT bool_or(NOT log_signature_parts_storable(s.key_id, s.signature, s.signed)),
           array_agg(k.live IS NULL ORDER BY s.ord),
           json_object_agg(s.id::text, log_signature_member_spelled('intent', s.key_id,
                                                                    s.signature, s.signed))
               FILTER (WHERE k.live)
      INTO v_unstorable, v_not_live, v_members
      FROM unnest(p_ids, p_signed, p_signatures, p_key_ids) WITH ORDINALITY
           AS s(id, signed, signature, key_id, ord)
      LEFT JOIN LATERAL (
            SELECT true AS live FROM member_keys k
             WHERE k.community_id = p_community AND k.key_id = s.key_id
               AND k.revoked_at IS NULL
             LIMIT 1) AS k ON true;
    IF v_unstorable THEN
        RAISE EXCEPTION 'not a storable signature' USING ERRCODE = 'check_violation';
    END IF;
    PERFORM set_config('timebank.signatures', coalesce(v_members::text, ''), true);
    IF NOT (true = ANY (v_not_live)) THEN
        RETURN QUERY SELECT * FROM ledger_post_each(
            p_community, p_ids, p_kinds, p_memos, p_categories, p_fingerprints, p_unit_codes,
            p_pending, p_expires_in_s, p_reverses, p_leg_tx, p_leg_accounts, p_leg_amounts);
        PERFORM set_config('timebank.signatures', '', true);
        RETURN;
    END IF;

    SELECT array_agg(i.ord ORDER BY i.ord) INTO v_live
      FROM generate_subscripts(p_ids, 1) AS i(ord) WHERE NOT v_not_live[i.ord];
    IF v_live IS NOT NULL THEN
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
