"""The ledger's SQL, as named constants. Writes are calls to the functions of
`sql/0002_ledger_functions.sql`; values are always parameters."""

from collections.abc import Sequence

POST_ONE = "SELECT * FROM ledger_post_one($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
POST_ATOMIC = (
    "SELECT * FROM ledger_post_atomic($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
)
# The same, its results grouped by all but the index: what one call writes shares
# its times, so a batch's results come as one row or a few instead of one per
# transaction (1,000 rows took about 1.4 ms to send and decode).
_GROUPED_RESULTS = """
SELECT array_agg(r.tx_index) AS tx_indexes, r.outcome, r.state, r.created_at, r.resolved_at,
       r.expires_at
  FROM {source} AS r
 GROUP BY r.outcome, r.state, r.created_at, r.resolved_at, r.expires_at
"""
POST_ATOMIC_GROUPED = _GROUPED_RESULTS.format(
    source="ledger_post_atomic($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
)
# The same for a batch whose transactions share all but their ids, fingerprints
# and postings (kind, memo, category, unit, pending, lifetime; none reverses): the
# shared values are sent once and spread into arrays by the server. Encoding 7,000
# array elements fewer took a batch of 1,000 from about 42 to 40 ms (asyncpg checks
# every element it encodes).
POST_ATOMIC_UNIFORM_GROUPED = _GROUPED_RESULTS.format(
    source="""(SELECT ARRAY[cardinality($2::uuid[])] AS n) AS size,
       ledger_post_atomic($1, $2, array_fill($3::text, size.n), array_fill($4::text, size.n),
                          array_fill($5::text, size.n), $6, array_fill($7::text, size.n),
                          array_fill($8::boolean, size.n), array_fill($9::integer, size.n),
                          array_fill(NULL::uuid, size.n), $10, $11, $12)"""
)
POST_EACH = "SELECT * FROM ledger_post_each($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
POST_SIGNED_EACH = (
    "SELECT * FROM ledger_post_signed_each("
    "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
)
REVERSE = "SELECT * FROM ledger_reverse($1, $2, $3, $4, $5)"
CONFIRM = "SELECT * FROM ledger_confirm($1, $2)"
VOID = "SELECT * FROM ledger_void($1, $2)"
EXPIRE_OVERDUE = "SELECT ledger_expire_overdue($1)"
SET_LIMITS = "SELECT ledger_set_limits($1, $2, $3, $4)"
SET_STATUS = "SELECT ledger_set_status($1, $2, $3)"

INSERT_COMMUNITY = """
INSERT INTO communities (slug, name) VALUES ($1, $2)
RETURNING id, slug, name, created_at
"""
INSERT_COMMUNITY_PARTY = """
INSERT INTO parties (community_id, kind, display_name) VALUES ($1, 'community', $2)
"""
SELECT_COMMUNITY_BY_SLUG = "SELECT id, slug, name, created_at FROM communities WHERE slug = $1"
SELECT_COMMUNITY_BY_ID = "SELECT id, slug, name, created_at FROM communities WHERE id = $1"
SELECT_COMMUNITY_PARTY = """
SELECT id, community_id, kind, display_name FROM parties
 WHERE community_id = $1 AND kind = 'community'
"""

INSERT_UNIT = """
INSERT INTO units (community_id, code, name, kind, decimals,
                   default_min_balance, default_max_balance)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING id, community_id, code, name, kind, decimals, default_min_balance, default_max_balance
"""
SELECT_UNITS = """
SELECT id, community_id, code, name, kind, decimals, default_min_balance, default_max_balance
  FROM units WHERE community_id = $1 ORDER BY kind DESC, code
"""

INSERT_PARTY = """
INSERT INTO parties (community_id, kind, display_name) VALUES ($1, $2, $3)
RETURNING id, community_id, kind, display_name
"""

# Opens an account with the default limits of its unit and its owner's kind
# unless given; no row when the unit or the owner is not in the community.
INSERT_ACCOUNT = """
INSERT INTO accounts (community_id, unit_id, owner_id, purpose, min_balance, max_balance)
SELECT $1, $2, $3, $4, coalesce($5, d.min_balance), coalesce($6, d.max_balance)
  FROM account_default_limits($1, $2, $3) d
RETURNING id
"""

