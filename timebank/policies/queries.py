"""The periodic policies' SQL, as named constants; values are always parameters."""

SELECT_UNIT_ID = "SELECT id FROM units WHERE community_id = $1 AND code = $2"
SELECT_ACCOUNT_UNIT = "SELECT unit_id FROM accounts WHERE community_id = $1 AND id = $2"
INSERT_SCHEDULE = """
INSERT INTO policy_schedules (community_id, kind, unit_id, period, starts_on, rate_bps,
                              threshold, amount, payer_kind, source_account, target_account,
                              grace_days)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
RETURNING id
"""
SCHEDULE_COLUMNS = """
s.id, s.community_id, s.kind, u.code AS unit_code, s.period, s.starts_on, s.rate_bps,
s.threshold, s.amount, s.payer_kind, s.source_account, s.target_account, s.grace_days,
s.created_at, s.retired_at
"""
SELECT_SCHEDULES = f"""
SELECT {SCHEDULE_COLUMNS}
  FROM policy_schedules s JOIN units u ON u.community_id = s.community_id AND u.id = s.unit_id
 WHERE s.community_id = $1 AND ($2::uuid IS NULL OR s.id = $2)
 ORDER BY s.created_at, s.id
"""
# Schedules in force, with the start of their last period run (NULL: none yet).
SELECT_ACTIVE_SCHEDULES = f"""
SELECT {SCHEDULE_COLUMNS},
       (SELECT max(r.period_start) FROM policy_runs r
         WHERE r.community_id = s.community_id AND r.schedule_id = s.id) AS last_run_start
  FROM policy_schedules s JOIN units u ON u.community_id = s.community_id AND u.id = s.unit_id
 WHERE s.retired_at IS NULL AND ($1::uuid IS NULL OR s.community_id = $1)
 ORDER BY s.community_id, s.created_at, s.id
"""
RETIRE_SCHEDULE = """
UPDATE policy_schedules SET retired_at = now()
 WHERE community_id = $1 AND id = $2 AND retired_at IS NULL
"""
# Another instance running this schedule holds the row: skip it, it is being done.
LOCK_SCHEDULE = """
SELECT id FROM policy_schedules
 WHERE community_id = $1 AND id = $2 AND retired_at IS NULL
   FOR UPDATE SKIP LOCKED
"""
INSERT_RUN = """
INSERT INTO policy_runs (community_id, schedule_id, period_start, period_end)
VALUES ($1, $2, $3, $4)
ON CONFLICT DO NOTHING
RETURNING period_start
"""
FINISH_RUN = """
UPDATE policy_runs SET charged_count = $4, charged_total = $5, unpaid_count = $6
 WHERE community_id = $1 AND schedule_id = $2 AND period_start = $3
"""
SELECT_RUNS = """
SELECT schedule_id, period_start, period_end, charged_count, charged_total, unpaid_count
  FROM policy_runs WHERE community_id = $1 AND schedule_id = $2
 ORDER BY period_start DESC
 LIMIT 500
"""
SELECT_EXCESS_CHARGES = """
SELECT c.account_id, c.charge
  FROM units u, policy_excess_charges(u.community_id, u.id, $3, $4, $5, $6) c
 WHERE u.community_id = $1 AND u.code = $2
"""
SELECT_FEE_PAYERS = """
SELECT a.id FROM accounts a
  JOIN units u ON u.community_id = a.community_id AND u.id = a.unit_id
  JOIN parties p ON p.community_id = a.community_id AND p.id = a.owner_id
 WHERE a.community_id = $1 AND u.code = $2 AND p.kind = $3 AND a.purpose = 'main'
   AND a.status = 'active' AND a.id <> $4
 ORDER BY a.id
"""
SELECT_UNPAID = """
SELECT period_start, account_id, amount FROM policy_charges
 WHERE community_id = $1 AND schedule_id = $2 AND state = 'unpaid'
 ORDER BY period_start, account_id
"""
# A new charge, or an earlier unpaid one settled ($9 is NULL then: its due date stays).
UPSERT_CHARGE = """
INSERT INTO policy_charges (community_id, schedule_id, period_start, account_id, amount,
                            transaction_id, state, problem, due_on, paid_at)
VALUES ($1, $2, $3::date, $4, $5, $6, $7::text, $8, coalesce($9::date, $3::date),
        CASE WHEN $7::text = 'paid' THEN now() END)
ON CONFLICT (community_id, schedule_id, period_start, account_id) DO UPDATE
   SET state = EXCLUDED.state, problem = EXCLUDED.problem, paid_at = EXCLUDED.paid_at
 WHERE policy_charges.state = 'unpaid'
"""
# The charges, newest first: of the whole community (for its admins), or of some
# owners' accounts (a member's own, $3), found from their accounts by index (0030).
# Two statements: one with an `($n IS NULL OR ...)` filter gets a generic plan that
# serves both cases alike.
_DUES = """
SELECT c.schedule_id, s.kind, c.period_start, c.account_id, a.owner_id, c.amount, c.state,
       c.problem, c.due_on, c.transaction_id,
       (c.state = 'unpaid' AND c.due_on < (now() AT TIME ZONE 'UTC')::date) AS overdue
  FROM policy_charges c
  JOIN policy_schedules s ON s.community_id = c.community_id AND s.id = c.schedule_id
  JOIN accounts a ON a.community_id = c.community_id AND a.id = c.account_id
 WHERE c.community_id = $1 AND (NOT $2 OR c.state = 'unpaid')
"""
_DUES_NEWEST_FIRST = """
 ORDER BY c.period_start DESC, c.account_id
 LIMIT 500
"""
SELECT_DUES = _DUES + _DUES_NEWEST_FIRST
SELECT_DUES_OF_OWNERS = _DUES + "   AND a.owner_id = ANY ($3::uuid[])" + _DUES_NEWEST_FIRST

