"""The ledger's invariants, checked against the database as it is. `timebank check`
and the tests run them; each names what is wrong, with the rows that show it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the offline verifier imports this module without a database driver
    from timebank.database import DatabaseConnection

# Each check is a query returning the rows that break it (none when it holds).
INVARIANT_QUERIES: dict[str, str] = {
    "balances_sum_to_zero_per_unit": """
        SELECT c.slug AS community, u.code AS unit, sum(a.balance) AS total
          FROM accounts a
          JOIN units u ON u.community_id = a.community_id AND u.id = a.unit_id
          JOIN communities c ON c.id = a.community_id
         GROUP BY c.slug, u.code
        HAVING sum(a.balance) <> 0
    """,
    "balance_equals_sum_of_postings": """
        SELECT a.id AS account_id, a.balance, coalesce(p.total, 0) AS postings_total,
               a.posting_count, coalesce(p.postings, 0) AS postings
          FROM accounts a
          LEFT JOIN (SELECT community_id, account_id, sum(amount) AS total, count(*) AS postings,
                            max(account_seq) AS last_seq
                       FROM postings GROUP BY community_id, account_id) p
            ON p.community_id = a.community_id AND p.account_id = a.id
         WHERE a.balance <> coalesce(p.total, 0)
            OR a.posting_count <> coalesce(p.postings, 0)
            OR a.posting_count <> coalesce(p.last_seq, 0)
    """,
    "running_balance_chain": """
        SELECT account_id, account_seq, balance_after, previous_balance, amount
          FROM (SELECT account_id, account_seq, balance_after, amount,
                       coalesce(lag(balance_after) OVER w, 0) AS previous_balance,
                       coalesce(lag(posted_at) OVER w, posted_at) AS previous_posted_at,
                       posted_at
                  FROM postings
                WINDOW w AS (PARTITION BY community_id, account_id ORDER BY account_seq)) x
         WHERE balance_after <> previous_balance + amount OR posted_at < previous_posted_at
         LIMIT 20
    """,
    "balances_within_limits": """
        SELECT a.id AS account_id, a.balance, a.min_balance, a.max_balance,
               coalesce(h.debits, 0) AS pending_debits, coalesce(h.credits, 0) AS pending_credits
          FROM accounts a
          LEFT JOIN (SELECT community_id, account_id,
                            sum(-amount) FILTER (WHERE amount < 0) AS debits,
                            sum(amount) FILTER (WHERE amount > 0) AS credits
                       FROM holds WHERE expires_at > clock_timestamp()
                      GROUP BY community_id, account_id) h
            ON h.community_id = a.community_id AND h.account_id = a.id
         WHERE a.balance - coalesce(h.debits, 0) < a.min_balance
            OR a.balance + coalesce(h.credits, 0) > a.max_balance
    """,
    "posted_transactions_balance_per_unit": """
        SELECT p.transaction_id, u.code AS unit, sum(p.amount) AS total
          FROM postings p
          JOIN accounts a ON a.community_id = p.community_id AND a.id = p.account_id
          JOIN units u ON u.community_id = a.community_id AND u.id = a.unit_id
         GROUP BY p.transaction_id, u.code
        HAVING sum(p.amount) <> 0
         LIMIT 20
    """,
    "posted_transactions_have_their_postings": """
        SELECT t.id AS transaction_id, t.state
          FROM transactions t
          FULL JOIN (SELECT community_id, transaction_id,
                            array_agg(account_id ORDER BY account_id, amount) AS accounts,
                            array_agg(amount::bigint ORDER BY account_id, amount) AS amounts
                       FROM postings GROUP BY community_id, transaction_id) p
            ON p.community_id = t.community_id AND p.transaction_id = t.id
          LEFT JOIN LATERAL (
              SELECT array_agg(l.account_id ORDER BY l.account_id, l.amount) AS accounts,
                     array_agg(l.amount ORDER BY l.account_id, l.amount) AS amounts
                FROM unnest(t.leg_accounts, t.leg_amounts) AS l(account_id, amount)) legs ON true
         WHERE (t.state = 'posted') IS DISTINCT FROM (p.transaction_id IS NOT NULL)
            OR (t.state = 'posted' AND (legs.accounts, legs.amounts)
                                       IS DISTINCT FROM (p.accounts, p.amounts))
         LIMIT 20
    """,
    "transaction_legs_balance_per_unit": """
        SELECT t.id AS transaction_id, u.code AS unit, sum(l.amount) AS total
          FROM transactions t
         CROSS JOIN LATERAL unnest(t.leg_accounts, t.leg_amounts) AS l(account_id, amount)
          LEFT JOIN accounts a ON a.community_id = t.community_id AND a.id = l.account_id
          LEFT JOIN units u ON u.community_id = a.community_id AND u.id = a.unit_id
         GROUP BY t.community_id, t.id, u.code
        HAVING sum(l.amount) <> 0 OR u.code IS NULL
         LIMIT 20
    """,
    "journal_references_exist": """
        SELECT 'postings' AS source, p.transaction_id, p.account_id
          FROM postings p
         WHERE NOT EXISTS (SELECT 1 FROM accounts a
                            WHERE a.community_id = p.community_id AND a.id = p.account_id)
            OR NOT EXISTS (SELECT 1 FROM transactions t
                            WHERE t.community_id = p.community_id AND t.id = p.transaction_id)
        UNION ALL
        SELECT 'holds', h.transaction_id, h.account_id
          FROM holds h
         WHERE NOT EXISTS (SELECT 1 FROM accounts a
                            WHERE a.community_id = h.community_id AND a.id = h.account_id)
            OR NOT EXISTS (SELECT 1 FROM transactions t
                            WHERE t.community_id = h.community_id AND t.id = h.transaction_id)
        UNION ALL
        SELECT 'transactions', t.id, NULL
          FROM transactions t
         WHERE NOT EXISTS (SELECT 1 FROM communities c WHERE c.id = t.community_id)
         LIMIT 20
    """,
    "holds_only_for_pending_transactions": """
        SELECT h.transaction_id, t.state
          FROM holds h
          JOIN transactions t ON t.community_id = h.community_id AND t.id = h.transaction_id
         WHERE t.state <> 'pending'
         LIMIT 20
    """,
    "reversals_mirror_their_original": """
        SELECT r.id AS reversal_id, r.reverses_id
          FROM transactions r
          JOIN transactions o ON o.community_id = r.community_id AND o.id = r.reverses_id
         WHERE r.leg_accounts IS DISTINCT FROM o.leg_accounts
            OR r.leg_amounts IS DISTINCT FROM
               (SELECT array_agg(-amount ORDER BY ord)
                  FROM unnest(o.leg_amounts) WITH ORDINALITY AS l(amount, ord))
            OR o.state <> 'posted'
         LIMIT 20
    """,
}


@dataclass(frozen=True, slots=True)
class InvariantViolation:
    invariant: str
    rows: list[dict[str, object]]

    def describe(self) -> str:
        shown = "; ".join(
            ", ".join(f"{key}={value}" for key, value in row.items()) for row in self.rows[:5]
        )
        more = f" (and {len(self.rows) - 5} more)" if len(self.rows) > 5 else ""
        return f"{self.invariant}: {shown}{more}"


async def check_invariants(
    connection: DatabaseConnection, queries: Mapping[str, str] = INVARIANT_QUERIES
) -> list[InvariantViolation]:
    """Every invariant (the ledger's, unless others are given), judged on one
    consistent snapshot. Empty when all hold."""
    violations = []
    async with connection.transaction(isolation="repeatable_read", readonly=True):
        for name, query in queries.items():
            rows = await connection.fetch(query)
            if rows:
                violations.append(InvariantViolation(name, [dict(row) for row in rows]))
    return violations
