-- Welcome grants: a schedule of kind 'welcome_grant' pays, from a source account
-- (a pool's), a fixed amount once to each member who joined, at the first run
-- after they did; one that cannot be paid yet stays due and is tried again.

ALTER TABLE policy_schedules DROP CONSTRAINT policy_schedules_kind_check;
ALTER TABLE policy_schedules ADD CONSTRAINT policy_schedules_kind_check
    CHECK (kind IN ('demurrage', 'hours_expiry', 'membership_fee', 'recurring_donation',
                    'credit_growth', 'welcome_grant'));
ALTER TABLE policy_schedules DROP CONSTRAINT policy_schedules_target_check;
ALTER TABLE policy_schedules ADD CONSTRAINT policy_schedules_target_check
    CHECK ((kind IN ('credit_growth', 'welcome_grant')) = (target_account IS NULL));
-- The fields check of 0015 admits a welcome grant as it does a donation (amount
-- and source, no rate, threshold or payer kind): its ELSE branch.
