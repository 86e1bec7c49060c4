-- What the HTTP API adds around the ledger: organizations and their agents, API
-- clients, the journal's order, and webhooks (an outbox written by triggers in the
-- same transaction as the change it tells of, so no event is lost or invented).

-- An organization (association, business, public body) is a ledger party of kind
-- 'organization'; the members named as its agents act for it.
CREATE TABLE organizations (
    community_id uuid        NOT NULL,
    party_id     uuid        NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('association', 'business', 'public_body')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, party_id),
    FOREIGN KEY (community_id, party_id) REFERENCES parties (community_id, id)
);

CREATE TABLE organization_agents (
    community_id    uuid        NOT NULL,
    organization_id uuid        NOT NULL,
    person_id       uuid        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, organization_id, person_id),
    FOREIGN KEY (community_id, organization_id) REFERENCES organizations (community_id, party_id),
    -- An agent is a member of the organization's community.
    FOREIGN KEY (community_id, person_id) REFERENCES memberships (community_id, person_id)
);
CREATE INDEX organization_agents_by_person ON organization_agents (community_id, person_id);

-- Integrators' clients: they act for the community's own party or an
-- organization's, within their scopes. The secret is random (256 bits) and only
-- its SHA-256 is kept.
CREATE TABLE api_clients (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    community_id uuid        NOT NULL REFERENCES communities (id),
    party_id     uuid        NOT NULL,
    name         text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    secret_hash  bytea       NOT NULL CHECK (length(secret_hash) = 32),
    scopes       text[]      NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    FOREIGN KEY (community_id, party_id) REFERENCES parties (community_id, id)
);
CREATE INDEX api_clients_by_community ON api_clients (community_id);

-- The journal is read newest first, page by page.
CREATE INDEX transactions_journal ON transactions (community_id, created_at, id);

-- Webhooks. A subscription receives the events of its types, one at a time and in
-- event order, each signed with its secret (HMAC-SHA256).
CREATE TABLE webhook_subscriptions (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    community_id uuid        NOT NULL REFERENCES communities (id),
    url          text        NOT NULL CHECK (url ~ '^https?://[^\s]+$' AND length(url) <= 2000),
    event_types  text[]      NOT NULL CHECK (cardinality(event_types) >= 1),
    secret       text        NOT NULL CHECK (length(secret) >= 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    deleted_at   timestamptz
);
CREATE INDEX webhook_subscriptions_active ON webhook_subscriptions (community_id)
    WHERE deleted_at IS NULL;

CREATE TABLE webhook_events (
    id           bigserial   PRIMARY KEY,
    community_id uuid        NOT NULL,
    type         text        NOT NULL,
    payload      jsonb       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- One row per event and subscription: what is left to deliver, and how it went.
CREATE TABLE webhook_deliveries (
    subscription_id uuid        NOT NULL REFERENCES webhook_subscriptions (id),
    event_id        bigint      NOT NULL REFERENCES webhook_events (id),
    state           text        NOT NULL DEFAULT 'pending'
                                CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_status     integer,
    last_error      text,
    delivered_at    timestamptz,
    PRIMARY KEY (subscription_id, event_id)
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (subscription_id, event_id)
    WHERE state = 'pending';

-- Every attempt, for the delivery log.
CREATE TABLE webhook_attempts (
    subscription_id uuid        NOT NULL,
    event_id        bigint      NOT NULL,
    attempt         integer     NOT NULL,
    attempted_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    status          integer,
    error           text,
    duration_ms     integer     NOT NULL,
    PRIMARY KEY (subscription_id, event_id, attempt),
    FOREIGN KEY (subscription_id, event_id) REFERENCES webhook_deliveries (subscription_id, event_id)
);

-- Queues an event for every live subscription of its community and type; no
-- event at all when nobody listens.
CREATE FUNCTION webhook_enqueue(p_events jsonb) RETURNS void
LANGUAGE sql AS $$
    WITH wanted AS (
        SELECT (e ->> 'community_id')::uuid AS community_id, e ->> 'type' AS type,
               e -> 'payload' AS payload, ord
          FROM jsonb_array_elements(p_events) WITH ORDINALITY AS x(e, ord)
         WHERE EXISTS (SELECT 1 FROM webhook_subscriptions s
                        WHERE s.community_id = (e ->> 'community_id')::uuid
                          AND s.deleted_at IS NULL AND (e ->> 'type') = ANY (s.event_types))
         ORDER BY ord
    ), events AS (
        INSERT INTO webhook_events (community_id, type, payload)
        SELECT community_id, type, payload FROM wanted ORDER BY ord
        RETURNING id, community_id, type
    )
    INSERT INTO webhook_deliveries (subscription_id, event_id)
    SELECT s.id, e.id
      FROM events e
      JOIN webhook_subscriptions s
        ON s.community_id = e.community_id AND s.deleted_at IS NULL AND e.type = ANY (s.event_types);
$$;

CREATE FUNCTION webhook_transaction_payload(t transactions) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object(
        'id', t.id, 'community_id', t.community_id, 'kind', t.kind, 'state', t.state,
        'memo', t.memo, 'category', t.category, 'reverses', t.reverses_id,
        'postings', (SELECT jsonb_agg(jsonb_build_object('account', a, 'amount', m) ORDER BY i)
                       FROM unnest(t.leg_accounts, t.leg_amounts) WITH ORDINALITY AS l(a, m, i)),
        'created_at', t.created_at, 'expires_at', t.expires_at, 'resolved_at', t.resolved_at);
$$;

-- Statement-level triggers: one cheap EXISTS per statement when no community has a
-- subscription, so the ledger's batches pay nearly nothing for webhooks.
CREATE FUNCTION webhook_transactions_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM webhook_subscriptions WHERE deleted_at IS NULL) THEN
        PERFORM webhook_enqueue(coalesce(jsonb_agg(jsonb_build_object(
                    'community_id', n.community_id,
                    'type', CASE WHEN n.kind = 'reversal' THEN 'transaction.reversed'
                                 WHEN n.state = 'pending' THEN 'transaction.pending'
                                 ELSE 'transaction.posted' END,
                    'payload', webhook_transaction_payload(n)) ORDER BY n.created_at, n.id),
                '[]'::jsonb))
          FROM new_rows n;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER transactions_webhooks_inserted AFTER INSERT ON transactions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION webhook_transactions_inserted();

CREATE FUNCTION webhook_transactions_resolved() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM webhook_subscriptions WHERE deleted_at IS NULL) THEN
        PERFORM webhook_enqueue(coalesce(jsonb_agg(jsonb_build_object(
                    'community_id', n.community_id,
                    'type', 'transaction.' || n.state::text,
                    'payload', webhook_transaction_payload(n)) ORDER BY n.resolved_at, n.id),
                '[]'::jsonb))
          FROM new_rows n JOIN old_rows o ON o.community_id = n.community_id AND o.id = n.id
         WHERE o.state = 'pending' AND n.state <> 'pending';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER transactions_webhooks_resolved AFTER UPDATE ON transactions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION webhook_transactions_resolved();

CREATE FUNCTION webhook_members_joined() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM webhook_subscriptions WHERE deleted_at IS NULL) THEN
        PERFORM webhook_enqueue(coalesce(jsonb_agg(jsonb_build_object(
                    'community_id', n.community_id,
                    'type', 'member.joined',
                    'payload', jsonb_build_object('party_id', n.party_id, 'role', n.role,
                                                  'joined_at', n.created_at))),
                '[]'::jsonb))
          FROM new_rows n;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER memberships_webhooks_joined AFTER INSERT ON memberships
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION webhook_members_joined();