# The live holds `h` of the account `a` of a query, written inline: the set-returning
# ledger_active_holds, called with clock_timestamp() (volatile), is not inlined by
# the planner and cost a function scan on every read of an account.
LIVE_HOLDS_OF_A = """
  LEFT JOIN LATERAL (
      SELECT (sum(-h.amount) FILTER (WHERE h.amount < 0))::bigint AS pending_debits,
             (sum(h.amount) FILTER (WHERE h.amount > 0))::bigint AS pending_credits
        FROM holds h
       WHERE h.community_id = a.community_id AND h.account_id = a.id
         AND h.expires_at > clock_timestamp()) h ON true"""

# An account as the store reads it: `a` the account, `u` its unit, `h` its live holds.
ACCOUNT_COLUMNS = """
SELECT a.id, a.community_id, u.code AS unit_code, a.owner_id, a.purpose, a.status,
       a.min_balance, a.max_balance, a.balance, a.posting_count,
       coalesce(h.pending_debits, 0) AS pending_debits,
       coalesce(h.pending_credits, 0) AS pending_credits
  FROM accounts a
  JOIN units u ON u.community_id = a.community_id AND u.id = a.unit_id"""

SELECT_ACCOUNT = (
    ACCOUNT_COLUMNS
    + LIVE_HOLDS_OF_A
    + """
 WHERE a.id = $1
"""
)

# Members' and organizations' open accounts within a share ($2, per 10,000) of a
# limit: what they may still spend (with reservations) against what they may owe,
# or what they may still receive against their ceiling. One pass over the
# community's accounts and live holds: a report, not a hot path.
SELECT_NEAR_LIMITS = (
    """
WITH held AS (
    SELECT h.account_id,
           coalesce(sum(-h.amount) FILTER (WHERE h.amount < 0), 0)::bigint AS pending_debits,
           coalesce(sum(h.amount) FILTER (WHERE h.amount > 0), 0)::bigint AS pending_credits
      FROM holds h
     WHERE h.community_id = $1 AND h.expires_at > clock_timestamp()
     GROUP BY h.account_id)"""
    + ACCOUNT_COLUMNS
    + """
  JOIN parties p ON p.community_id = a.community_id AND p.id = a.owner_id
  LEFT JOIN held h ON h.account_id = a.id
 WHERE a.community_id = $1
   AND a.status <> 'closed'
   AND p.kind IN ('member', 'organization')
   AND ((a.min_balance < 0
         AND (a.balance - coalesce(h.pending_debits, 0) - a.min_balance)::numeric * 10000
             <= (-a.min_balance)::numeric * $2)
        OR (a.max_balance > 0
            AND (a.max_balance - a.balance - coalesce(h.pending_credits, 0))::numeric * 10000
                <= a.max_balance::numeric * $2))
 ORDER BY a.owner_id, u.code, a.id
 LIMIT $3
"""
)

# Members whose latest posting (on any of their accounts) or, without one, whose
# joining is before $2: oldest first, never-active first. An account's latest
# posting is the one numbered by its posting_count (primary key lookups).
SELECT_INACTIVE_MEMBERS = """
SELECT m.id, m.display_name, m.created_at, m.last_posted_at
  FROM (SELECT p.id, p.display_name, p.created_at,
               (SELECT max(s.posted_at)
                  FROM accounts a
                  JOIN postings s ON s.community_id = a.community_id AND s.account_id = a.id
                                 AND s.account_seq = a.posting_count
                 WHERE a.owner_id = p.id AND a.community_id = p.community_id) AS last_posted_at
          FROM parties p
         WHERE p.community_id = $1 AND p.kind = 'member') m
 WHERE coalesce(m.last_posted_at, m.created_at) < $2
 ORDER BY m.last_posted_at NULLS FIRST, m.created_at, m.id
 LIMIT $3
"""

# A transaction, its legs as asked and, once posted, the balance each left.
SELECT_TRANSACTION = """
SELECT t.id, t.community_id, t.kind, t.memo, t.category, t.reverses_id,
       t.created_at, t.expires_at, t.leg_accounts, t.leg_amounts,
       -- A pending transaction past its expiry is expired, swept or not.
       CASE WHEN t.state = 'pending' AND t.expires_at <= clock_timestamp()
            THEN 'expired' ELSE t.state END AS state,
       CASE WHEN t.state = 'pending' AND t.expires_at <= clock_timestamp()
            THEN t.expires_at ELSE t.resolved_at END AS resolved_at,
       (SELECT r.id FROM transactions r
         WHERE r.community_id = t.community_id AND r.reverses_id = t.id) AS reversed_by_id,
       (SELECT array_agg(p.balance_after ORDER BY p.ord)
          FROM ledger_transaction_postings(t.community_id, t.id)
               WITH ORDINALITY AS p(account_id, amount, balance_after, ord)) AS balances_after
  FROM transactions t
 WHERE t.community_id = $1 AND t.id = $2
"""

