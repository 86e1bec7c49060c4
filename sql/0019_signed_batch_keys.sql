-- Signed batches check their keys in the database: each key is locked (FOR SHARE)
-- until the batch commits and must not be revoked, so that the service may keep
-- keys in a short cache (a revocation made through another process is still
-- caught here) and no signature can enter the log after its key's revocation.

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
    v_kept      boolean[] := array_fill(true, ARRAY[cardinality(p_ids)]);
    -- Found written before this call: posted without storing a signature.
    v_found     boolean[] := array_fill(false, ARRAY[cardinality(p_ids)]);
    v_errors    text[] := array_fill(NULL::text, ARRAY[cardinality(p_ids)]);
    v_details   text[] := array_fill(NULL::text, ARRAY[cardinality(p_ids)]);
    v_map       integer[];
    v_leg_map   integer[];
    v_indexes   integer[];
    v_outcomes  text[];
    v_states    text[];
    v_created   timestamptz[];
    v_resolved  timestamptz[];
    v_expires   timestamptz[];
    v_message   text;
    v_detail    text;
    v_failed    integer;
    v_unexpected integer[];
BEGIN
    -- The log's transaction entries carry the signatures stored below.
    PERFORM set_config('timebank.signed', 'on', true);
    -- The keys stay as they are until this commits (a revocation waits for it, or
    -- this for the revocation, and then sees it): a signature is logged before
    -- its key's revocation, never after. A revoked key signs nothing.
    PERFORM 1 FROM member_keys k
     WHERE k.community_id = p_community AND k.key_id = ANY (p_key_ids)
     ORDER BY k.key_id
       FOR SHARE;
    FOR v_failed IN
        SELECT i.ord FROM generate_subscripts(p_ids, 1) AS i(ord)
         WHERE NOT EXISTS (SELECT 1 FROM member_keys k
                            WHERE k.community_id = p_community AND k.key_id = p_key_ids[i.ord]
                              AND k.revoked_at IS NULL)
    LOOP
        v_kept[v_failed] := false;
        v_errors[v_failed] := 'key_revoked';
        v_details[v_failed] := jsonb_build_object('key_id', p_key_ids[v_failed])::text;
    END LOOP;
    LOOP
        SELECT array_agg(i.ord ORDER BY i.ord) INTO v_map
          FROM generate_subscripts(p_ids, 1) AS i(ord) WHERE v_kept[i.ord];
        EXIT WHEN v_map IS NULL;
        SELECT array_agg(l.ord ORDER BY l.ord) INTO v_leg_map
          FROM generate_subscripts(p_leg_tx, 1) AS l(ord) WHERE v_kept[p_leg_tx[l.ord]];
        BEGIN
            INSERT INTO transaction_signatures (community_id, transaction_id, purpose, signed,
                                                signature, key_id)
            SELECT p_community, p_ids[m], 'intent', p_signed[m], p_signatures[m], p_key_ids[m]
              FROM unnest(v_map) AS m
             WHERE NOT v_found[m]
             ORDER BY p_ids[m]
            ON CONFLICT DO NOTHING;
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
            -- Found written before, with a signature of this call stored: undo this
            -- attempt and post those again without storing theirs.
            SELECT array_agg(v_map[x.position]) INTO v_unexpected
              FROM unnest(v_indexes, v_outcomes) AS x(position, outcome)
             WHERE x.outcome = 'exists' AND NOT v_found[v_map[x.position]];
            IF v_unexpected IS NOT NULL THEN
                RAISE EXCEPTION USING ERRCODE = 'TB002', MESSAGE = 'found written before';
            END IF;
            EXIT;
        EXCEPTION
            -- First: 'TB000' names the whole TB class, TB002 included.
            WHEN SQLSTATE 'TB002' THEN
                FOR v_failed IN SELECT unnest(v_unexpected) LOOP
                    v_found[v_failed] := true;
                END LOOP;
            WHEN SQLSTATE 'TB000' THEN
                GET STACKED DIAGNOSTICS v_message = MESSAGE_TEXT, v_detail = PG_EXCEPTION_DETAIL;
                v_failed := v_map[(v_detail::jsonb ->> 'index')::integer + 1];
                IF v_failed IS NULL THEN
                    RAISE;
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
