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
  FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
 WHERE d.subscription_id = $1
 ORDER BY d.event_id DESC
 LIMIT $2
"""