# The account as it stands and a page of its postings, newest first, in one round
# trip: one row, the account's columns and the page as one array per column (NULL
# arrays when the page is empty); no row for an unknown account. Keyset on the
# account's posting sequence, never OFFSET.
SELECT_STATEMENT = (
    """
SELECT s.*, p.seqs, p.transaction_ids, p.kinds, p.memos, p.categories, p.amounts,
       p.balances_after, p.posted_ats
  FROM ("""
    + ACCOUNT_COLUMNS
    + LIVE_HOLDS_OF_A
    + """
         WHERE a.community_id = $1 AND a.id = $2) s
  CROSS JOIN LATERAL (
      SELECT array_agg(p.account_seq ORDER BY p.account_seq DESC) AS seqs,
             array_agg(p.transaction_id ORDER BY p.account_seq DESC) AS transaction_ids,
             array_agg(t.kind::text ORDER BY p.account_seq DESC) AS kinds,
             array_agg(t.memo ORDER BY p.account_seq DESC) AS memos,
             array_agg(t.category ORDER BY p.account_seq DESC) AS categories,
             array_agg(p.amount ORDER BY p.account_seq DESC) AS amounts,
             array_agg(p.balance_after ORDER BY p.account_seq DESC) AS balances_after,
             array_agg(p.posted_at ORDER BY p.account_seq DESC) AS posted_ats
        FROM (SELECT p.account_seq, p.transaction_id, p.amount, p.balance_after, p.posted_at
                FROM postings p
               WHERE p.community_id = s.community_id AND p.account_id = s.id
                 AND p.account_seq < $3
                 -- A period as bounds of the sequence (an account's postings are
                 -- timed in sequence order: found by bisection), so that the index
                 -- reads the period, not the account's history back to it.
                 AND p.account_seq > CASE WHEN $4::timestamptz IS NULL THEN 0
                       ELSE ledger_last_seq_at(s.community_id, s.id, $4, false) END
                 AND p.account_seq <= CASE WHEN $5::timestamptz IS NULL THEN s.posting_count
                       ELSE ledger_last_seq_at(s.community_id, s.id, $5, false) END
                 AND ($4::timestamptz IS NULL OR p.posted_at >= $4)
                 AND ($5::timestamptz IS NULL OR p.posted_at < $5)
               ORDER BY p.account_seq DESC
               LIMIT $6) p
        JOIN transactions t ON t.community_id = s.community_id AND t.id = p.transaction_id) p
"""
)

SELECT_BALANCE_AT = "SELECT ledger_balance_at($1, $2, $3)"

# The accounts of some owners as they stand, with their reservations.
SELECT_ACCOUNTS_OF_OWNERS = (
    ACCOUNT_COLUMNS
    + LIVE_HOLDS_OF_A
    + """
 WHERE a.community_id = $1 AND a.owner_id = ANY ($2::uuid[])
 ORDER BY a.owner_id, u.kind DESC, u.code, a.purpose
"""
)

