-- Limits per kind of account, and webhook events for pools and policies.

-- Defaults per unit and per kind of owner (member, organization, pool): an
-- account opened without explicit limits takes its kind's, else the unit's.
CREATE TABLE unit_limit_defaults (
    community_id uuid               NOT NULL,
    unit_id      uuid               NOT NULL,
    party_kind   text               NOT NULL CHECK (party_kind IN ('member', 'organization', 'pool')),
    min_balance  ledger_min_balance NOT NULL,
    max_balance  ledger_max_balance NOT NULL,
    updated_at   timestamptz        NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, unit_id, party_kind),
    FOREIGN KEY (community_id, unit_id) REFERENCES units (community_id, id)
);

CREATE FUNCTION account_default_limits(p_community uuid, p_unit uuid, p_owner uuid)
RETURNS TABLE (min_balance bigint, max_balance bigint)
LANGUAGE sql STABLE AS $$
    SELECT coalesce(d.min_balance, u.default_min_balance),
           coalesce(d.max_balance, u.default_max_balance)
      FROM units u
      JOIN parties p ON p.community_id = u.community_id AND p.id = p_owner
      LEFT JOIN unit_limit_defaults d
             ON d.community_id = u.community_id AND d.unit_id = u.id AND d.party_kind = p.kind
     WHERE u.community_id = p_community AND u.id = p_unit;
$$;

CREATE FUNCTION log_limit_defaults_set() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM log_append(ARRAY[NEW.community_id], ARRAY[
        '{"kind":"' || NEW.party_kind
        || '","max_balance":"' || NEW.max_balance::text
        || '","min_balance":"' || NEW.min_balance::text
        || '","type":"limit_defaults","unit":"' || NEW.unit_id::text
        || '","v":1}']);
    RETURN NULL;
END
$$;
CREATE TRIGGER unit_limit_defaults_logged AFTER INSERT OR UPDATE ON unit_limit_defaults
    FOR EACH ROW EXECUTE FUNCTION log_limit_defaults_set();

-- Webhook events, written by the same statement as the change (see 0004).

CREATE FUNCTION webhook_pool_grants_paid() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM webhook_subscriptions WHERE deleted_at IS NULL) THEN
        PERFORM webhook_enqueue(coalesce(jsonb_agg(jsonb_build_object(
                    'community_id', n.community_id,
                    'type', 'pool.grant_paid',
                    'payload', jsonb_build_object(
                        'pool', n.pool_id, 'transaction', n.transaction_id,
                        'beneficiary', n.beneficiary_id, 'amount', n.amount,
                        'unit', (SELECT u.code FROM units u
                                  WHERE u.community_id = n.community_id AND u.id = n.unit_id),
                        'request', n.request_id, 'granted_by', n.granted_by,
                        'paid_at', n.paid_at)) ORDER BY n.paid_at, n.transaction_id),
                '[]'::jsonb))
          FROM new_rows n;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER pool_grants_webhooks AFTER INSERT ON pool_grants
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION webhook_pool_grants_paid();

CREATE FUNCTION webhook_pool_requests_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM webhook_subscriptions WHERE deleted_at IS NULL) THEN
        PERFORM webhook_enqueue(coalesce(jsonb_agg(jsonb_build_object(
                    'community_id', n.community_id,
                    'type', CASE WHEN n.state = 'open' THEN 'pool.request_opened'
                                 ELSE 'pool.request_resolved' END,
                    'payload', jsonb_build_object(
                        'id', n.id, 'pool', n.pool_id, 'beneficiary', n.beneficiary_id,
                        'amount', n.amount, 'state', n.state, 'transaction', n.transaction_id,
                        'created_at', n.created_at, 'resolved_at', n.resolved_at))
                    ORDER BY n.created_at, n.id),
                '[]'::jsonb))
          FROM new_rows n;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER pool_requests_webhooks_opened AFTER INSERT ON pool_requests
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION webhook_pool_requests_changed();
CREATE TRIGGER pool_requests_webhooks_resolved AFTER UPDATE ON pool_requests
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION webhook_pool_requests_changed();

-- One event shape for every policy: which one, its id and what it is now.
CREATE FUNCTION webhook_policy_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM webhook_subscriptions WHERE deleted_at IS NULL) THEN
        PERFORM webhook_enqueue(coalesce(jsonb_agg(jsonb_build_object(
                    'community_id', (to_jsonb(n) ->> 'community_id')::uuid,
                    'type', 'policy.changed',
                    'payload', jsonb_build_object('policy', TG_ARGV[0], 'now', to_jsonb(n)))),
                '[]'::jsonb))
          FROM new_rows n;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER levy_rules_webhooks_inserted AFTER INSERT ON levy_rules
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION webhook_policy_changed('levy');
CREATE TRIGGER levy_rules_webhooks_updated AFTER UPDATE ON levy_rules
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION webhook_policy_changed('levy');
CREATE TRIGGER policy_schedules_webhooks_inserted AFTER INSERT ON policy_schedules
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION webhook_policy_changed('schedule');
CREATE TRIGGER policy_schedules_webhooks_updated AFTER UPDATE ON policy_schedules
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION webhook_policy_changed('schedule');
CREATE TRIGGER community_policies_webhooks_inserted AFTER INSERT ON community_policies
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION webhook_policy_changed('signatures');
CREATE TRIGGER community_policies_webhooks_updated AFTER UPDATE ON community_policies
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION webhook_policy_changed('signatures');
CREATE TRIGGER currency_reserves_webhooks_inserted AFTER INSERT ON currency_reserves
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION webhook_policy_changed('currency');
CREATE TRIGGER unit_limit_defaults_webhooks_inserted AFTER INSERT ON unit_limit_defaults
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION webhook_policy_changed('limit_defaults');
CREATE TRIGGER unit_limit_defaults_webhooks_updated AFTER UPDATE ON unit_limit_defaults
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION webhook_policy_changed('limit_defaults');
