-- Periodic policies, run by the service itself from this table:
--   demurrage ("fonte") on a currency and expiry of hours: at each period's end, a
--   share (rate_bps / 10,000, rounded down; expiry: all) of each member's and
--   organization's balance above a threshold goes to a target account (a pool's
--   or the association's);
--   membership fees (a fixed amount from each member's or organization's account)
--   and recurring donations (from one account), each period, to a target account.
--
-- Exactly once per period, with several service instances and after downtime: a
-- period's run is one database transaction that inserts its policy_runs row (the
-- primary key refuses a second) and writes its ledger transactions, whose ids are
-- derived from the schedule, the period and the account, so that no retry can
-- charge twice. Periods are calendar periods in UTC; a run takes the balances at
-- the period's end (ledger_balance_at), however late it runs.

CREATE TABLE policy_schedules (
    community_id   uuid        NOT NULL,
    id             uuid        NOT NULL DEFAULT gen_random_uuid(),
    kind           text        NOT NULL CHECK (kind IN ('demurrage', 'hours_expiry',
                                                        'membership_fee', 'recurring_donation')),
    unit_id        uuid        NOT NULL,
    period         text        NOT NULL CHECK (period IN ('day', 'week', 'month', 'quarter', 'year')),
    -- The first period starts on this day (a period boundary), UTC.
    starts_on      date        NOT NULL,
    rate_bps       integer     CHECK (rate_bps BETWEEN 1 AND 10000),
    threshold      bigint      CHECK (threshold BETWEEN -9007199254740991 AND 9007199254740991),
    amount         bigint      CHECK (amount BETWEEN 1 AND 9007199254740991),
    -- Fees: who pays them.
    payer_kind     text        CHECK (payer_kind IN ('member', 'organization')),
    -- Recurring donations: the donor's account.
    source_account uuid,
    target_account uuid        NOT NULL,
    -- Fees: how long an unpaid fee may wait before the member is overdue.
    grace_days     smallint    NOT NULL DEFAULT 0 CHECK (grace_days BETWEEN 0 AND 366),
    created_at     timestamptz NOT NULL DEFAULT now(),
    retired_at     timestamptz,
    PRIMARY KEY (community_id, id),
    FOREIGN KEY (community_id, unit_id) REFERENCES units (community_id, id),
    FOREIGN KEY (community_id, target_account) REFERENCES accounts (community_id, id),
    FOREIGN KEY (community_id, source_account) REFERENCES accounts (community_id, id),
    CHECK (CASE kind
        WHEN 'demurrage' THEN rate_bps IS NOT NULL AND threshold IS NOT NULL
                              AND amount IS NULL AND payer_kind IS NULL AND source_account IS NULL
        WHEN 'hours_expiry' THEN rate_bps = 10000 AND threshold IS NOT NULL
                              AND amount IS NULL AND payer_kind IS NULL AND source_account IS NULL
        WHEN 'membership_fee' THEN amount IS NOT NULL AND payer_kind IS NOT NULL
                              AND rate_bps IS NULL AND threshold IS NULL AND source_account IS NULL
        ELSE amount IS NOT NULL AND source_account IS NOT NULL
             AND rate_bps IS NULL AND threshold IS NULL AND payer_kind IS NULL
    END)
);

-- One row per period run: the primary key is the "exactly once".
CREATE TABLE policy_runs (
    community_id  uuid        NOT NULL,
    schedule_id   uuid        NOT NULL,
    period_start  date        NOT NULL,
    period_end    date        NOT NULL CHECK (period_end > period_start),
    ran_at        timestamptz NOT NULL DEFAULT now(),
    charged_count integer     NOT NULL DEFAULT 0,
    charged_total bigint      NOT NULL DEFAULT 0,
    unpaid_count  integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (community_id, schedule_id, period_start),
    FOREIGN KEY (community_id, schedule_id) REFERENCES policy_schedules (community_id, id)
);
CREATE TRIGGER policy_runs_no_delete BEFORE DELETE ON policy_runs
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();

