-- Euro-backed local currency. An exchange office (an organization of the
-- community) receives euros and issues the same amount of local currency from
-- the community's issuance account; a business reconverts local currency to
-- euros, less a fee that the association keeps. The euro reserve is tracked
-- beside the ledger, in the same transactions, so that at every commit:
--
--     currency in circulation (minus the issuance account's balance)
--       = euros in the reserve + fees recorded (euros the association took out
--         of the reserve against the fee it kept in local currency)
--
-- `timebank check` verifies it; amounts are in the unit's smallest step (cents).

CREATE TABLE currency_reserves (
    community_id     uuid        NOT NULL,
    unit_id          uuid        NOT NULL,
    -- Where issued currency comes from and returns to (its balance is minus the
    -- circulation), and where reconversion fees go.
    issuance_account uuid        NOT NULL,
    fee_account      uuid        NOT NULL,
    reconversion_fee_bps integer NOT NULL CHECK (reconversion_fee_bps BETWEEN 0 AND 10000),
    reserve          bigint      NOT NULL DEFAULT 0 CHECK (reserve >= 0),
    fees             bigint      NOT NULL DEFAULT 0 CHECK (fees >= 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, unit_id),
    UNIQUE (community_id, issuance_account),
    FOREIGN KEY (community_id, unit_id) REFERENCES units (community_id, id),
    FOREIGN KEY (community_id, issuance_account) REFERENCES accounts (community_id, id),
    FOREIGN KEY (community_id, fee_account) REFERENCES accounts (community_id, id),
    CHECK (issuance_account <> fee_account)
);

-- The organizations that may issue the currency against euros received.
CREATE TABLE exchange_offices (
    community_id    uuid        NOT NULL,
    unit_id         uuid        NOT NULL,
    organization_id uuid        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, unit_id, organization_id),
    FOREIGN KEY (community_id, unit_id) REFERENCES currency_reserves (community_id, unit_id),
    FOREIGN KEY (community_id, organization_id) REFERENCES organizations (community_id, party_id)
);

-- Every euro movement of the reserve, with the ledger transaction it goes with.
CREATE TABLE reserve_movements (
    community_id   uuid        NOT NULL,
    transaction_id uuid        NOT NULL,
    unit_id        uuid        NOT NULL,
    kind           text        NOT NULL CHECK (kind IN ('issuance', 'reconversion')),
    -- Euros received (issuance) or paid out to the business (reconversion).
    euros          bigint      NOT NULL CHECK (euros >= 0),
    -- Euros the association took for the fee (reconversion).
    fee            bigint      NOT NULL DEFAULT 0 CHECK (fee >= 0),
    -- The exchange office (issuance) or business (reconversion).
    counterpart    uuid        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, transaction_id),
    FOREIGN KEY (community_id, unit_id) REFERENCES currency_reserves (community_id, unit_id),
    CHECK (kind = 'reconversion' OR fee = 0)
);
CREATE TRIGGER reserve_movements_append_only BEFORE UPDATE OR DELETE ON reserve_movements
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();

CREATE FUNCTION log_reserve_movement() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM log_append(ARRAY[NEW.community_id], ARRAY[
        '{"counterpart":"' || NEW.counterpart::text
        || '","euros":"' || NEW.euros::text
        || '","fee":"' || NEW.fee::text
        || '","kind":"' || NEW.kind
        || '","transaction":"' || NEW.transaction_id::text
        || '","type":"reserve","unit":"' || NEW.unit_id::text
        || '","v":1}']);
    RETURN NULL;
END
$$;
CREATE TRIGGER reserve_movements_logged AFTER INSERT ON reserve_movements
    FOR EACH ROW EXECUTE FUNCTION log_reserve_movement();

CREATE FUNCTION log_currency_reserve_set() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.reconversion_fee_bps <> OLD.reconversion_fee_bps THEN
        PERFORM log_append(ARRAY[NEW.community_id], ARRAY[
            '{"fee_account":"' || NEW.fee_account::text
            || '","issuance_account":"' || NEW.issuance_account::text
            || '","reconversion_fee_bps":' || NEW.reconversion_fee_bps::text
            || ',"type":"currency_reserve","unit":"' || NEW.unit_id::text
            || '","v":1}']);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER currency_reserves_logged AFTER INSERT OR UPDATE ON currency_reserves
    FOR EACH ROW EXECUTE FUNCTION log_currency_reserve_set();
CREATE TRIGGER currency_reserves_no_delete BEFORE DELETE ON currency_reserves
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
