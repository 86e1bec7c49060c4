-- The webhook outbox keyed by community first, like every community table, so the
-- schema can be distributed by community (docs/scaling.md): subscriptions and
-- events take (community_id, id) as their key; deliveries and attempts carry the
-- community and reference within it.

ALTER TABLE webhook_deliveries ADD COLUMN community_id uuid;
ALTER TABLE webhook_attempts ADD COLUMN community_id uuid;
UPDATE webhook_deliveries d SET community_id = s.community_id
  FROM webhook_subscriptions s WHERE s.id = d.subscription_id;
UPDATE webhook_attempts a SET community_id = s.community_id
  FROM webhook_subscriptions s WHERE s.id = a.subscription_id;
ALTER TABLE webhook_deliveries ALTER COLUMN community_id SET NOT NULL;
ALTER TABLE webhook_attempts ALTER COLUMN community_id SET NOT NULL;

ALTER TABLE webhook_attempts DROP CONSTRAINT webhook_attempts_subscription_id_event_id_fkey;
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_subscription_id_fkey;
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_event_id_fkey;

ALTER TABLE webhook_subscriptions DROP CONSTRAINT webhook_subscriptions_pkey;
ALTER TABLE webhook_subscriptions ADD PRIMARY KEY (community_id, id);
ALTER TABLE webhook_events DROP CONSTRAINT webhook_events_pkey;
ALTER TABLE webhook_events ADD PRIMARY KEY (community_id, id);

ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_pkey;
ALTER TABLE webhook_deliveries ADD PRIMARY KEY (community_id, subscription_id, event_id);
ALTER TABLE webhook_deliveries
    ADD FOREIGN KEY (community_id, subscription_id)
        REFERENCES webhook_subscriptions (community_id, id),
    ADD FOREIGN KEY (community_id, event_id) REFERENCES webhook_events (community_id, id);
DROP INDEX webhook_deliveries_pending;
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (community_id, subscription_id, event_id)
    WHERE state = 'pending';

ALTER TABLE webhook_attempts DROP CONSTRAINT webhook_attempts_pkey;
ALTER TABLE webhook_attempts ADD PRIMARY KEY (community_id, subscription_id, event_id, attempt);
ALTER TABLE webhook_attempts
    ADD FOREIGN KEY (community_id, subscription_id, event_id)
        REFERENCES webhook_deliveries (community_id, subscription_id, event_id);

CREATE OR REPLACE FUNCTION webhook_enqueue(p_events jsonb) RETURNS void
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
    INSERT INTO webhook_deliveries (community_id, subscription_id, event_id)
    SELECT e.community_id, s.id, e.id
      FROM events e
      JOIN webhook_subscriptions s
        ON s.community_id = e.community_id AND s.deleted_at IS NULL AND e.type = ANY (s.event_types);
$$;
