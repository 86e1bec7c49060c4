-- Solidarity pools and levies.
--
-- A pool is a party of kind 'pool' with a charter: its purpose, its managers and
-- how many of them must approve a request for help (k of n), its caps per unit,
-- who is eligible, and whether its donors are shown. Requests, each manager's
-- decision, every grant paid and every levy rule are rows here and entries of the
-- community's log, so an association can show that each grant was approved by
-- enough managers of the pool at that point of the log.
--
-- Every table is keyed by community first, like the ledger's.

CREATE TABLE pools (
    community_id       uuid        NOT NULL,
    -- The pool's party: its accounts are the party's accounts.
    id                 uuid        NOT NULL,
    purpose            text        NOT NULL CHECK (length(purpose) BETWEEN 1 AND 500),
    approvals_required smallint    NOT NULL CHECK (approvals_required BETWEEN 1 AND 20),
    -- The window over which the cap per beneficiary is counted, in days, rolling.
    period_days        smallint    NOT NULL CHECK (period_days BETWEEN 1 AND 366),
    -- Only members a referrer of the pool (a social worker) has named may be helped.
    requires_referral  boolean     NOT NULL,
    -- Whether the pool's statement names its donors to the community.
    donors_visible     boolean     NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, id),
    FOREIGN KEY (community_id, id) REFERENCES parties (community_id, id)
);

-- The pool's terms per unit: its account, the largest grant, the most one
-- beneficiary receives within the period, and (optionally) the balance at or
-- below which a member is eligible.
CREATE TABLE pool_units (
    community_id           uuid   NOT NULL,
    pool_id                uuid   NOT NULL,
    unit_id                uuid   NOT NULL,
    account_id             uuid   NOT NULL,
    grant_max              bigint NOT NULL CHECK (grant_max BETWEEN 1 AND 9007199254740991),
    beneficiary_period_max bigint NOT NULL
                           CHECK (beneficiary_period_max BETWEEN 1 AND 9007199254740991),
    eligible_at_or_below   bigint CHECK (eligible_at_or_below BETWEEN -9007199254740991
                                                                  AND 9007199254740991),
    PRIMARY KEY (community_id, pool_id, unit_id),
    FOREIGN KEY (community_id, pool_id) REFERENCES pools (community_id, id),
    FOREIGN KEY (community_id, unit_id) REFERENCES units (community_id, id),
    FOREIGN KEY (community_id, account_id) REFERENCES accounts (community_id, id)
);

-- Who runs the pool: managers decide on requests and grant directly; referrers
-- (social workers) name who may be helped when the charter asks for it.
CREATE TABLE pool_staff (
    community_id uuid NOT NULL,
    pool_id      uuid NOT NULL,
    party_id     uuid NOT NULL,
    role         text NOT NULL CHECK (role IN ('manager', 'referrer')),
    PRIMARY KEY (community_id, pool_id, role, party_id),
    FOREIGN KEY (community_id, pool_id) REFERENCES pools (community_id, id),
    FOREIGN KEY (community_id, party_id) REFERENCES parties (community_id, id)
);

CREATE TABLE pool_referrals (
    community_id uuid        NOT NULL,
    pool_id      uuid        NOT NULL,
    party_id     uuid        NOT NULL,
    referred_by  uuid        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, pool_id, party_id),
    FOREIGN KEY (community_id, pool_id) REFERENCES pools (community_id, id),
    FOREIGN KEY (community_id, party_id) REFERENCES parties (community_id, id),
    FOREIGN KEY (community_id, referred_by) REFERENCES parties (community_id, id)
);

