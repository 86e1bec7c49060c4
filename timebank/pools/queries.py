"""The pools' SQL, as named constants; values are always parameters."""

SELECT_UNITS_BY_CODE = """
SELECT code, id FROM units WHERE community_id = $1 AND code = ANY ($2::text[])
"""
SELECT_PARTY_KINDS = """
SELECT id, kind FROM parties WHERE community_id = $1 AND id = ANY ($2::uuid[])
"""
INSERT_POOL_PARTY = """
INSERT INTO parties (community_id, kind, display_name) VALUES ($1, 'pool', $2) RETURNING id
"""
# A pool's accounts never go below zero: it gives what it holds.
INSERT_POOL_ACCOUNT = """
INSERT INTO accounts (community_id, unit_id, owner_id, purpose, min_balance, max_balance)
SELECT $1, $2, $3, 'main', 0, d.max_balance FROM account_default_limits($1, $2, $3) d
ON CONFLICT (owner_id, unit_id, purpose, community_id) DO UPDATE SET purpose = EXCLUDED.purpose
RETURNING id
"""
INSERT_POOL = """
INSERT INTO pools (community_id, id, purpose, approvals_required, period_days,
                   requires_referral, donors_visible)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""
UPDATE_POOL = """
UPDATE pools SET purpose = $3, approvals_required = $4, period_days = $5,
                 requires_referral = $6, donors_visible = $7, updated_at = now()
 WHERE community_id = $1 AND id = $2
RETURNING id
"""
UPSERT_POOL_UNIT = """
INSERT INTO pool_units (community_id, pool_id, unit_id, account_id, grant_max,
                        beneficiary_period_max, eligible_at_or_below)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (community_id, pool_id, unit_id) DO UPDATE
   SET grant_max = EXCLUDED.grant_max,
       beneficiary_period_max = EXCLUDED.beneficiary_period_max,
       eligible_at_or_below = EXCLUDED.eligible_at_or_below
"""
DELETE_POOL_STAFF = "DELETE FROM pool_staff WHERE community_id = $1 AND pool_id = $2"
INSERT_POOL_STAFF = """
INSERT INTO pool_staff (community_id, pool_id, party_id, role)
SELECT $1, $2, s.party_id, s.role FROM unnest($3::uuid[], $4::text[]) AS s(party_id, role)
"""
LOG_POOL_CHARTER = "SELECT log_pool_charter($1, $2)"

SELECT_POOLS = """
SELECT p.id, pa.display_name, p.purpose, p.approvals_required, p.period_days,
       p.requires_referral, p.donors_visible, p.created_at,
       coalesce((SELECT array_agg(s.party_id ORDER BY s.party_id) FROM pool_staff s
                  WHERE s.community_id = p.community_id AND s.pool_id = p.id
                    AND s.role = 'manager'), '{}') AS managers,
       coalesce((SELECT array_agg(s.party_id ORDER BY s.party_id) FROM pool_staff s
                  WHERE s.community_id = p.community_id AND s.pool_id = p.id
                    AND s.role = 'referrer'), '{}') AS referrers
  FROM pools p
  JOIN parties pa ON pa.community_id = p.community_id AND pa.id = p.id
 WHERE p.community_id = $1 AND ($2::uuid IS NULL OR p.id = $2)
 ORDER BY pa.display_name, p.id
"""
SELECT_POOL_UNITS = """
SELECT pu.pool_id, u.code AS unit_code, pu.unit_id, pu.account_id, pu.grant_max,
       pu.beneficiary_period_max, pu.eligible_at_or_below, a.balance
  FROM pool_units pu
  JOIN units u ON u.community_id = pu.community_id AND u.id = pu.unit_id
  JOIN accounts a ON a.community_id = pu.community_id AND a.id = pu.account_id
 WHERE pu.community_id = $1 AND pu.pool_id = ANY ($2::uuid[])
 ORDER BY u.code
