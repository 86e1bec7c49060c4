-- Member-held keys and signatures. Members (and organizations' agents, and API
-- clients) register device public keys; the server never holds a private one.
-- Registrations, revocations, agents and policy changes are log entries, so a
-- signature is judged valid at a log position, not by clocks. A signed
-- transaction's intent and signature (and a payee's signed acknowledgement) are
-- kept byte for byte and logged with it.

CREATE TABLE member_keys (
    community_id  uuid        NOT NULL REFERENCES communities (id),
    -- base64url (no padding) of the first 16 bytes of SHA-256(algorithm 0x00 key).
    key_id        text        NOT NULL CHECK (key_id ~ '^[A-Za-z0-9_-]{22}$'),
    -- Whose key: a member's party, or the party an API client acts for.
    party_id      uuid        NOT NULL,
    person_id     uuid        REFERENCES people (id),
    client_id     uuid        REFERENCES api_clients (id),
    algorithm     text        NOT NULL CHECK (algorithm IN ('ed25519', 'p256')),
    public_key    bytea       NOT NULL CHECK (length(public_key) IN (32, 65)),
    label         text        NOT NULL DEFAULT '' CHECK (length(label) <= 100),
    registered_at timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    PRIMARY KEY (community_id, key_id),
    FOREIGN KEY (community_id, party_id) REFERENCES parties (community_id, id),
    CHECK ((person_id IS NULL) <> (client_id IS NULL))
);
CREATE INDEX member_keys_by_person ON member_keys (person_id) WHERE person_id IS NOT NULL;

CREATE TABLE community_policies (
    community_id uuid        PRIMARY KEY REFERENCES communities (id),
    -- Whether member-initiated transactions must carry a signed intent.
    signatures   text        NOT NULL DEFAULT 'optional'
                             CHECK (signatures IN ('optional', 'required')),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- The exact signed bytes: the payer's intent, and the payee's acknowledgement.
CREATE TABLE transaction_signatures (
    community_id   uuid        NOT NULL,
    transaction_id uuid        NOT NULL,
    purpose        text        NOT NULL CHECK (purpose IN ('intent', 'ack')),
    signed         bytea       NOT NULL CHECK (length(signed) <= 4096),
    signature      bytea       NOT NULL CHECK (length(signature) = 64),
    key_id         text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, transaction_id, purpose),
    FOREIGN KEY (community_id, key_id) REFERENCES member_keys (community_id, key_id)
);
CREATE TRIGGER transaction_signatures_append_only BEFORE UPDATE OR DELETE
    ON transaction_signatures FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();

CREATE FUNCTION log_b64url(p bytea) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT rtrim(translate(encode(p, 'base64'), E'+/\n', '-_'), '=');
$$;

-- A transaction's signatures as a JSON member (with its leading comma), or ''
-- when it has none. Looked up only when the writing transaction says it signed
-- something (SET LOCAL timebank.signed = 'on'): unsigned writes pay nothing.
CREATE FUNCTION log_signatures_member(p_community uuid, p_transaction uuid, p_purpose text)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN coalesce(current_setting('timebank.signed', true), '') <> 'on' THEN ''
           ELSE coalesce(
               (SELECT ',"signatures":[{"key_id":"' || s.key_id
                       || '","purpose":"' || s.purpose
                       || '","signature":"' || log_b64url(s.signature)
                       || '","signed":"' || log_b64url(s.signed) || '"}]'
                  FROM transaction_signatures s
                 WHERE s.community_id = p_community AND s.transaction_id = p_transaction
                   AND s.purpose = p_purpose),
               '') END;
$$;

CREATE OR REPLACE FUNCTION log_transactions_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_community uuid;
    v_count     bigint;
    v_start     bigint;
    v_signed    boolean := coalesce(current_setting('timebank.signed', true), '') = 'on';
