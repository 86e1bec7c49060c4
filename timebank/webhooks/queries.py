"""The webhook SQL, as named constants; values are always parameters."""

INSERT_SUBSCRIPTION = """
INSERT INTO webhook_subscriptions (community_id, url, event_types, secret)
VALUES ($1, $2, $3, $4)
RETURNING id, url, event_types, created_at
"""
SELECT_SUBSCRIPTIONS = """
SELECT id, url, event_types, created_at FROM webhook_subscriptions
 WHERE community_id = $1 AND deleted_at IS NULL
 ORDER BY created_at, id
"""
SELECT_SUBSCRIPTION = """
SELECT id, url, event_types, created_at FROM webhook_subscriptions
 WHERE community_id = $1 AND id = $2 AND deleted_at IS NULL
"""
DELETE_SUBSCRIPTION = """
UPDATE webhook_subscriptions SET deleted_at = now()
 WHERE community_id = $1 AND id = $2 AND deleted_at IS NULL
RETURNING id
"""
# The newest deliveries of a subscription first.
SELECT_DELIVERIES = """
SELECT d.event_id, e.type, d.state, d.attempts, d.last_status, d.last_error,
       d.next_attempt_at, d.delivered_at
  FROM webhook_deliveries d
  JOIN webhook_events e ON e.community_id = d.community_id AND e.id = d.event_id
 WHERE d.community_id = $3 AND d.subscription_id = $1
 ORDER BY d.event_id DESC
 LIMIT $2
"""

# One probe of the pending index per subscription finds the heads; the lock then
# re-checks each head, so a head another worker has just leased or settled is skipped.
CLAIM_DUE_HEADS = """
WITH heads AS (
    SELECT head.community_id, head.subscription_id, head.event_id
      FROM webhook_subscriptions s
     CROSS JOIN LATERAL (
           SELECT d.community_id, d.subscription_id, d.event_id, d.next_attempt_at
             FROM webhook_deliveries d
            WHERE d.community_id = s.community_id AND d.subscription_id = s.id
              AND d.state = 'pending'
            ORDER BY d.event_id
            LIMIT 1) head
     WHERE s.deleted_at IS NULL AND head.next_attempt_at <= clock_timestamp()
     ORDER BY head.next_attempt_at, head.event_id
     LIMIT $1
), claimed AS (
    SELECT d.community_id, d.subscription_id, d.event_id
      FROM webhook_deliveries d
      JOIN heads USING (community_id, subscription_id, event_id)
     WHERE d.state = 'pending' AND d.next_attempt_at <= clock_timestamp()
       FOR UPDATE OF d SKIP LOCKED
)
UPDATE webhook_deliveries d
   SET attempts = d.attempts + 1,
       next_attempt_at = clock_timestamp() + make_interval(secs => $2::double precision)
  FROM claimed c, webhook_events e, webhook_subscriptions s
 WHERE d.community_id = c.community_id AND d.subscription_id = c.subscription_id
   AND d.event_id = c.event_id
   AND e.community_id = d.community_id AND e.id = d.event_id
   AND s.community_id = d.community_id AND s.id = d.subscription_id
RETURNING d.subscription_id, d.event_id, d.attempts AS attempt, s.url, s.secret,
          e.community_id, e.type, e.created_at, e.payload::text AS payload,
          coalesce((SELECT extract(epoch FROM clock_timestamp() - min(a.attempted_at))
                      FROM webhook_attempts a
                     WHERE a.community_id = d.community_id
                       AND a.subscription_id = d.subscription_id
                       AND a.event_id = d.event_id), 0)::double precision AS retrying_for_s
"""

ABANDON_DELETED = """
UPDATE webhook_deliveries d
   SET state = 'failed', last_error = $1, next_attempt_at = clock_timestamp()
  FROM webhook_subscriptions s
 WHERE s.deleted_at IS NOT NULL AND d.community_id = s.community_id
   AND d.subscription_id = s.id AND d.state = 'pending'
"""

# Settles only the lease it was given: a lease lost to another worker changes nothing
# but the attempt log.
RECORD_ATTEMPT = """
WITH attempt AS (
    INSERT INTO webhook_attempts (community_id, subscription_id, event_id, attempt,
                                  attempted_at, status, error, duration_ms)
    VALUES ($9, $1, $2, $3, clock_timestamp() - make_interval(secs => $6::integer / 1000.0),
            $4, $5, $6::integer)
)
UPDATE webhook_deliveries
   SET state = $7::text, last_status = $4::integer, last_error = $5::text,
       next_attempt_at = clock_timestamp() + make_interval(secs => $8::double precision),
       delivered_at = CASE WHEN $7::text = 'delivered' THEN clock_timestamp() END
 WHERE community_id = $9 AND subscription_id = $1 AND event_id = $2 AND state = 'pending'
   AND attempts = $3
RETURNING 1
"""