"""
# The pool row is the lock that serialises its grants: caps are judged on what
# was granted before, which a concurrent grant must not change meanwhile.
LOCK_POOL = """
SELECT p.period_days, p.requires_referral, p.approvals_required
  FROM pools p WHERE p.community_id = $1 AND p.id = $2
   FOR UPDATE
"""
SELECT_POOL_UNIT_TERMS = """
SELECT u.code AS unit_code, pu.unit_id, pu.account_id, pu.grant_max,
       pu.beneficiary_period_max, pu.eligible_at_or_below
  FROM pool_units pu JOIN units u ON u.community_id = pu.community_id AND u.id = pu.unit_id
 WHERE pu.community_id = $1 AND pu.pool_id = $2 AND u.code = $3
"""
SELECT_GRANTED_IN_PERIOD = """
SELECT coalesce(sum(g.amount), 0)::bigint FROM pool_grants g
 WHERE g.community_id = $1 AND g.pool_id = $2 AND g.beneficiary_id = $3 AND g.unit_id = $4
   AND g.paid_at > now() - make_interval(days => $5)
"""
SELECT_IS_REFERRED = """
SELECT EXISTS (SELECT 1 FROM pool_referrals
                WHERE community_id = $1 AND pool_id = $2 AND party_id = $3)
"""
SELECT_BENEFICIARY_ACCOUNT = """
SELECT a.id, a.balance FROM accounts a
 WHERE a.community_id = $1 AND a.owner_id = $2 AND a.unit_id = $3 AND a.purpose = 'main'
"""
INSERT_GRANT = """
INSERT INTO pool_grants (community_id, transaction_id, pool_id, beneficiary_id, unit_id, amount,
                         request_id, granted_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (community_id, transaction_id) DO NOTHING
"""
SELECT_STAFF_ROLE = """
SELECT EXISTS (SELECT 1 FROM pool_staff
                WHERE community_id = $1 AND pool_id = $2 AND party_id = $3 AND role = $4)
"""

INSERT_REFERRAL = """
INSERT INTO pool_referrals (community_id, pool_id, party_id, referred_by)
VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING
"""
DELETE_REFERRAL = """
DELETE FROM pool_referrals WHERE community_id = $1 AND pool_id = $2 AND party_id = $3
"""

INSERT_REQUEST = """
INSERT INTO pool_requests (community_id, id, pool_id, beneficiary_id, unit_id, account_id,
                           amount, reason, state)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'open')
ON CONFLICT (community_id, id) DO NOTHING
RETURNING id
"""
REQUEST_COLUMNS = """
r.id, r.pool_id, r.beneficiary_id, u.code AS unit_code, r.unit_id, r.account_id, r.amount,
r.reason, r.state, r.created_at, r.resolved_at, r.transaction_id,
coalesce((SELECT array_agg(d.manager_id ORDER BY d.decided_at, d.manager_id)
            FROM pool_decisions d
           WHERE d.community_id = r.community_id AND d.request_id = r.id), '{}') AS deciders,
coalesce((SELECT array_agg(d.decision ORDER BY d.decided_at, d.manager_id)
            FROM pool_decisions d
           WHERE d.community_id = r.community_id AND d.request_id = r.id), '{}') AS decisions
"""
SELECT_REQUEST = f"""
SELECT {REQUEST_COLUMNS}
  FROM pool_requests r JOIN units u ON u.community_id = r.community_id AND u.id = r.unit_id
 WHERE r.community_id = $1 AND r.id = $2