# The journal, newest first, after a keyset (created_at, id); every filter optional.
# A pending transaction past its expiry shows (and filters) as expired. Each
# combination of filters is a statement of its own (journal_query): with one text
# and `($n IS NULL OR ...)` conditions, the plan cached after a few calls filtered
# by account was reused for unfiltered pages and read the whole community.
JOURNAL_COLUMNS = """
SELECT t.id, t.community_id, t.kind, t.memo, t.category, t.reverses_id,
       t.created_at, t.expires_at, t.leg_accounts, t.leg_amounts,
       s.state, CASE WHEN s.state = 'expired' THEN coalesce(t.resolved_at, t.expires_at)
                     ELSE t.resolved_at END AS resolved_at,
       (SELECT r.id FROM transactions r
         WHERE r.community_id = t.community_id AND r.reverses_id = t.id) AS reversed_by_id,
       NULL::bigint[] AS balances_after
"""
JOURNAL_STATE = """
 CROSS JOIN LATERAL (
       SELECT CASE WHEN t.state = 'pending' AND t.expires_at <= clock_timestamp()
                   THEN 'expired' ELSE t.state::text END AS state) s
"""
# An account's pending transactions, found by its reservations (every leg of a
# pending transaction holds one until it is resolved): not by reading every
# transaction of the community for the few that name the account.
JOURNAL_PENDING_OF_ACCOUNT = (
    JOURNAL_COLUMNS
    + """
  FROM holds h
  JOIN transactions t ON t.community_id = h.community_id AND t.id = h.transaction_id
"""
    + JOURNAL_STATE
    + """
 WHERE h.community_id = $1 AND h.account_id = $2
   AND t.state = 'pending' AND t.expires_at > clock_timestamp()
"""
)
JOURNAL_ANY = (
    JOURNAL_COLUMNS + "\n  FROM transactions t" + JOURNAL_STATE + " WHERE t.community_id = $1\n"
)
JOURNAL_FILTERS = {
    "account": "$ = ANY (t.leg_accounts)",
    "kind": "t.kind::text = $",
    "state": "s.state = $",
    "created_from": "t.created_at >= $",
    "created_before": "t.created_at < $",
}
JOURNAL_PAGE = """   AND (t.created_at, t.id) < (${}, ${})
 ORDER BY t.created_at DESC, t.id DESC
 LIMIT ${}
"""


def journal_query(filters: Sequence[str], *, pending_of_account: bool = False) -> str:
    """The journal's statement: the community ($1), with pending_of_account the
    account's pending transactions ($2: the account), then these filters (names of
    JOURNAL_FILTERS) in their order, the keyset and the limit, numbered on."""
    assert all(name in JOURNAL_FILTERS for name in filters)
    if pending_of_account:
        assert "account" not in filters
        assert "state" not in filters
    text, number = (JOURNAL_PENDING_OF_ACCOUNT, 3) if pending_of_account else (JOURNAL_ANY, 2)
    for name in filters:
        text += "   AND " + JOURNAL_FILTERS[name].replace("$", f"${number}") + "\n"
        number += 1
    return text + JOURNAL_PAGE.format(number, number + 1, number + 2)


# Per unit: how many accounts, the sum of their balances (zero in a sound ledger),
# and the totals on each side.
SELECT_TRIAL_BALANCE = """
SELECT u.code, u.kind, count(a.id) AS account_count,
       coalesce(sum(a.balance), 0)::bigint AS sum_of_balances,
       coalesce(sum(a.balance) FILTER (WHERE a.balance > 0), 0)::bigint AS total_positive,
       coalesce(sum(a.balance) FILTER (WHERE a.balance < 0), 0)::bigint AS total_negative,
       (SELECT count(DISTINCT h.transaction_id) FROM holds h
          JOIN accounts ha ON ha.community_id = h.community_id AND ha.id = h.account_id
         WHERE h.community_id = u.community_id AND ha.unit_id = u.id
           AND h.expires_at > clock_timestamp()) AS pending_transactions
  FROM units u
  LEFT JOIN accounts a ON a.community_id = u.community_id AND a.unit_id = u.id
 WHERE u.community_id = $1
 GROUP BY u.community_id, u.id, u.code, u.kind
 ORDER BY u.kind DESC, u.code
"""

# A resolution's signature, handed to its log entry (the only copy kept): raises
# key_revoked if the key is not live.
STAGE_RESOLUTION_SIGNATURE = "SELECT ledger_stage_resolution_signature($1, $2, $3, $4, $5, $6)"
# A transaction's log entries (its writing's and its resolution's), in log order:
# its signatures are there, and its receipts. Found by the times the transaction was
# written and resolved (0031); the entries written before 0031, by its id alone.
SELECT_TRANSACTION_LOG_ENTRIES = """
SELECT e.leaf_index, e.entry
  FROM transactions t
  JOIN log_entries e
    ON e.community_id = t.community_id
   AND e.written_at = ANY (ARRAY[t.created_at, t.resolved_at])
   AND e.transaction_id = t.id
 WHERE t.community_id = $1 AND t.id = $2
UNION ALL
SELECT e.leaf_index, e.entry FROM log_entries e
 WHERE e.community_id = $1 AND e.transaction_id = $2 AND e.written_at IS NULL
 ORDER BY 1
"""