BEGIN
    FOR v_community, v_count IN
        SELECT n.community_id, count(*) FROM new_rows n GROUP BY n.community_id ORDER BY 1
    LOOP
        UPDATE log_heads SET size = size + v_count WHERE community_id = v_community
        RETURNING size - v_count INTO v_start;
        IF NOT FOUND THEN
            INSERT INTO log_heads (community_id) VALUES (v_community) ON CONFLICT DO NOTHING;
            UPDATE log_heads SET size = size + v_count WHERE community_id = v_community
            RETURNING size - v_count INTO v_start;
        END IF;
        INSERT INTO log_entries (community_id, leaf_index, entry)
        SELECT v_community,
               v_start + row_number() OVER (ORDER BY n.created_at, n.id) - 1,
               convert_to(
                   '{"category":' || CASE WHEN n.category IS NULL THEN 'null'
                                          ELSE to_json(n.category::text)::text END
                   || ',"created_at":"'
                   || to_char(n.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
                   || '","expires_at":'
                   || CASE WHEN n.expires_at IS NULL THEN 'null'
                           ELSE '"' || to_char(n.expires_at AT TIME ZONE 'UTC',
                                               'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') || '"' END
                   || ',"id":"' || n.id::text
                   || '","kind":"' || n.kind::text
                   || '","memo_sha256":"' || encode(sha256(convert_to(n.memo, 'UTF8')), 'hex')
                   || '","postings":[' || p.postings
                   || '],"reverses":' || CASE WHEN n.reverses_id IS NULL THEN 'null'
                                              ELSE '"' || n.reverses_id::text || '"' END
                   || CASE WHEN v_signed THEN log_signatures_member(n.community_id, n.id, 'intent')
                           ELSE '' END
                   || ',"state":"' || n.state::text
                   || '","type":"transaction","v":1}',
                   'UTF8')
          FROM new_rows n
         CROSS JOIN LATERAL (
               SELECT string_agg('["' || l.a::text || '",' || l.m::text || ']', ',' ORDER BY l.i)
                      AS postings
                 FROM unnest(n.leg_accounts, n.leg_amounts) WITH ORDINALITY AS l(a, m, i)) p
         WHERE n.community_id = v_community;
    END LOOP;
    RETURN NULL;
END
$$;

-- Resolutions carry the payee's signed acknowledgement when there is one.
CREATE OR REPLACE FUNCTION log_resolution_entry(t transactions) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT '{"at":' || log_json_time(t.resolved_at)
        || ',"id":"' || t.id::text || '"'
        || log_signatures_member(t.community_id, t.id, 'ack')
        || ',"state":"' || t.state::text
        || '","type":"resolution","v":1}';
$$;

-- Keys, agents and policies, as log entries.
CREATE FUNCTION log_key_entry(k member_keys) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT '{"algorithm":"' || k.algorithm
        || '","key_id":"' || k.key_id
        || '","party":"' || k.party_id::text
        || '","public_key":"' || log_b64url(k.public_key)
        || '","type":"key","v":1}';
$$;

CREATE FUNCTION log_key_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM log_append(ARRAY[NEW.community_id], ARRAY[log_key_entry(NEW)]);
    ELSIF OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL THEN
        PERFORM log_append(ARRAY[NEW.community_id],
            ARRAY['{"key_id":"' || NEW.key_id || '","type":"key_revocation","v":1}']);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER member_keys_logged AFTER INSERT OR UPDATE OF revoked_at ON member_keys
    FOR EACH ROW EXECUTE FUNCTION log_key_changed();

-- A key's identity never changes; only its revocation is written, once.
CREATE FUNCTION member_keys_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.community_id, NEW.key_id, NEW.party_id, NEW.algorithm, NEW.public_key)
       IS DISTINCT FROM (OLD.community_id, OLD.key_id, OLD.party_id, OLD.algorithm, OLD.public_key)
       OR (OLD.revoked_at IS NOT NULL AND NEW.revoked_at IS DISTINCT FROM OLD.revoked_at) THEN
        RAISE EXCEPTION 'a key is registered once and revoked at most once'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER member_keys_guarded BEFORE UPDATE ON member_keys
    FOR EACH ROW EXECUTE FUNCTION member_keys_guard();
CREATE TRIGGER member_keys_no_delete BEFORE DELETE ON member_keys
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();

CREATE FUNCTION log_agent_added() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM log_append(ARRAY[NEW.community_id], ARRAY[
        '{"member":"' || (SELECT m.party_id FROM memberships m
                           WHERE m.community_id = NEW.community_id AND m.person_id = NEW.person_id)::text
        || '","organization":"' || NEW.organization_id::text
        || '","type":"agent","v":1}']);
    RETURN NULL;
END
$$;
CREATE TRIGGER organization_agents_logged AFTER INSERT ON organization_agents
    FOR EACH ROW EXECUTE FUNCTION log_agent_added();

CREATE FUNCTION log_policy_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.signatures IS DISTINCT FROM OLD.signatures THEN
        PERFORM log_append(ARRAY[NEW.community_id],
            ARRAY['{"signatures":"' || NEW.signatures || '","type":"policy","v":1}']);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER community_policies_logged AFTER INSERT OR UPDATE ON community_policies
    FOR EACH ROW EXECUTE FUNCTION log_policy_changed();

-- Agents named before this migration enter the log now.
DO $$
BEGIN
    PERFORM log_append(ARRAY[a.community_id],
        ARRAY['{"member":"' || m.party_id::text || '","organization":"'
              || a.organization_id::text || '","type":"agent","v":1}'])
       FROM organization_agents a
       JOIN memberships m ON m.community_id = a.community_id AND m.person_id = a.person_id
      ORDER BY a.created_at;
END
$$;