-- Fees and recurring donations per account and period: paid, or unpaid (the
-- account could not pay; later runs try again with the same transaction id).
CREATE TABLE policy_charges (
    community_id   uuid        NOT NULL,
    schedule_id    uuid        NOT NULL,
    period_start   date        NOT NULL,
    account_id     uuid        NOT NULL,
    amount         bigint      NOT NULL CHECK (amount > 0),
    transaction_id uuid        NOT NULL,
    state          text        NOT NULL CHECK (state IN ('paid', 'unpaid')),
    -- Why it is unpaid: the ledger's error code.
    problem        text,
    due_on         date        NOT NULL,
    paid_at        timestamptz,
    PRIMARY KEY (community_id, schedule_id, period_start, account_id),
    FOREIGN KEY (community_id, schedule_id, period_start)
        REFERENCES policy_runs (community_id, schedule_id, period_start),
    CHECK ((state = 'paid') = (paid_at IS NOT NULL))
);
CREATE INDEX policy_charges_unpaid ON policy_charges (community_id, schedule_id, account_id)
    WHERE state = 'unpaid';
CREATE TRIGGER policy_charges_no_delete BEFORE DELETE ON policy_charges
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();

-- A schedule is created, then only ever retired, once.
CREATE FUNCTION policy_schedules_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.retired_at IS NULL AND NEW.retired_at IS NOT NULL
       AND (to_jsonb(NEW) - 'retired_at') = (to_jsonb(OLD) - 'retired_at') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'schedule % can only be retired, once', OLD.id USING ERRCODE = 'TB001';
END
$$;
CREATE TRIGGER policy_schedules_retire_once BEFORE UPDATE ON policy_schedules
    FOR EACH ROW EXECUTE FUNCTION policy_schedules_guard();
CREATE TRIGGER policy_schedules_no_delete BEFORE DELETE ON policy_schedules
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();

-- What each period of demurrage or expiry takes: per active member's or
-- organization's account of the unit, rate_bps / 10,000 of its balance above the
-- threshold at the period's end, rounded down, and never more than the account
-- can give now (its balance less pending debits, above its minimum).
CREATE FUNCTION policy_excess_charges(p_community uuid, p_unit uuid, p_threshold bigint,
                                      p_rate_bps integer, p_at timestamptz, p_target uuid)
RETURNS TABLE (account_id uuid, charge bigint)
LANGUAGE sql STABLE AS $$
    SELECT x.id, x.charge FROM (
        SELECT a.id,
               least(floor((b.balance - p_threshold)::numeric * p_rate_bps / 10000),
                     a.balance - coalesce(h.pending_debits, 0) - a.min_balance)::bigint AS charge
          FROM accounts a
          JOIN parties p ON p.community_id = a.community_id AND p.id = a.owner_id
          CROSS JOIN LATERAL (SELECT ledger_balance_at(a.community_id, a.id, p_at) AS balance) b
          LEFT JOIN (SELECT hh.account_id, sum(-hh.amount) AS pending_debits
                       FROM holds hh
                      WHERE hh.community_id = p_community AND hh.amount < 0
                        AND hh.expires_at > clock_timestamp()
                      GROUP BY hh.account_id) h ON h.account_id = a.id
         WHERE a.community_id = p_community AND a.unit_id = p_unit AND a.id <> p_target
           AND a.status = 'active' AND a.posting_count > 0
           AND p.kind IN ('member', 'organization')
           AND b.balance > p_threshold
    ) x
    WHERE x.charge > 0
    ORDER BY x.id;
$$;

CREATE FUNCTION log_schedule_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM log_append(ARRAY[NEW.community_id], ARRAY[
        '{"amount":' || CASE WHEN NEW.amount IS NULL THEN 'null' ELSE '"' || NEW.amount::text || '"' END
        || ',"grace_days":' || NEW.grace_days::text
        || ',"id":"' || NEW.id::text
        || '","kind":"' || NEW.kind
        || '","payer_kind":' || CASE WHEN NEW.payer_kind IS NULL THEN 'null'
                                     ELSE '"' || NEW.payer_kind || '"' END
        || ',"period":"' || NEW.period
        || '","rate_bps":' || coalesce(NEW.rate_bps::text, 'null')
        || ',"retired":' || (NEW.retired_at IS NOT NULL)::text
        || ',"source_account":' || CASE WHEN NEW.source_account IS NULL THEN 'null'
                                         ELSE '"' || NEW.source_account::text || '"' END
        || ',"starts_on":"' || NEW.starts_on::text
        || '","target_account":"' || NEW.target_account::text
        || '","threshold":' || CASE WHEN NEW.threshold IS NULL THEN 'null'
                                    ELSE '"' || NEW.threshold::text || '"' END
        || ',"type":"schedule","unit":"' || NEW.unit_id::text
        || '","v":1}']);
    RETURN NULL;
END
$$;
CREATE TRIGGER policy_schedules_logged AFTER INSERT OR UPDATE ON policy_schedules
    FOR EACH ROW EXECUTE FUNCTION log_schedule_changed();
