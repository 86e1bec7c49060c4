-- A member's dues by index. The dues of a member (GET /v1/communities/{slug}/dues
-- for their own accounts) read every charge of the community, joined with its
-- account, to keep those of the member's accounts: fees and recurring donations
-- add one charge per account and period, so a community of 20,000 members charged
-- monthly reads 240,000 rows a year later (40 ms at 120,000, measured). The charges
-- of an account, newest first, are now found by this index, from the member's
-- accounts (found by owner through the accounts' unique constraint); the statement
-- is one of its own (timebank/policies/queries.py, SELECT_DUES_OF_OWNERS).
-- tests/integration/test_query_plans.py counts the index entries read: 12,000
-- without this index on PostgreSQL 15, the member's 12 with it. PostgreSQL 18
-- reads 12 either way: its skip scan steps through the primary key's schedules and
-- periods (one descent for each).
CREATE INDEX policy_charges_by_account
    ON policy_charges (community_id, account_id, period_start DESC);
