-- Overflow: where a community chooses, a payment that would take the payee above
-- their maximum is not refused; what is above goes to a pool instead, in the same
-- transaction (at most one overflow pool per unit).

CREATE TABLE unit_overflow (
    community_id uuid        NOT NULL,
    unit_id      uuid        NOT NULL,
    pool_id      uuid        NOT NULL,
    account_id   uuid        NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, unit_id),
    FOREIGN KEY (community_id, pool_id, unit_id) REFERENCES pool_units (community_id, pool_id, unit_id)
);

CREATE FUNCTION log_overflow_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_row unit_overflow;
BEGIN
    v_row := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    PERFORM log_append(ARRAY[v_row.community_id], ARRAY[
        '{"account":' || CASE WHEN TG_OP = 'DELETE' THEN 'null'
                              ELSE '"' || NEW.account_id::text || '"' END
        || ',"type":"overflow","unit":"' || v_row.unit_id::text
        || '","v":1}']);
    RETURN NULL;
END
$$;
CREATE TRIGGER unit_overflow_logged AFTER INSERT OR UPDATE OR DELETE ON unit_overflow
    FOR EACH ROW EXECUTE FUNCTION log_overflow_changed();
CREATE TRIGGER unit_overflow_webhooks_inserted AFTER INSERT ON unit_overflow
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION webhook_policy_changed('overflow');
CREATE TRIGGER unit_overflow_webhooks_updated AFTER UPDATE ON unit_overflow
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION webhook_policy_changed('overflow');