CREATE TABLE pool_requests (
    community_id   uuid        NOT NULL,
    -- Chosen by the client, like a transaction's: a retry is recognised.
    id             uuid        NOT NULL,
    pool_id        uuid        NOT NULL,
    beneficiary_id uuid        NOT NULL,
    unit_id        uuid        NOT NULL,
    -- The beneficiary's account that the grant credits.
    account_id     uuid        NOT NULL,
    amount         bigint      NOT NULL CHECK (amount BETWEEN 1 AND 9007199254740991),
    reason         text        NOT NULL CHECK (length(reason) <= 500),
    state          text        NOT NULL CHECK (state IN ('open', 'paid', 'declined', 'withdrawn')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    resolved_at    timestamptz,
    -- The grant's transaction, once paid.
    transaction_id uuid,
    PRIMARY KEY (community_id, id),
    FOREIGN KEY (community_id, pool_id, unit_id) REFERENCES pool_units (community_id, pool_id, unit_id),
    FOREIGN KEY (community_id, beneficiary_id) REFERENCES parties (community_id, id),
    FOREIGN KEY (community_id, account_id) REFERENCES accounts (community_id, id),
    CHECK ((state = 'open') = (resolved_at IS NULL)),
    CHECK ((state = 'paid') = (transaction_id IS NOT NULL))
);
CREATE INDEX pool_requests_by_pool ON pool_requests (community_id, pool_id, created_at DESC, id);

-- Each manager decides once on a request; decisions are never changed.
CREATE TABLE pool_decisions (
    community_id uuid        NOT NULL,
    request_id   uuid        NOT NULL,
    manager_id   uuid        NOT NULL,
    decision     text        NOT NULL CHECK (decision IN ('approve', 'decline')),
    decided_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, request_id, manager_id),
    FOREIGN KEY (community_id, request_id) REFERENCES pool_requests (community_id, id),
    FOREIGN KEY (community_id, manager_id) REFERENCES parties (community_id, id)
);

-- Every grant the pool paid, answering a request or given directly by a manager.
CREATE TABLE pool_grants (
    community_id   uuid        NOT NULL,
    transaction_id uuid        NOT NULL,
    pool_id        uuid        NOT NULL,
    beneficiary_id uuid        NOT NULL,
    unit_id        uuid        NOT NULL,
    amount         bigint      NOT NULL CHECK (amount > 0),
    paid_at        timestamptz NOT NULL DEFAULT now(),
    request_id     uuid,
    -- The manager who granted directly; NULL for a grant answering a request.
    granted_by     uuid,
    PRIMARY KEY (community_id, transaction_id),
    FOREIGN KEY (community_id, pool_id) REFERENCES pools (community_id, id),
    FOREIGN KEY (community_id, request_id) REFERENCES pool_requests (community_id, id),
    CHECK ((request_id IS NULL) <> (granted_by IS NULL))
);
CREATE INDEX pool_grants_by_beneficiary
    ON pool_grants (community_id, pool_id, beneficiary_id, unit_id, paid_at);