UPSERT_LIMIT_DEFAULTS = """
INSERT INTO unit_limit_defaults (community_id, unit_id, party_kind, min_balance, max_balance)
SELECT u.community_id, u.id, $3, $4, $5 FROM units u WHERE u.community_id = $1 AND u.code = $2
ON CONFLICT (community_id, unit_id, party_kind) DO UPDATE
   SET min_balance = EXCLUDED.min_balance, max_balance = EXCLUDED.max_balance, updated_at = now()
RETURNING unit_id
"""
SELECT_LIMIT_DEFAULTS = """
SELECT u.code AS unit_code, d.party_kind, d.min_balance, d.max_balance
  FROM unit_limit_defaults d JOIN units u ON u.community_id = d.community_id AND u.id = d.unit_id
 WHERE d.community_id = $1
 ORDER BY u.code, d.party_kind
"""

SELECT_CREDIT_GROWTH = """
SELECT g.account_id, g.min_balance, a.min_balance AS previous
  FROM units u
 CROSS JOIN LATERAL policy_credit_growth(u.community_id, u.id, $3, $4, $5) g
  JOIN accounts a ON a.community_id = u.community_id AND a.id = g.account_id
 WHERE u.community_id = $1 AND u.code = $2
"""
LOWER_MINIMUMS = """
UPDATE accounts a SET min_balance = g.min_balance
  FROM unnest($2::uuid[], $3::bigint[]) AS g(id, min_balance)
 WHERE a.community_id = $1 AND a.id = g.id AND g.min_balance < a.min_balance
"""

# Members' main accounts of the unit this welcome-grant schedule has not yet paid
# (nor tried: an unpaid one is retried as such).
SELECT_UNWELCOMED = """
SELECT a.id FROM accounts a
  JOIN units u ON u.community_id = a.community_id AND u.id = a.unit_id
  JOIN parties p ON p.community_id = a.community_id AND p.id = a.owner_id
 WHERE a.community_id = $1 AND u.code = $2 AND p.kind = 'member' AND a.purpose = 'main'
   AND a.status = 'active' AND a.id <> $4
   AND NOT EXISTS (SELECT 1 FROM policy_charges c
                    WHERE c.community_id = a.community_id AND c.schedule_id = $3
                      AND c.account_id = a.id)
 ORDER BY a.id
"""
