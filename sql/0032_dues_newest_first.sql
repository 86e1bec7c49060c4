-- The admins' list of a community's dues (newest first, the first 500) by index.
-- It read and sorted every charge of the community: fees and recurring donations
-- add one charge per account and period (20,000 members charged monthly: 240,000
-- a year). This index gives them in the list's order, so a page reads its 500.
-- Charges are written once per account and period, by the scheduled runs: one more
-- index entry each costs those runs little. tests/integration/test_query_plans.py
-- counts the rows and index entries read (12,000 without the index).
CREATE INDEX policy_charges_newest_first
    ON policy_charges (community_id, period_start DESC, account_id);