"""
# The lock alone: what the request's row and its decisions are is read by the
# next statement, whose snapshot (taken after the wait) sees what the holder of
# the lock committed; this one's subqueries would not.
LOCK_REQUEST = """
SELECT r.pool_id FROM pool_requests r WHERE r.community_id = $1 AND r.id = $2 FOR UPDATE
"""
# Newest first, by keyset (created_at, id); $4: only this beneficiary's, or all.
SELECT_REQUESTS = f"""
SELECT {REQUEST_COLUMNS}
  FROM pool_requests r JOIN units u ON u.community_id = r.community_id AND u.id = r.unit_id
 WHERE r.community_id = $1 AND r.pool_id = $2
   AND ($3::text IS NULL OR r.state = $3)
   AND ($4::uuid IS NULL OR r.beneficiary_id = $4)
   AND ($5::timestamptz IS NULL OR (r.created_at, r.id) < ($5, $6::uuid))
 ORDER BY r.created_at DESC, r.id DESC
 LIMIT $7
"""
INSERT_DECISION = """
INSERT INTO pool_decisions (community_id, request_id, manager_id, decision, signed, signature,
                            key_id)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (community_id, request_id, manager_id) DO NOTHING
RETURNING decision
"""
SELECT_DECISION = """
SELECT decision FROM pool_decisions WHERE community_id = $1 AND request_id = $2 AND manager_id = $3
"""
COUNT_MANAGERS = """
SELECT count(*)::int FROM pool_staff WHERE community_id = $1 AND pool_id = $2 AND role = 'manager'
"""
RESOLVE_REQUEST = """
UPDATE pool_requests SET state = $3, resolved_at = now(), transaction_id = $4
 WHERE community_id = $1 AND id = $2
"""

# The pool's grants and donations, newest first, for its public statement.
SELECT_COUNTERPARTIES = """
SELECT t.id AS transaction_id, l.account_id, l.amount, a.owner_id, pa.display_name, pa.kind
  FROM transactions t
 CROSS JOIN LATERAL unnest(t.leg_accounts, t.leg_amounts) AS l(account_id, amount)
  JOIN accounts a ON a.community_id = t.community_id AND a.id = l.account_id
  JOIN parties pa ON pa.community_id = a.community_id AND pa.id = a.owner_id
 WHERE t.community_id = $1 AND t.id = ANY ($2::uuid[]) AND l.account_id <> $3
"""

SELECT_LEVY_RULES = """
SELECT r.id, u.code AS unit_code, r.category, r.pool_id, r.account_id, r.rate_bps,
       r.fixed_amount, r.paid_by, r.created_at
  FROM levy_rules r JOIN units u ON u.community_id = r.community_id AND u.id = r.unit_id
 WHERE r.community_id = $1 AND r.retired_at IS NULL
 ORDER BY u.code, r.category NULLS FIRST
"""
RETIRE_LEVY_RULE = """
UPDATE levy_rules SET retired_at = now()
 WHERE community_id = $1 AND unit_id = $2 AND category IS NOT DISTINCT FROM $3
   AND retired_at IS NULL
RETURNING id
"""
INSERT_LEVY_RULE = """
INSERT INTO levy_rules (community_id, unit_id, category, pool_id, account_id, rate_bps,
                        fixed_amount, paid_by)
SELECT pu.community_id, pu.unit_id, $4, pu.pool_id, pu.account_id, $5, $6, $7
  FROM pool_units pu
 WHERE pu.community_id = $1 AND pu.pool_id = $2 AND pu.unit_id = $3
RETURNING id
"""

SELECT_OVERFLOWS = """
SELECT u.code AS unit_code, o.account_id
  FROM unit_overflow o JOIN units u ON u.community_id = o.community_id AND u.id = o.unit_id
 WHERE o.community_id = $1
"""
UPSERT_OVERFLOW = """
INSERT INTO unit_overflow (community_id, unit_id, pool_id, account_id)
SELECT pu.community_id, pu.unit_id, pu.pool_id, pu.account_id FROM pool_units pu
 WHERE pu.community_id = $1 AND pu.unit_id = $2 AND pu.pool_id = $3
ON CONFLICT (community_id, unit_id) DO UPDATE
   SET pool_id = EXCLUDED.pool_id, account_id = EXCLUDED.account_id, updated_at = now()
"""
DELETE_OVERFLOW = "DELETE FROM unit_overflow WHERE community_id = $1 AND unit_id = $2"
