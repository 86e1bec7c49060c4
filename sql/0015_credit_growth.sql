-- Credit that grows with hours given: a schedule of kind 'credit_growth' lowers,
-- at each period's end, the minimum of each member's account of a time unit by
-- rate_bps / 10,000 of the hours they have earned by exchanges so far (rounded
-- down), never below `threshold` (the bound) and never raising it back. Lowering
-- a minimum cannot break a balance or a pending reservation.

ALTER TABLE policy_schedules DROP CONSTRAINT policy_schedules_kind_check;
ALTER TABLE policy_schedules ADD CONSTRAINT policy_schedules_kind_check
    CHECK (kind IN ('demurrage', 'hours_expiry', 'membership_fee', 'recurring_donation',
                    'credit_growth'));
ALTER TABLE policy_schedules DROP CONSTRAINT policy_schedules_check;
ALTER TABLE policy_schedules ADD CONSTRAINT policy_schedules_fields_check CHECK (CASE kind
    WHEN 'demurrage' THEN rate_bps IS NOT NULL AND threshold IS NOT NULL
                          AND amount IS NULL AND payer_kind IS NULL AND source_account IS NULL
    WHEN 'hours_expiry' THEN rate_bps = 10000 AND threshold IS NOT NULL
                          AND amount IS NULL AND payer_kind IS NULL AND source_account IS NULL
    WHEN 'credit_growth' THEN rate_bps IS NOT NULL AND threshold IS NOT NULL AND threshold <= 0
                          AND amount IS NULL AND payer_kind IS NULL AND source_account IS NULL
    WHEN 'membership_fee' THEN amount IS NOT NULL AND payer_kind IS NOT NULL
                          AND rate_bps IS NULL AND threshold IS NULL AND source_account IS NULL
    ELSE amount IS NOT NULL AND source_account IS NOT NULL
         AND rate_bps IS NULL AND threshold IS NULL AND payer_kind IS NULL
END);

-- The minimums credit growth gives at an instant: per active member account of
-- the unit, its kind's default minimum less rate_bps of what it earned by
-- exchanges, bounded by p_floor; only the accounts whose minimum it lowers.
CREATE FUNCTION policy_credit_growth(p_community uuid, p_unit uuid, p_rate_bps integer,
                                     p_floor bigint, p_at timestamptz)
RETURNS TABLE (account_id uuid, min_balance bigint)
LANGUAGE sql STABLE AS $$
    SELECT x.id, x.grown FROM (
        SELECT a.id, a.min_balance,
               greatest(p_floor,
                        d.min_balance - floor(coalesce(e.earned, 0)::numeric * p_rate_bps / 10000)
                       )::bigint AS grown
          FROM accounts a
          JOIN parties p ON p.community_id = a.community_id AND p.id = a.owner_id
          CROSS JOIN LATERAL account_default_limits(a.community_id, a.unit_id, a.owner_id) d
          LEFT JOIN LATERAL (
              SELECT sum(po.amount) AS earned
                FROM postings po
                JOIN transactions t ON t.community_id = po.community_id AND t.id = po.transaction_id
               WHERE po.community_id = a.community_id AND po.account_id = a.id
                 AND po.amount > 0 AND po.posted_at < p_at AND t.kind = 'exchange') e ON true
         WHERE a.community_id = p_community AND a.unit_id = p_unit AND a.status = 'active'
           AND p.kind = 'member' AND a.purpose = 'main'
    ) x
    WHERE x.grown < x.min_balance;
$$;

CREATE OR REPLACE FUNCTION log_schedule_changed() RETURNS trigger
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
        || '","target_account":' || CASE WHEN NEW.target_account IS NULL THEN 'null'
                                          ELSE '"' || NEW.target_account::text || '"' END
        || ',"threshold":' || CASE WHEN NEW.threshold IS NULL THEN 'null'
                                   ELSE '"' || NEW.threshold::text || '"' END
        || ',"type":"schedule","unit":"' || NEW.unit_id::text
        || '","v":1}']);
    RETURN NULL;
END
$$;
-- Credit growth credits no account.
ALTER TABLE policy_schedules ALTER COLUMN target_account DROP NOT NULL;
ALTER TABLE policy_schedules ADD CONSTRAINT policy_schedules_target_check
    CHECK ((kind = 'credit_growth') = (target_account IS NULL));
