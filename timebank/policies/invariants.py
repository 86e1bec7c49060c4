"""The community economics' invariants, beside the ledger's (timebank/ledger/
invariants.py): `timebank check` runs both on one snapshot."""

from __future__ import annotations

from timebank.ledger.invariants import INVARIANT_QUERIES

ECONOMY_INVARIANT_QUERIES: dict[str, str] = {
    # Euro-backed currency: what circulates is backed by euros held or taken as fees.
    "currency_in_circulation_equals_reserve_plus_fees": """
        SELECT c.slug AS community, u.code AS unit, -a.balance AS circulation,
               r.reserve, r.fees
          FROM currency_reserves r
          JOIN accounts a ON a.community_id = r.community_id AND a.id = r.issuance_account
          JOIN units u ON u.community_id = r.community_id AND u.id = r.unit_id
          JOIN communities c ON c.id = r.community_id
         WHERE -a.balance <> r.reserve + r.fees
    """,
    "reserve_equals_its_movements": """
        SELECT r.community_id, r.unit_id, r.reserve, r.fees, m.reserve AS moved,
               m.fees AS moved_fees
          FROM currency_reserves r
          LEFT JOIN LATERAL (
              SELECT coalesce(sum(CASE WHEN kind = 'issuance' THEN euros
                                       ELSE -(euros + fee) END), 0) AS reserve,
                     coalesce(sum(fee), 0) AS fees
                FROM reserve_movements mv
               WHERE mv.community_id = r.community_id AND mv.unit_id = r.unit_id) m ON true
         WHERE r.reserve <> m.reserve OR r.fees <> m.fees
    """,
    # Pools: a paid request has its grant, posted, for its amount.
    "paid_requests_have_their_grant": """
        SELECT q.id AS request_id, q.transaction_id, t.state
          FROM pool_requests q
          LEFT JOIN pool_grants g ON g.community_id = q.community_id
                                 AND g.transaction_id = q.transaction_id
                                 AND g.request_id = q.id AND g.amount = q.amount
          LEFT JOIN transactions t ON t.community_id = q.community_id AND t.id = q.transaction_id
         WHERE q.state = 'paid' AND (g.transaction_id IS NULL OR t.state IS DISTINCT FROM 'posted')
         LIMIT 20
    """,
    # Periodic policies: a charge marked paid has its posted transaction.
    "paid_charges_have_their_transaction": """
        SELECT c.schedule_id, c.period_start, c.account_id, t.state
          FROM policy_charges c
          LEFT JOIN transactions t ON t.community_id = c.community_id AND t.id = c.transaction_id
         WHERE c.state = 'paid' AND t.state IS DISTINCT FROM 'posted'
         LIMIT 20
    """,
}

# What `timebank check` verifies, besides the log.
ALL_INVARIANT_QUERIES: dict[str, str] = {**INVARIANT_QUERIES, **ECONOMY_INVARIANT_QUERIES}
