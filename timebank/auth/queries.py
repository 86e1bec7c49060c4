"""The identity SQL, as named constants; values are always parameters."""

SELECT_PERSON_BY_EMAIL = """
SELECT id, email, display_name, password_hash, is_operator
  FROM people WHERE lower(email) = lower($1)
"""
INSERT_OPERATOR = """
INSERT INTO people (email, display_name, password_hash, is_operator)
VALUES ($1, $2, $3, true)
ON CONFLICT (lower(email)) DO NOTHING
RETURNING id
"""
# Counts a failure, starting a new window when the last one is over; returns the
# failures in the current window.
RECORD_FAILURE = """
INSERT INTO login_failures AS f (key, window_start, failures) VALUES ($1, now(), 1)
ON CONFLICT (key) DO UPDATE
   SET failures = CASE WHEN f.window_start < now() - make_interval(secs => $2)
                       THEN 1 ELSE f.failures + 1 END,
       window_start = CASE WHEN f.window_start < now() - make_interval(secs => $2)
                           THEN now() ELSE f.window_start END
RETURNING failures
"""
SELECT_FAILURES = """
SELECT coalesce(sum(failures) FILTER (WHERE key = $1), 0) AS account_failures,
       coalesce(sum(failures) FILTER (WHERE key = $2), 0) AS address_failures
  FROM login_failures
 WHERE key IN ($1, $2) AND window_start >= now() - make_interval(secs => $3)
"""
CLEAR_FAILURES = "DELETE FROM login_failures WHERE key = $1"
INSERT_REFRESH_TOKEN = """
INSERT INTO refresh_tokens (family_id, person_id, token_hash, expires_at)
VALUES ($1, $2, $3, now() + make_interval(secs => $4))
"""
# Locks the token row so that two concurrent uses cannot both succeed.
SELECT_REFRESH_TOKEN = """
SELECT r.id, r.family_id, r.person_id, r.expires_at <= now() AS expired, r.used_at,
       r.revoked_at, p.is_operator
  FROM refresh_tokens r JOIN people p ON p.id = r.person_id
 WHERE r.token_hash = $1
   FOR UPDATE OF r
"""
MARK_REFRESH_TOKEN_USED = "UPDATE refresh_tokens SET used_at = now() WHERE id = $1"
REVOKE_FAMILY = """
UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL
"""
SELECT_FAMILY_OF = "SELECT family_id FROM refresh_tokens WHERE token_hash = $1"
SELECT_PERSON = "SELECT id, email, display_name, is_operator FROM people WHERE id = $1"
SELECT_MEMBERSHIPS_OF = """
SELECT c.id AS community_id, c.slug, c.name, m.role, m.party_id
  FROM memberships m JOIN communities c ON c.id = m.community_id
 WHERE m.person_id = $1
 ORDER BY c.slug
"""