-- Levies: on every exchange or transfer in a unit (of one category, or of all),
-- a share paid to a pool: rate_bps / 10,000 of the amount, rounded down, plus a
-- fixed amount, paid by the payer, the payee, or split (the payer pays the odd
-- step). A rule is retired, never changed, so the log keeps what applied when.
CREATE TABLE levy_rules (
    community_id uuid        NOT NULL,
    id           uuid        NOT NULL DEFAULT gen_random_uuid(),
    unit_id      uuid        NOT NULL,
    category     text        CHECK (length(category) BETWEEN 1 AND 64),
    pool_id      uuid        NOT NULL,
    account_id   uuid        NOT NULL,
    rate_bps     integer     NOT NULL CHECK (rate_bps BETWEEN 0 AND 10000),
    fixed_amount bigint      NOT NULL CHECK (fixed_amount BETWEEN 0 AND 9007199254740991),
    paid_by      text        NOT NULL CHECK (paid_by IN ('payer', 'payee', 'split')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    retired_at   timestamptz,
    PRIMARY KEY (community_id, id),
    FOREIGN KEY (community_id, pool_id, unit_id) REFERENCES pool_units (community_id, pool_id, unit_id),
    CHECK (rate_bps > 0 OR fixed_amount > 0)
);
-- At most one rule in force per unit and category (NULL: every category).
CREATE UNIQUE INDEX levy_rules_one_in_force
    ON levy_rules (community_id, unit_id, coalesce(category, ''))
    WHERE retired_at IS NULL;

-- Decisions, grants and referrals' history cannot be rewritten.
CREATE TRIGGER pool_decisions_append_only BEFORE UPDATE OR DELETE ON pool_decisions
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER pool_grants_append_only BEFORE UPDATE OR DELETE ON pool_grants
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER pool_requests_no_delete BEFORE DELETE ON pool_requests
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER levy_rules_no_delete BEFORE DELETE ON levy_rules
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();

-- A request is resolved once, and nothing else about it changes.
CREATE FUNCTION pool_requests_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.state = 'open' AND NEW.state <> 'open'
       AND (NEW.community_id, NEW.id, NEW.pool_id, NEW.beneficiary_id, NEW.unit_id,
            NEW.account_id, NEW.amount, NEW.reason, NEW.created_at)
           IS NOT DISTINCT FROM
           (OLD.community_id, OLD.id, OLD.pool_id, OLD.beneficiary_id, OLD.unit_id,
            OLD.account_id, OLD.amount, OLD.reason, OLD.created_at) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'pool request % is % and cannot be changed', OLD.id, OLD.state
        USING ERRCODE = 'TB001';
END
$$;
CREATE TRIGGER pool_requests_resolve_once BEFORE UPDATE ON pool_requests
    FOR EACH ROW EXECUTE FUNCTION pool_requests_guard();

-- A levy rule is only ever retired, once.
CREATE FUNCTION levy_rules_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.retired_at IS NULL AND NEW.retired_at IS NOT NULL
       AND (NEW.community_id, NEW.id, NEW.unit_id, NEW.category, NEW.pool_id, NEW.account_id,
            NEW.rate_bps, NEW.fixed_amount, NEW.paid_by, NEW.created_at)
           IS NOT DISTINCT FROM
           (OLD.community_id, OLD.id, OLD.unit_id, OLD.category, OLD.pool_id, OLD.account_id,
            OLD.rate_bps, OLD.fixed_amount, OLD.paid_by, OLD.created_at) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'levy rule % can only be retired, once', OLD.id USING ERRCODE = 'TB001';
END
$$;
CREATE TRIGGER levy_rules_retire_once BEFORE UPDATE ON levy_rules
    FOR EACH ROW EXECUTE FUNCTION levy_rules_guard();

-- The log's entries for pools. Keys in each entry are in RFC 8785 order (these
-- are ASCII: plain lexicographic order).

-- A pool's charter as it stands, written whenever it is set (the store calls it
-- at the end of the transaction that set it, once the staff and units are in).
CREATE FUNCTION log_pool_charter(p_community uuid, p_pool uuid) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_entry text;
BEGIN
    SELECT '{"approvals_required":' || p.approvals_required::text
        || ',"donors_visible":' || p.donors_visible::text
        || ',"managers":[' || coalesce((SELECT string_agg('"' || s.party_id::text || '"', ','
                                                          ORDER BY s.party_id::text)
                                          FROM pool_staff s
                                         WHERE s.community_id = p.community_id
                                           AND s.pool_id = p.id AND s.role = 'manager'), '')
        || '],"period_days":' || p.period_days::text
        || ',"pool":"' || p.id::text
        || '","purpose_sha256":"' || encode(sha256(convert_to(p.purpose, 'UTF8')), 'hex')
        || '","referrers":[' || coalesce((SELECT string_agg('"' || s.party_id::text || '"', ','
                                                            ORDER BY s.party_id::text)
                                            FROM pool_staff s
                                           WHERE s.community_id = p.community_id
                                             AND s.pool_id = p.id AND s.role = 'referrer'), '')
        || '],"requires_referral":' || p.requires_referral::text
        || ',"type":"pool","units":[' || coalesce((
               SELECT string_agg('{"account":"' || u.account_id::text
                   || '","beneficiary_period_max":"' || u.beneficiary_period_max::text
                   || '","eligible_at_or_below":'
                   || CASE WHEN u.eligible_at_or_below IS NULL THEN 'null'
                           ELSE '"' || u.eligible_at_or_below::text || '"' END
                   || ',"grant_max":"' || u.grant_max::text
                   || '","unit":"' || u.unit_id::text || '"}', ',' ORDER BY u.unit_id::text)
                 FROM pool_units u
                WHERE u.community_id = p.community_id AND u.pool_id = p.id), '')
        || '],"v":1}'
      INTO v_entry
      FROM pools p
     WHERE p.community_id = p_community AND p.id = p_pool;
    PERFORM log_append(ARRAY[p_community], ARRAY[v_entry]);
