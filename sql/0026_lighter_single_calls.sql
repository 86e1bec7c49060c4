-- Lighter single-transaction calls: fewer statements run per call when nothing is
-- refused. A coalesced call of a few transactions spends most of its database time
-- on what every call costs whatever its size (each statement's executor start-up,
-- the commit), so each statement saved counts for every request.

-- ledger_post_each: the first attempt passes the arguments as they came and returns
-- ledger_post_atomic's rows as they are; the remapped arrays (thirteen subqueries),
-- the aggregation of the results and their unnesting are left to the attempts after
-- a refusal. ledger_post_atomic returns its rows only once everything is written, so
-- a refusal comes before any row of the first attempt has been returned.
CREATE OR REPLACE FUNCTION ledger_post_each(
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
    p_leg_amounts  bigint[]
) RETURNS TABLE (tx_index integer, outcome text, state text,
                 created_at timestamptz, resolved_at timestamptz, expires_at timestamptz,
                 error_detail text)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
    v_kept      boolean[];
    v_errors    text[];
    v_details   text[];
    v_map       integer[];  -- position in this attempt -> index in the call
    v_leg_map   integer[];  -- the legs of the kept transactions, in order
    v_indexes   integer[];
    v_outcomes  text[];
    v_states    text[];
    v_created   timestamptz[];
    v_resolved  timestamptz[];
    v_expires   timestamptz[];
    v_message   text;
    v_detail    text;
    v_failed    integer;
BEGIN
    BEGIN
        RETURN QUERY
            SELECT r.tx_index, r.outcome, r.state, r.created_at, r.resolved_at,
                   r.expires_at, NULL::text
              FROM ledger_post_atomic(
                  p_community, p_ids, p_kinds, p_memos, p_categories, p_fingerprints,
                  p_unit_codes, p_pending, p_expires_in_s, p_reverses, p_leg_tx,
                  p_leg_accounts, p_leg_amounts) AS r;
        RETURN;
    EXCEPTION WHEN SQLSTATE 'TB000' THEN
        GET STACKED DIAGNOSTICS v_message = MESSAGE_TEXT, v_detail = PG_EXCEPTION_DETAIL;
        v_failed := (v_detail::jsonb ->> 'index')::integer + 1;
        IF v_failed IS NULL OR v_failed NOT BETWEEN 1 AND cardinality(p_ids) THEN
            RAISE;  -- an error of no single transaction: a bug, let it be seen
        END IF;
    END;
    v_kept := array_fill(true, ARRAY[cardinality(p_ids)]);
    v_errors := array_fill(NULL::text, ARRAY[cardinality(p_ids)]);
    v_details := array_fill(NULL::text, ARRAY[cardinality(p_ids)]);
    v_kept[v_failed] := false;
    v_errors[v_failed] := v_message;
    v_details[v_failed] := v_detail;

    -- The others, remapped, until one attempt is refused by none (0002's loop).
    LOOP
        SELECT array_agg(i.ord ORDER BY i.ord) INTO v_map
          FROM generate_subscripts(p_ids, 1) AS i(ord) WHERE v_kept[i.ord];
        EXIT WHEN v_map IS NULL;
        SELECT array_agg(l.ord ORDER BY l.ord) INTO v_leg_map
          FROM generate_subscripts(p_leg_tx, 1) AS l(ord) WHERE v_kept[p_leg_tx[l.ord]];
        BEGIN
            SELECT array_agg(r.tx_index), array_agg(r.outcome), array_agg(r.state),
                   array_agg(r.created_at), array_agg(r.resolved_at), array_agg(r.expires_at)
              INTO v_indexes, v_outcomes, v_states, v_created, v_resolved, v_expires
              FROM ledger_post_atomic(
                  p_community,
                  ARRAY(SELECT p_ids[m] FROM unnest(v_map) AS m),
                  ARRAY(SELECT p_kinds[m] FROM unnest(v_map) AS m),
                  ARRAY(SELECT p_memos[m] FROM unnest(v_map) AS m),
                  ARRAY(SELECT p_categories[m] FROM unnest(v_map) AS m),
                  ARRAY(SELECT p_fingerprints[m] FROM unnest(v_map) AS m),
                  ARRAY(SELECT p_unit_codes[m] FROM unnest(v_map) AS m),
                  ARRAY(SELECT p_pending[m] FROM unnest(v_map) AS m),
                  ARRAY(SELECT p_expires_in_s[m] FROM unnest(v_map) AS m),
                  ARRAY(SELECT p_reverses[m] FROM unnest(v_map) AS m),
                  ARRAY(SELECT array_position(v_map, p_leg_tx[l]) FROM unnest(v_leg_map) AS l),
                  ARRAY(SELECT p_leg_accounts[l] FROM unnest(v_leg_map) AS l),
                  ARRAY(SELECT p_leg_amounts[l] FROM unnest(v_leg_map) AS l)) AS r;
            EXIT;
        EXCEPTION WHEN SQLSTATE 'TB000' THEN
            GET STACKED DIAGNOSTICS v_message = MESSAGE_TEXT, v_detail = PG_EXCEPTION_DETAIL;
            v_failed := v_map[(v_detail::jsonb ->> 'index')::integer + 1];
            IF v_failed IS NULL THEN
                RAISE;  -- an error of no single transaction: a bug, let it be seen
            END IF;
            v_kept[v_failed] := false;
            v_errors[v_failed] := v_message;
            v_details[v_failed] := v_detail;
        END;
    END LOOP;

    RETURN QUERY
        SELECT v_map[x.position], x.outcome, x.state, x.created_at, x.resolved_at,
               x.expires_at, NULL::text
          FROM unnest(v_indexes, v_outcomes, v_states, v_created, v_resolved, v_expires)
               AS x(position, outcome, state, created_at, resolved_at, expires_at);
    RETURN QUERY
        SELECT i.ord::integer, v_errors[i.ord], NULL::text, NULL::timestamptz,
               NULL::timestamptz, NULL::timestamptz, v_details[i.ord]
          FROM generate_subscripts(p_ids, 1) AS i(ord)
         WHERE NOT v_kept[i.ord];
END;
$$;

-- ledger_post_signed_each: the storable-signature check, the keys' liveness and the
-- live ones' log members in one statement after the shared key lock (0023 ran five).
-- The key_revoked rows and the remapping are for calls where some key is not live.
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
    v_unstorable boolean;
    v_not_live   boolean[];
    v_members    jsonb;
    v_live       integer[];
BEGIN
    PERFORM pg_advisory_xact_lock_shared(ledger_keys_lock_key(p_community));
    -- After the lock, in a snapshot of its own: a revocation committed before is seen.
    -- One index probe per key (LATERAL ... LIMIT 1), as in ledger_keys_not_live.
    SELECT bool_or(length(s.signature) <> 64 OR length(s.signed) > 4096),
           array_agg(k.live IS NULL ORDER BY s.ord),
           jsonb_object_agg(s.id::text, log_signature_member('intent', s.key_id, s.signature,
                                                             s.signed))
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