# The amount a payee proposed, kept once: a retry of the proposal writes nothing.
INSERT_PROPOSAL_AMOUNT = """
INSERT INTO transfer_proposals (community_id, transaction_id, amount) VALUES ($1, $2, $3)
ON CONFLICT (community_id, transaction_id) DO NOTHING
"""
SELECT_PROPOSAL_AMOUNT = """
SELECT amount FROM transfer_proposals WHERE community_id = $1 AND transaction_id = $2
"""

# Flows of posted transactions by category and kind, per unit, over a period: how
# many and how much moved (the sum of each transaction's credits).
SELECT_FLOWS = """
SELECT t.category, t.kind::text AS kind, u.code AS unit, count(*) AS transactions,
       sum((SELECT sum(m) FROM unnest(t.leg_amounts) AS m WHERE m > 0))::bigint AS total
  FROM transactions t
  JOIN accounts a ON a.community_id = t.community_id AND a.id = t.leg_accounts[1]
  JOIN units u ON u.community_id = a.community_id AND u.id = a.unit_id
 WHERE t.community_id = $1 AND t.state = 'posted'
   AND ($2::timestamptz IS NULL OR t.created_at >= $2)
   AND ($3::timestamptz IS NULL OR t.created_at < $3)
   AND ($4::text IS NULL OR u.code = $4)
 GROUP BY t.category, t.kind, u.code
 ORDER BY u.code, total DESC, t.category NULLS LAST, t.kind
"""

# Flows of posted transactions per unit and period (a week from Monday, or a
# month, in UTC): the last $3 periods up to the current one, empty ones as zero,
# so that a chart has every point. $2 is 'week' or 'month'.
SELECT_FLOWS_OVER_TIME = """
WITH periods AS (
    SELECT generate_series(
               date_trunc($2, now(), 'UTC') - ($3 - 1) * ('1 ' || $2)::interval,
               date_trunc($2, now(), 'UTC'),
               ('1 ' || $2)::interval) AS starts_at
), moved AS (
    SELECT u.id AS unit_id, date_trunc($2, t.created_at, 'UTC') AS starts_at,
           count(*) AS transactions,
           sum((SELECT sum(m) FROM unnest(t.leg_amounts) AS m WHERE m > 0))::bigint AS total
      FROM transactions t
      JOIN accounts a ON a.community_id = t.community_id AND a.id = t.leg_accounts[1]
      JOIN units u ON u.community_id = a.community_id AND u.id = a.unit_id
     WHERE t.community_id = $1 AND t.state = 'posted'
       AND t.created_at >= (SELECT min(starts_at) FROM periods)
       AND ($4::text IS NULL OR u.code = $4)
     GROUP BY u.id, date_trunc($2, t.created_at, 'UTC')
)
SELECT u.code AS unit, p.starts_at, coalesce(m.transactions, 0) AS transactions,
       coalesce(m.total, 0)::bigint AS total
  FROM units u
 CROSS JOIN periods p
  LEFT JOIN moved m ON m.unit_id = u.id AND m.starts_at = p.starts_at
 WHERE u.community_id = $1 AND ($4::text IS NULL OR u.code = $4)
 ORDER BY u.code, p.starts_at
"""

# The journal for export, oldest first: one row per leg, with the unit.
SELECT_JOURNAL_LEGS = """
SELECT t.id, t.created_at, t.resolved_at, t.kind::text AS kind,
       CASE WHEN t.state = 'pending' AND t.expires_at <= clock_timestamp()
            THEN 'expired' ELSE t.state::text END AS state,
       t.category, t.memo, t.reverses_id, l.account, l.amount, u.code AS unit
  FROM transactions t
 CROSS JOIN LATERAL unnest(t.leg_accounts, t.leg_amounts) WITH ORDINALITY AS l(account, amount, i)
  JOIN accounts a ON a.community_id = t.community_id AND a.id = l.account
  JOIN units u ON u.community_id = a.community_id AND u.id = a.unit_id
 WHERE t.community_id = $1
   AND ($2::timestamptz IS NULL OR t.created_at >= $2)
   AND ($3::timestamptz IS NULL OR t.created_at < $3)
 ORDER BY t.created_at, t.id, l.i
"""