END
$$;

CREATE FUNCTION log_pool_request_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM log_append(ARRAY[NEW.community_id], ARRAY[
            '{"account":"' || NEW.account_id::text
            || '","amount":"' || NEW.amount::text
            || '","beneficiary":"' || NEW.beneficiary_id::text
            || '","id":"' || NEW.id::text
            || '","pool":"' || NEW.pool_id::text
            || '","reason_sha256":"' || encode(sha256(convert_to(NEW.reason, 'UTF8')), 'hex')
            || '","type":"pool_request","unit":"' || NEW.unit_id::text
            || '","v":1}']);
    ELSE
        PERFORM log_append(ARRAY[NEW.community_id], ARRAY[
            '{"id":"' || NEW.id::text
            || '","state":"' || NEW.state
            || '","transaction":' || CASE WHEN NEW.transaction_id IS NULL THEN 'null'
                                          ELSE '"' || NEW.transaction_id::text || '"' END
            || ',"type":"pool_request_resolution","v":1}']);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER pool_requests_logged AFTER INSERT OR UPDATE ON pool_requests
    FOR EACH ROW EXECUTE FUNCTION log_pool_request_changed();

CREATE FUNCTION log_pool_decision_added() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM log_append(ARRAY[NEW.community_id], ARRAY[
        '{"decision":"' || NEW.decision
        || '","manager":"' || NEW.manager_id::text
        || '","request":"' || NEW.request_id::text
        || '","type":"pool_decision","v":1}']);
    RETURN NULL;
END
$$;
CREATE TRIGGER pool_decisions_logged AFTER INSERT ON pool_decisions
    FOR EACH ROW EXECUTE FUNCTION log_pool_decision_added();

CREATE FUNCTION log_pool_grant_added() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM log_append(ARRAY[NEW.community_id], ARRAY[
        '{"granted_by":' || CASE WHEN NEW.granted_by IS NULL THEN 'null'
                                 ELSE '"' || NEW.granted_by::text || '"' END
        || ',"pool":"' || NEW.pool_id::text
        || '","request":' || CASE WHEN NEW.request_id IS NULL THEN 'null'
                                  ELSE '"' || NEW.request_id::text || '"' END
        || ',"transaction":"' || NEW.transaction_id::text
        || '","type":"pool_grant","v":1}']);
    RETURN NULL;
END
$$;
CREATE TRIGGER pool_grants_logged AFTER INSERT ON pool_grants
    FOR EACH ROW EXECUTE FUNCTION log_pool_grant_added();

CREATE FUNCTION log_pool_referral_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_row pool_referrals;
BEGIN
    v_row := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    PERFORM log_append(ARRAY[v_row.community_id], ARRAY[
        '{"member":"' || v_row.party_id::text
        || '","pool":"' || v_row.pool_id::text
        || '","referred":' || (TG_OP = 'INSERT')::text
        || ',"type":"pool_referral","v":1}']);
    RETURN NULL;
END
$$;
CREATE TRIGGER pool_referrals_logged AFTER INSERT OR DELETE ON pool_referrals
    FOR EACH ROW EXECUTE FUNCTION log_pool_referral_changed();

CREATE FUNCTION log_levy_rule_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM log_append(ARRAY[NEW.community_id], ARRAY[
        '{"account":"' || NEW.account_id::text
        || '","category":' || CASE WHEN NEW.category IS NULL THEN 'null'
                                   ELSE to_json(NEW.category)::text END
        || ',"fixed_amount":"' || NEW.fixed_amount::text
        || '","id":"' || NEW.id::text
        || '","paid_by":"' || NEW.paid_by
        || '","rate_bps":' || NEW.rate_bps::text
        || ',"retired":' || (NEW.retired_at IS NOT NULL)::text
        || ',"type":"levy_rule","unit":"' || NEW.unit_id::text
        || '","v":1}']);
    RETURN NULL;
END
$$;
CREATE TRIGGER levy_rules_logged AFTER INSERT OR UPDATE ON levy_rules
    FOR EACH ROW EXECUTE FUNCTION log_levy_rule_changed();
