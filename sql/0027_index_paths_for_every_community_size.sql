-- What a ledger call reads grows with what it touches, not with its community.
--
-- With generic plans (plan_cache_mode), the planner takes an array argument for
-- ten elements and a community's rows for all of the table: a join of the accounts
-- with an array alone was planned as a hash join over a sequential scan of every
-- account of the community, paid by every call (1,000 accounts: 0.2 ms of a
-- one-transfer call's 1.7 ms of backend CPU) until the community grew large enough
-- for the index to look cheaper. An `id = ANY (array)` condition beside each such
-- join lets the index find the rows, in the balance updates of ledger_post_atomic
-- and ledger_post_one and in ledger_confirm's three joins. The active reservations
-- were read for the whole community by ledger_post_atomic and ledger_atomic_refusal:
-- now those of the accounts involved only. The sweeper and the resolutions' log
-- trigger are below. tests/integration/test_query_plans.py counts each call's own
-- scans and fails without this migration, on PostgreSQL 15 and 18.

CREATE OR REPLACE FUNCTION ledger_post_atomic(
    p_community    uuid,
    p_ids          uuid[],
    p_kinds        text[],
    p_memos        text[],
    p_categories   text[],
    p_fingerprints bytea[],
    p_unit_codes   text[],     -- the unit each transaction claims, NULL when it names none
    p_pending      boolean[],
    p_expires_in_s integer[],  -- lifetime of pending transactions, NULL for the others
    p_reverses     uuid[],
    p_leg_tx       integer[],
    p_leg_accounts uuid[],
    p_leg_amounts  bigint[]
) RETURNS TABLE (tx_index integer, outcome text, state text,
                 created_at timestamptz, resolved_at timestamptz, expires_at timestamptz)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
    v_at         timestamptz;
    v_is_new     boolean[];
    v_new_count  integer;
    -- The locked accounts, sorted by id.
    v_account_ids    uuid[];
    v_statuses       text[];
    v_units          text[];
    v_balances       bigint[];
    v_min_balances   bigint[];
    v_max_balances   bigint[];
    v_posting_counts bigint[];
    v_problem        record;
    -- How many new legs break a rule.
    v_problems       bigint;
    -- The posted legs' journal rows, and each account they move: its last one's.
    v_post_accounts  uuid[];
    v_post_seqs      bigint[];
    v_post_tx        integer[];
    v_post_amounts   bigint[];
    v_post_balances  bigint[];
    v_moved_accounts uuid[];
    v_moved_balances bigint[];
    v_moved_counts   bigint[];
BEGIN
    -- Lock every account involved, in id order (LockRows above a Sort: the order
    -- holds whatever plan finds the rows), and read them once: a row we waited for
    -- is read at its latest version. Unknown ids lock nothing and are reported below.
    SELECT array_agg(x.id), array_agg(x.status::text), array_agg(x.code), array_agg(x.balance),
           array_agg(x.min_balance), array_agg(x.max_balance), array_agg(x.posting_count)
      INTO v_account_ids, v_statuses, v_units, v_balances, v_min_balances, v_max_balances,
           v_posting_counts
      FROM (SELECT a.id, a.status, u.code, a.balance, a.min_balance, a.max_balance,
                   a.posting_count
              FROM accounts a
              JOIN units u ON u.community_id = a.community_id AND u.id = a.unit_id
             WHERE a.community_id = p_community AND a.id = ANY (p_leg_accounts)
             ORDER BY a.id
               FOR UPDATE OF a) x;
    -- Read after the locks: per account, posting times follow posting order.
    v_at := clock_timestamp();

    -- Claim the ids, in id order. An id already taken is a retry when its content
    -- matches and a conflict otherwise; a concurrent claim of the same id waits here
    -- for the other to commit or roll back. A plain insert first: a batch seldom
    -- repeats an id, and it costs less than INSERT ... ON CONFLICT (speculative
    -- insertion: one more WAL record and buffer visit per row). When an id is
    -- taken, that insert is undone (with its log entries and head) and the
    -- statement of 0002 claims them.
    BEGIN
        INSERT INTO transactions AS t
               (community_id, id, kind, state, memo, category, fingerprint, reverses_id,
                leg_accounts, leg_amounts, created_at, expires_at, resolved_at)
        SELECT p_community, r.id, r.kind::ledger_transaction_kind,
               (CASE WHEN r.pending THEN 'pending' ELSE 'posted' END)::ledger_transaction_state,
               r.memo, r.category, r.fingerprint, r.reverses, g.accounts, g.amounts, v_at,
               CASE WHEN r.pending THEN v_at + make_interval(secs => r.expires_in_s) END,
               CASE WHEN r.pending THEN NULL ELSE v_at END
          FROM unnest(p_ids, p_kinds, p_memos, p_categories, p_fingerprints, p_pending,
                      p_expires_in_s, p_reverses)
               WITH ORDINALITY
               AS r(id, kind, memo, category, fingerprint, pending, expires_in_s, reverses, ord)
          JOIN (SELECT l.tx, array_agg(l.account_id ORDER BY l.ord) AS accounts,
                       array_agg(l.amount ORDER BY l.ord) AS amounts
                  FROM unnest(p_leg_tx, p_leg_accounts, p_leg_amounts)
                       WITH ORDINALITY AS l(tx, account_id, amount, ord)
                 GROUP BY l.tx) g ON g.tx = r.ord
         ORDER BY r.id;
        v_is_new := array_fill(true, ARRAY[cardinality(p_ids)]);
        v_new_count := cardinality(p_ids);
    EXCEPTION WHEN unique_violation THEN
        WITH claimed AS (
            INSERT INTO transactions AS t
                   (community_id, id, kind, state, memo, category, fingerprint, reverses_id,
                    leg_accounts, leg_amounts, created_at, expires_at, resolved_at)
            SELECT p_community, r.id, r.kind::ledger_transaction_kind,
                   (CASE WHEN r.pending THEN 'pending' ELSE 'posted' END)::ledger_transaction_state,
                   r.memo, r.category, r.fingerprint, r.reverses, g.accounts, g.amounts, v_at,
                   CASE WHEN r.pending THEN v_at + make_interval(secs => r.expires_in_s) END,
                   CASE WHEN r.pending THEN NULL ELSE v_at END
              FROM unnest(p_ids, p_kinds, p_memos, p_categories, p_fingerprints, p_pending,
                          p_expires_in_s, p_reverses)
                   WITH ORDINALITY
                   AS r(id, kind, memo, category, fingerprint, pending, expires_in_s, reverses, ord)
              JOIN (SELECT l.tx, array_agg(l.account_id ORDER BY l.ord) AS accounts,
                           array_agg(l.amount ORDER BY l.ord) AS amounts
                      FROM unnest(p_leg_tx, p_leg_accounts, p_leg_amounts)
                           WITH ORDINALITY AS l(tx, account_id, amount, ord)
                     GROUP BY l.tx) g ON g.tx = r.ord
             ORDER BY r.id
            ON CONFLICT (community_id, id) DO NOTHING
            RETURNING t.id
        )
        SELECT array_agg(c.id IS NOT NULL ORDER BY i.ord), count(c.id)
          INTO v_is_new, v_new_count
          FROM unnest(p_ids) WITH ORDINALITY AS i(id, ord)
          LEFT JOIN claimed c ON c.id = i.id;
    END;

    IF v_new_count < cardinality(p_ids) THEN
        SELECT i.ord, i.id INTO v_problem
          FROM unnest(p_ids, p_fingerprints) WITH ORDINALITY AS i(id, fingerprint, ord)
          JOIN transactions t ON t.community_id = p_community AND t.id = i.id
         WHERE NOT v_is_new[i.ord] AND t.fingerprint <> i.fingerprint
         ORDER BY i.ord LIMIT 1;
        IF FOUND THEN
            PERFORM ledger_fail('transaction_id_conflict', jsonb_build_object(
                'transaction_id', v_problem.id, 'index', v_problem.ord - 1));
        END IF;
    END IF;

    IF v_new_count > 0 THEN
        -- One pass over the new legs, per account in posting order: whether any
        -- breaks a rule, and the journal rows and the new balance of each account
        -- the posted ones move. The flag tests what ledger_atomic_refusal tests,
        -- which then names the first problem (in the rules' order) and raises it.
        SELECT count(*) FILTER (WHERE x.problem),
               array_agg(x.account_id) FILTER (WHERE x.posted),
               array_agg(x.seq) FILTER (WHERE x.posted),
               array_agg(x.tx) FILTER (WHERE x.posted),
               array_agg(x.amount) FILTER (WHERE x.posted),
               array_agg(x.balance_after) FILTER (WHERE x.posted),
               array_agg(x.account_id) FILTER (WHERE x.last_posted),
               array_agg(x.balance_after) FILTER (WHERE x.last_posted),
               array_agg(x.seq) FILTER (WHERE x.last_posted)
          INTO v_problems, v_post_accounts, v_post_seqs, v_post_tx, v_post_amounts,
               v_post_balances, v_moved_accounts, v_moved_balances, v_moved_counts
          FROM (SELECT l.tx, l.account_id, l.amount, NOT p_pending[l.tx] AS posted,
                       CASE
                         WHEN a.id IS NULL THEN true
                         WHEN p_unit_codes[l.tx] IS NOT NULL AND a.code <> p_unit_codes[l.tx]
                           THEN true
                         WHEN a.status = 'frozen' THEN true
                         WHEN a.status = 'closed' THEN true
                         WHEN a.balance
                              + sum(CASE WHEN p_pending[l.tx] THEN 0 ELSE l.amount END) OVER w
                              - coalesce(h.pending_debits, 0)
                              - sum(CASE WHEN p_pending[l.tx] AND l.amount < 0 THEN -l.amount ELSE 0 END) OVER w
                              < a.min_balance
                           THEN true
                         WHEN a.balance
                              + sum(CASE WHEN p_pending[l.tx] THEN 0 ELSE l.amount END) OVER w
                              + coalesce(h.pending_credits, 0)
                              + sum(CASE WHEN p_pending[l.tx] AND l.amount > 0 THEN l.amount ELSE 0 END) OVER w
                              > a.max_balance
                           THEN true
                         ELSE false
                       END AS problem,
                       -- For a posted leg: its place in the account's sequence and the
                       -- balance it leaves (pending legs move nothing).
                       a.posting_count + count(*) FILTER (WHERE NOT p_pending[l.tx]) OVER w
                           AS seq,
                       (a.balance + sum(CASE WHEN p_pending[l.tx] THEN 0 ELSE l.amount END) OVER w)::bigint
                           AS balance_after,
                       NOT p_pending[l.tx]
                           AND count(*) FILTER (WHERE NOT p_pending[l.tx]) OVER w
                             = count(*) FILTER (WHERE NOT p_pending[l.tx]) OVER whole
                           AS last_posted
                  FROM unnest(p_leg_tx, p_leg_accounts, p_leg_amounts)
                       WITH ORDINALITY AS l(tx, account_id, amount, ord)
                  LEFT JOIN unnest(v_account_ids, v_statuses, v_units, v_balances, v_min_balances,
                                   v_max_balances, v_posting_counts)
                       AS a(id, status, code, balance, min_balance, max_balance, posting_count)
                         ON a.id = l.account_id
                  -- The active reservations of the accounts involved, read at once
                  -- (by the primary key, or by one scan when the planner finds it cheaper).
                  LEFT JOIN (SELECT h.account_id,
                                    sum(-h.amount) FILTER (WHERE h.amount < 0) AS pending_debits,
                                    sum(h.amount) FILTER (WHERE h.amount > 0) AS pending_credits
                               FROM holds h
                              WHERE h.community_id = p_community
                                AND h.account_id = ANY (v_account_ids)
                                AND h.expires_at > v_at
                              GROUP BY h.account_id) h
                         ON h.account_id = l.account_id
                 WHERE v_is_new[l.tx]
                WINDOW w AS (PARTITION BY l.account_id ORDER BY l.ord),
                       whole AS (PARTITION BY l.account_id ORDER BY l.ord
                                 ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)) x;

        -- A problem, or a transaction naming no unit (which must balance in each
        -- unit it touches): the rules of 0002, in their order.
        IF v_problems > 0
           OR EXISTS (SELECT 1 FROM unnest(p_unit_codes) WITH ORDINALITY AS c(code, ord)
                       WHERE c.code IS NULL AND v_is_new[c.ord]) THEN
            PERFORM ledger_atomic_refusal(
                p_community, p_ids, p_unit_codes, p_pending, p_leg_tx, p_leg_accounts,
                p_leg_amounts, v_is_new, v_at, v_account_ids, v_statuses, v_units, v_balances,
                v_min_balances, v_max_balances);
            ASSERT v_problems = 0, format('%s legs broke a rule, none was refused', v_problems);
        END IF;

        -- Posted legs: journal rows with the balance each leaves; then each account
        -- takes the balance and sequence of its last new posting (it is locked).
        IF v_post_accounts IS NOT NULL THEN
            INSERT INTO postings (community_id, account_id, account_seq, transaction_id, amount,
                                  balance_after, posted_at)
            SELECT p_community, p.account_id, p.seq, p_ids[p.tx], p.amount, p.balance_after, v_at
              FROM unnest(v_post_accounts, v_post_seqs, v_post_tx, v_post_amounts, v_post_balances)
                   AS p(account_id, seq, tx, amount, balance_after);
            UPDATE accounts a SET balance = m.balance, posting_count = m.posting_count
              FROM unnest(v_moved_accounts, v_moved_balances, v_moved_counts)
                   AS m(id, balance, posting_count)
             WHERE a.community_id = p_community AND a.id = m.id
               -- The rows to update by the index, whatever the plan (a join alone was
               -- planned as a hash join over every account of the community).
               AND a.id = ANY (v_moved_accounts);
        END IF;

        -- Pending legs are held against limits until resolved.
        IF true = ANY (p_pending) THEN
            INSERT INTO holds (community_id, account_id, transaction_id, amount, expires_at)
            SELECT p_community, l.account_id, p_ids[l.tx], l.amount,
                   v_at + make_interval(secs => p_expires_in_s[l.tx])
              FROM unnest(p_leg_tx, p_leg_accounts, p_leg_amounts) AS l(tx, account_id, amount)
             WHERE v_is_new[l.tx] AND p_pending[l.tx];
        END IF;
    END IF;

    -- What this call wrote is known without reading it back; earlier ones are read.
    -- Rows come in no particular order: tx_index says which transaction each is.
    RETURN QUERY
        SELECT i.ord::integer, 'created',
               CASE WHEN p_pending[i.ord] THEN 'pending' ELSE 'posted' END,
               v_at,
               CASE WHEN p_pending[i.ord] THEN NULL ELSE v_at END,
               CASE WHEN p_pending[i.ord] THEN v_at + make_interval(secs => p_expires_in_s[i.ord]) END
          FROM generate_subscripts(p_ids, 1) AS i(ord)
         WHERE v_is_new[i.ord];
    IF v_new_count < cardinality(p_ids) THEN
        RETURN QUERY
            SELECT i.ord::integer, 'exists', t.state::text, t.created_at, t.resolved_at, t.expires_at
              FROM unnest(p_ids) WITH ORDINALITY AS i(id, ord)
              JOIN transactions t ON t.community_id = p_community AND t.id = i.id
             WHERE NOT v_is_new[i.ord];
    END IF;
END;
$$;

-- ledger_confirm of 0002: its three joins of the legs with the accounts likewise.
CREATE OR REPLACE FUNCTION ledger_confirm(p_community uuid, p_id uuid)
RETURNS TABLE (outcome text, state text,
               created_at timestamptz, resolved_at timestamptz, expires_at timestamptz)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
    v_tx      transactions%ROWTYPE;
    v_at      timestamptz;
    v_problem record;
BEGIN
    SELECT * INTO v_tx FROM transactions t
     WHERE t.community_id = p_community AND t.id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM ledger_fail('unknown_transaction', jsonb_build_object('transaction_id', p_id));
    END IF;
    IF v_tx.state = 'posted' AND v_tx.expires_at IS NOT NULL THEN
        RETURN QUERY SELECT 'exists', v_tx.state::text, v_tx.created_at, v_tx.resolved_at, v_tx.expires_at;
        RETURN;
    END IF;
    IF v_tx.state <> 'pending' THEN
        PERFORM ledger_fail('not_pending', jsonb_build_object('transaction_id', p_id, 'state', v_tx.state));
    END IF;

    PERFORM 1 FROM accounts a
      WHERE a.community_id = p_community AND a.id = ANY (v_tx.leg_accounts)
      ORDER BY a.id FOR UPDATE;
    v_at := clock_timestamp();

    IF v_tx.expires_at <= v_at THEN
        PERFORM ledger_expire_one(p_community, p_id, v_tx.expires_at);
        RETURN QUERY SELECT 'expired', 'expired'::text, v_tx.created_at, v_tx.expires_at, v_tx.expires_at;
        RETURN;
    END IF;

    SELECT a.id, a.status INTO v_problem
      FROM unnest(v_tx.leg_accounts) WITH ORDINALITY AS l(account_id, ord)
      JOIN accounts a ON a.community_id = p_community AND a.id = l.account_id
                     AND a.id = ANY (v_tx.leg_accounts)
     WHERE a.status <> 'active'
     ORDER BY l.ord LIMIT 1;
    IF FOUND THEN
        PERFORM ledger_fail(CASE v_problem.status WHEN 'frozen' THEN 'account_frozen' ELSE 'account_closed' END,
            jsonb_build_object('transaction_id', p_id, 'account_id', v_problem.id, 'status', v_problem.status));
    END IF;

    DELETE FROM holds h WHERE h.community_id = p_community AND h.transaction_id = p_id;
    -- A transaction touches an account at most once, so each leg is the next posting.
    INSERT INTO postings (community_id, account_id, account_seq, transaction_id, amount,
                          balance_after, posted_at)
    SELECT p_community, l.account_id, a.posting_count + 1, p_id, l.amount, a.balance + l.amount, v_at
      FROM unnest(v_tx.leg_accounts, v_tx.leg_amounts) AS l(account_id, amount)
      JOIN accounts a ON a.community_id = p_community AND a.id = l.account_id
                     AND a.id = ANY (v_tx.leg_accounts);
    UPDATE accounts a SET balance = a.balance + l.amount, posting_count = a.posting_count + 1
      FROM unnest(v_tx.leg_accounts, v_tx.leg_amounts) AS l(account_id, amount)
     WHERE a.community_id = p_community AND a.id = l.account_id
       AND a.id = ANY (v_tx.leg_accounts);
    UPDATE transactions t SET state = 'posted', resolved_at = v_at
     WHERE t.community_id = p_community AND t.id = p_id;

    RETURN QUERY SELECT 'created', 'posted'::text, v_tx.created_at, v_at, v_tx.expires_at;
END;
$$;

-- ledger_post_one of 0002 (a call of one transaction, a reversal, a pool's grant):
-- its balance update likewise.
CREATE OR REPLACE FUNCTION ledger_post_one(
    p_community    uuid,
    p_id           uuid,
    p_kind         text,
    p_memo         text,
    p_category     text,
    p_fingerprint  bytea,
    p_unit_code    text,
    p_pending      boolean,
    p_expires_in_s integer,
    p_reverses     uuid,
    p_accounts     uuid[],
    p_amounts      bigint[]
) RETURNS TABLE (tx_index integer, outcome text, state text,
                 created_at timestamptz, resolved_at timestamptz, expires_at timestamptz)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
    v_at           timestamptz;
    v_expires_at   timestamptz;
    v_existing     transactions%ROWTYPE;
    -- The locked accounts, sorted by id (not in leg order).
    v_ids          uuid[];
    v_statuses     text[];
    v_units        text[];
    v_balances     bigint[];
    v_min_balances bigint[];
    v_max_balances bigint[];
    v_debits       bigint[];
    v_credits      bigint[];
    v_leg          integer;
    v_slot         integer;
    v_leg_units    text[] := '{}';
    v_amount       bigint;
    v_available    bigint;
    v_committed    bigint;
    v_problem      text;
    v_unbalanced   record;
BEGIN
    -- Lock the accounts in id order and read them: a row we waited for is re-read
    -- at its latest version.
    SELECT array_agg(x.id), array_agg(x.status::text), array_agg(x.code), array_agg(x.balance),
           array_agg(x.min_balance), array_agg(x.max_balance)
      INTO v_ids, v_statuses, v_units, v_balances, v_min_balances, v_max_balances
      FROM (SELECT a.id, a.status, u.code, a.balance, a.min_balance, a.max_balance
              FROM accounts a
              JOIN units u ON u.community_id = a.community_id AND u.id = a.unit_id
             WHERE a.community_id = p_community AND a.id = ANY (p_accounts)
             ORDER BY a.id
               FOR UPDATE OF a) x;
    -- Read after the locks: per account, posting times follow posting order.
    v_at := clock_timestamp();
    v_expires_at := CASE WHEN p_pending THEN v_at + make_interval(secs => p_expires_in_s) END;

    INSERT INTO transactions (community_id, id, kind, state, memo, category, fingerprint,
                              reverses_id, leg_accounts, leg_amounts, created_at, expires_at,
                              resolved_at)
    VALUES (p_community, p_id, p_kind::ledger_transaction_kind,
            (CASE WHEN p_pending THEN 'pending' ELSE 'posted' END)::ledger_transaction_state,
            p_memo, p_category, p_fingerprint, p_reverses, p_accounts, p_amounts, v_at,
            v_expires_at, CASE WHEN p_pending THEN NULL ELSE v_at END)
    ON CONFLICT (community_id, id) DO NOTHING;
    IF NOT FOUND THEN
        SELECT * INTO v_existing FROM transactions t
         WHERE t.community_id = p_community AND t.id = p_id;
        IF v_existing.fingerprint <> p_fingerprint THEN
            PERFORM ledger_fail('transaction_id_conflict', jsonb_build_object(
                'transaction_id', p_id, 'index', 0));
        END IF;
        RETURN QUERY SELECT 1, 'exists', v_existing.state::text, v_existing.created_at,
                            v_existing.resolved_at, v_existing.expires_at;
        RETURN;
    END IF;

    FOR v_leg IN 1 .. cardinality(p_accounts) LOOP
        v_slot := array_position(v_ids, p_accounts[v_leg]);
        v_problem := CASE
            WHEN v_slot IS NULL THEN 'unknown_account'
            WHEN p_unit_code IS NOT NULL AND v_units[v_slot] <> p_unit_code THEN 'unit_mismatch'
            WHEN v_statuses[v_slot] = 'frozen' THEN 'account_frozen'
            WHEN v_statuses[v_slot] = 'closed' THEN 'account_closed'
        END;
        IF v_problem IS NOT NULL THEN
            PERFORM ledger_fail(v_problem, jsonb_build_object(
                'index', 0, 'transaction_id', p_id, 'account_id', p_accounts[v_leg],
                'status', v_statuses[v_slot], 'unit', v_units[v_slot],
                'expected_unit', p_unit_code));
        END IF;
        v_leg_units := v_leg_units || v_units[v_slot];
    END LOOP;
    IF p_unit_code IS NULL THEN
        SELECT l.unit, sum(l.amount) AS total INTO v_unbalanced
          FROM unnest(v_leg_units, p_amounts) AS l(unit, amount)
         GROUP BY l.unit HAVING sum(l.amount) <> 0
         ORDER BY l.unit LIMIT 1;
        IF FOUND THEN
            PERFORM ledger_fail('unit_mismatch', jsonb_build_object(
                'index', 0, 'transaction_id', p_id, 'unit', v_unbalanced.unit,
                'unbalanced_by', v_unbalanced.total));
        END IF;
    END IF;

    -- Reservations are read by a statement of their own, after the locks: its
    -- snapshot sees every hold committed by those we waited for (the locking
    -- statement's snapshot, taken before the wait, would not).
    SELECT array_agg(coalesce(h.pending_debits, 0) ORDER BY x.ord),
           array_agg(coalesce(h.pending_credits, 0) ORDER BY x.ord)
      INTO v_debits, v_credits
      FROM unnest(v_ids) WITH ORDINALITY AS x(id, ord)
      LEFT JOIN ledger_active_holds(p_community, v_ids, v_at) h ON h.account_id = x.id;

    FOR v_leg IN 1 .. cardinality(p_accounts) LOOP
        v_slot := array_position(v_ids, p_accounts[v_leg]);
        v_amount := p_amounts[v_leg];
        v_available := v_balances[v_slot] - v_debits[v_slot];
        v_committed := v_balances[v_slot] + v_credits[v_slot];
        IF v_amount < 0 AND v_available + v_amount < v_min_balances[v_slot] THEN
            PERFORM ledger_fail('limit_exceeded', jsonb_build_object(
                'index', 0, 'transaction_id', p_id, 'account_id', p_accounts[v_leg],
                'unit', v_units[v_slot], 'limit', 'min_balance',
                'limit_value', v_min_balances[v_slot], 'available', v_available,
                'amount', v_amount,
                'exceeded_by', v_min_balances[v_slot] - (v_available + v_amount)));
        END IF;
        IF v_amount > 0 AND v_committed + v_amount > v_max_balances[v_slot] THEN
            PERFORM ledger_fail('limit_exceeded', jsonb_build_object(
                'index', 0, 'transaction_id', p_id, 'account_id', p_accounts[v_leg],
                'unit', v_units[v_slot], 'limit', 'max_balance',
                'limit_value', v_max_balances[v_slot], 'committed', v_committed,
                'amount', v_amount,
                'exceeded_by', v_committed + v_amount - v_max_balances[v_slot]));
        END IF;
    END LOOP;

    IF p_pending THEN
        INSERT INTO holds (community_id, account_id, transaction_id, amount, expires_at)
        SELECT p_community, l.account_id, p_id, l.amount, v_expires_at
          FROM unnest(p_accounts, p_amounts) AS l(account_id, amount);
    ELSE
        -- Each account appears once, so its posting is the next in its sequence.
        WITH moved AS (
            UPDATE accounts a
               SET balance = a.balance + l.amount, posting_count = a.posting_count + 1
              FROM unnest(p_accounts, p_amounts) AS l(account_id, amount)
             WHERE a.community_id = p_community AND a.id = l.account_id
               AND a.id = ANY (p_accounts)
            RETURNING a.id, a.balance, a.posting_count, l.amount
        )
        INSERT INTO postings (community_id, account_id, account_seq, transaction_id, amount,
                              balance_after, posted_at)
        SELECT p_community, m.id, m.posting_count, p_id, m.amount, m.balance, v_at FROM moved m;
    END IF;

    RETURN QUERY SELECT 1, 'created', CASE WHEN p_pending THEN 'pending' ELSE 'posted' END,
                        v_at, CASE WHEN p_pending THEN NULL ELSE v_at END, v_expires_at;
END;
$$;

-- ledger_atomic_refusal of 0021 (a refused call, or one whose transactions name no
-- unit): the reservations of the accounts involved only, as ledger_post_atomic's.
CREATE OR REPLACE FUNCTION ledger_atomic_refusal(
    p_community      uuid,
    p_ids            uuid[],
    p_unit_codes     text[],
    p_pending        boolean[],
    p_leg_tx         integer[],
    p_leg_accounts   uuid[],
    p_leg_amounts    bigint[],
    p_is_new         boolean[],
    p_at             timestamptz,
    -- The locked accounts, sorted by id.
    p_account_ids    uuid[],
    p_statuses       text[],
    p_units          text[],
    p_balances       bigint[],
    p_min_balances   bigint[],
    p_max_balances   bigint[]
) RETURNS void
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
    v_problem    record;
    v_unbalanced record;
BEGIN
    -- The first problem of any leg: anything but a limit first, then limits in
    -- posting order, judged on the balance including active reservations.
    SELECT x.* INTO v_problem FROM (
        SELECT l.ord, l.tx, l.account_id, l.amount, a.status, a.code AS unit_code,
               a.min_balance, a.max_balance,
               CASE
                 WHEN a.id IS NULL THEN 'unknown_account'
                 WHEN p_unit_codes[l.tx] IS NOT NULL AND a.code <> p_unit_codes[l.tx]
                   THEN 'unit_mismatch'
                 WHEN a.status = 'frozen' THEN 'account_frozen'
                 WHEN a.status = 'closed' THEN 'account_closed'
                 WHEN a.balance
                      + sum(CASE WHEN p_pending[l.tx] THEN 0 ELSE l.amount END) OVER w
                      - coalesce(h.pending_debits, 0)
                      - sum(CASE WHEN p_pending[l.tx] AND l.amount < 0 THEN -l.amount ELSE 0 END) OVER w
                      < a.min_balance
                   THEN 'limit_exceeded'
                 WHEN a.balance
                      + sum(CASE WHEN p_pending[l.tx] THEN 0 ELSE l.amount END) OVER w
                      + coalesce(h.pending_credits, 0)
                      + sum(CASE WHEN p_pending[l.tx] AND l.amount > 0 THEN l.amount ELSE 0 END) OVER w
                      > a.max_balance
                   THEN 'limit_exceeded'
               END AS problem,
               a.balance - coalesce(h.pending_debits, 0)
                   + sum(CASE WHEN p_pending[l.tx] THEN 0 ELSE l.amount END) OVER w
                   - sum(CASE WHEN p_pending[l.tx] AND l.amount < 0 THEN -l.amount ELSE 0 END) OVER w
                   - l.amount * (l.amount < 0)::int
                   AS available_before,
               a.balance + coalesce(h.pending_credits, 0)
                   + sum(CASE WHEN p_pending[l.tx] THEN 0 ELSE l.amount END) OVER w
                   + sum(CASE WHEN p_pending[l.tx] AND l.amount > 0 THEN l.amount ELSE 0 END) OVER w
                   - l.amount * (l.amount > 0)::int
                   AS committed_before
          FROM unnest(p_leg_tx, p_leg_accounts, p_leg_amounts)
               WITH ORDINALITY AS l(tx, account_id, amount, ord)
          LEFT JOIN unnest(p_account_ids, p_statuses, p_units, p_balances, p_min_balances,
                           p_max_balances)
               AS a(id, status, code, balance, min_balance, max_balance)
                 ON a.id = l.account_id
          -- The active reservations of the accounts involved, read at once.
          LEFT JOIN (SELECT h.account_id,
                            sum(-h.amount) FILTER (WHERE h.amount < 0) AS pending_debits,
                            sum(h.amount) FILTER (WHERE h.amount > 0) AS pending_credits
                       FROM holds h
                      WHERE h.community_id = p_community
                        AND h.account_id = ANY (p_account_ids)
                        AND h.expires_at > p_at
                      GROUP BY h.account_id) h
                 ON h.account_id = l.account_id
         WHERE p_is_new[l.tx]
        WINDOW w AS (PARTITION BY l.account_id ORDER BY l.ord)
    ) x
    WHERE x.problem IS NOT NULL
    ORDER BY x.problem = 'limit_exceeded', x.ord
    LIMIT 1;

    IF FOUND AND v_problem.problem <> 'limit_exceeded' THEN
        PERFORM ledger_fail(v_problem.problem, jsonb_build_object(
            'index', v_problem.tx - 1, 'transaction_id', p_ids[v_problem.tx],
            'account_id', v_problem.account_id, 'status', v_problem.status,
            'unit', v_problem.unit_code, 'expected_unit', p_unit_codes[v_problem.tx]));
    END IF;

    -- A transaction that names no unit must balance in each unit it touches.
    IF EXISTS (SELECT 1 FROM unnest(p_unit_codes) WITH ORDINALITY AS c(code, ord)
                WHERE c.code IS NULL AND p_is_new[c.ord]) THEN
        SELECT l.tx, a.code, sum(l.amount) AS total INTO v_unbalanced
          FROM unnest(p_leg_tx, p_leg_accounts, p_leg_amounts) AS l(tx, account_id, amount)
          JOIN unnest(p_account_ids, p_units) AS a(id, code) ON a.id = l.account_id
         WHERE p_is_new[l.tx] AND p_unit_codes[l.tx] IS NULL
         GROUP BY l.tx, a.code
        HAVING sum(l.amount) <> 0
         ORDER BY l.tx, a.code
         LIMIT 1;
        IF FOUND THEN
            PERFORM ledger_fail('unit_mismatch', jsonb_build_object(
                'index', v_unbalanced.tx - 1, 'transaction_id', p_ids[v_unbalanced.tx],
                'unit', v_unbalanced.code, 'unbalanced_by', v_unbalanced.total));
        END IF;
    END IF;

    IF v_problem.problem = 'limit_exceeded' THEN
        PERFORM ledger_fail('limit_exceeded', CASE WHEN v_problem.amount < 0
            THEN jsonb_build_object(
                'index', v_problem.tx - 1, 'transaction_id', p_ids[v_problem.tx],
                'account_id', v_problem.account_id, 'unit', v_problem.unit_code,
                'limit', 'min_balance', 'limit_value', v_problem.min_balance,
                'available', v_problem.available_before, 'amount', v_problem.amount,
                'exceeded_by', v_problem.min_balance - (v_problem.available_before + v_problem.amount))
            ELSE jsonb_build_object(
                'index', v_problem.tx - 1, 'transaction_id', p_ids[v_problem.tx],
                'account_id', v_problem.account_id, 'unit', v_problem.unit_code,
                'limit', 'max_balance', 'limit_value', v_problem.max_balance,
                'committed', v_problem.committed_before, 'amount', v_problem.amount,
                'exceeded_by', v_problem.committed_before + v_problem.amount - v_problem.max_balance)
            END);
    END IF;
END;
$$;

-- The sweeper of 0002. When nothing was due it walked every pending transaction of
-- every community (its time bound was a volatile call, not an index condition), and
-- its update joined the due rows to the transactions with a plan that could scan
-- them all. The due rows are now gathered first, then updated and released by key.
CREATE OR REPLACE FUNCTION ledger_expire_overdue(p_limit integer) RETURNS integer
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
    -- A value, not clock_timestamp() in the condition: a volatile call cannot bound
    -- the index scan, which then read every pending transaction to find none due.
    v_now         timestamptz := clock_timestamp();
    v_communities uuid[];
    v_ids         uuid[];
BEGIN
    SELECT array_agg(d.community_id), array_agg(d.id) INTO v_communities, v_ids
      FROM (SELECT t.community_id, t.id FROM transactions t
             WHERE t.state = 'pending' AND t.expires_at <= v_now
             ORDER BY t.expires_at
             LIMIT p_limit
               FOR UPDATE SKIP LOCKED) d;
    IF v_ids IS NULL THEN
        RETURN 0;
    END IF;
    -- Each locked row was pending when locked (FOR UPDATE rechecks the condition).
    UPDATE transactions t SET state = 'expired', resolved_at = t.expires_at
      FROM unnest(v_communities, v_ids) AS d(community_id, id)
     WHERE t.community_id = d.community_id AND t.id = d.id AND t.id = ANY (v_ids);
    DELETE FROM holds h USING unnest(v_communities, v_ids) AS d(community_id, id)
     WHERE h.community_id = d.community_id AND h.transaction_id = d.id
       AND h.transaction_id = ANY (v_ids);
    RETURN cardinality(v_ids);
END;
$$;

-- The resolutions' log trigger of 0009 joined the statement's new and old rows,
-- which have no statistics: planned as a nested loop, expiring 1,000 transactions
-- compared a million pairs (0.25 s, holding the community's log head). The join
-- only kept rows that were pending before; transactions_resolve_once (0001) lets an
-- UPDATE change nothing but a pending row into a resolved one, so every new row
-- that is not pending is a resolution.
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
        INSERT INTO log_entries (community_id, leaf_index, entry, transaction_id)
        SELECT v_community, v_start + row_number() OVER (ORDER BY n.resolved_at, n.id) - 1,
               convert_to(log_resolution_entry(n), 'UTF8'), n.id
          FROM new_rows n
         WHERE n.community_id = v_community AND n.state <> 'pending';
    END LOOP;
    RETURN NULL;
END
$$;
