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
SELECT_CLIENT = """
SELECT id, community_id, party_id, secret_hash, scopes, revoked_at FROM api_clients
 WHERE community_id = $1 AND id = $2
"""
# The community of a bare client_id, issued before migration 0025 (a global table).
SELECT_LEGACY_CLIENT_COMMUNITY = """
SELECT community_id FROM api_client_legacy_ids WHERE client_id = $1
"""

# A person's standing in a community found by slug: the community, and their role,
# own party and organizations if they are a member (NULLs if not).
SELECT_PERSON_ACTOR_BY_SLUG = """
SELECT c.id, c.slug, c.name, c.created_at, m.role, m.party_id,
       ARRAY(SELECT a.organization_id FROM organization_agents a
              WHERE a.community_id = c.id AND a.person_id = $2) AS organization_ids,
       (SELECT p.id FROM parties p WHERE p.community_id = c.id AND p.kind = 'community')
           AS community_party_id
  FROM communities c
  LEFT JOIN memberships m ON m.community_id = c.id AND m.person_id = $2
 WHERE c.slug = $1
"""
SELECT_PERSON_ACTOR_BY_ID = """
SELECT c.id, c.slug, c.name, c.created_at, m.role, m.party_id,
       ARRAY(SELECT a.organization_id FROM organization_agents a
              WHERE a.community_id = c.id AND a.person_id = $2) AS organization_ids,
       (SELECT p.id FROM parties p WHERE p.community_id = c.id AND p.kind = 'community')
           AS community_party_id
  FROM communities c
  LEFT JOIN memberships m ON m.community_id = c.id AND m.person_id = $2
 WHERE c.id = $1
"""
SELECT_CLIENT_ACTOR_BY_SLUG = """
SELECT c.id, c.slug, c.name, c.created_at,
       (SELECT k.revoked_at IS NULL FROM api_clients k WHERE k.id = $2 AND k.community_id = c.id)
           AS client_active
  FROM communities c WHERE c.slug = $1
"""
SELECT_CLIENT_ACTOR_BY_ID = """
SELECT c.id, c.slug, c.name, c.created_at,
       (SELECT k.revoked_at IS NULL FROM api_clients k WHERE k.id = $2 AND k.community_id = c.id)
           AS client_active
  FROM communities c WHERE c.id = $1
"""

UPSERT_PERSON = """
WITH inserted AS (
    INSERT INTO people (email, display_name, password_hash) VALUES ($1, $2, $3)
    ON CONFLICT (lower(email)) DO NOTHING
    RETURNING id
)
SELECT id FROM inserted
UNION ALL
SELECT id FROM people WHERE lower(email) = lower($1)
LIMIT 1
"""
INSERT_MEMBER_PARTY = """
INSERT INTO parties (community_id, kind, display_name) VALUES ($1, 'member', $2) RETURNING id
"""
INSERT_MEMBERSHIP = """
INSERT INTO memberships (community_id, person_id, party_id, role) VALUES ($1, $2, $3, $4)
ON CONFLICT (community_id, person_id) DO NOTHING
RETURNING created_at
"""
# One main account per unit of the community, with the unit's default limits.
OPEN_ACCOUNTS_FOR_PARTY = """
INSERT INTO accounts (community_id, unit_id, owner_id, min_balance, max_balance)
SELECT u.community_id, u.id, $2, d.min_balance, d.max_balance
  FROM units u CROSS JOIN LATERAL account_default_limits(u.community_id, u.id, $2) d
 WHERE u.community_id = $1
ON CONFLICT DO NOTHING
"""
# When a unit is added, every member and organization gets an account in it.
OPEN_ACCOUNTS_FOR_UNIT = """
INSERT INTO accounts (community_id, unit_id, owner_id, min_balance, max_balance)
SELECT p.community_id, $2, p.id, d.min_balance, d.max_balance
  FROM parties p CROSS JOIN LATERAL account_default_limits(p.community_id, $2, p.id) d
 WHERE p.community_id = $1 AND p.kind IN ('member', 'organization')
ON CONFLICT DO NOTHING
"""
SELECT_PARTY_ACCOUNTS = """
SELECT a.owner_id, a.id, u.code AS unit_code, a.purpose
  FROM accounts a JOIN units u ON u.community_id = a.community_id AND u.id = a.unit_id
 WHERE a.community_id = $1 AND a.owner_id = ANY ($2::uuid[])
 ORDER BY a.owner_id, u.kind DESC, u.code, a.purpose
"""
# The directory, by name then id, after a keyset cursor; $3 filters by a name part.
SELECT_MEMBERS = """
SELECT p.id AS party_id, p.display_name, m.role, m.created_at AS joined_at, m.person_id,
       pe.email
  FROM memberships m
  JOIN parties p ON p.community_id = m.community_id AND p.id = m.party_id
  JOIN people pe ON pe.id = m.person_id
 WHERE m.community_id = $1
   AND ($2::text IS NULL OR p.display_name ILIKE '%' || $2 || '%')
   AND (p.display_name, p.id) > ($3, $4)
 ORDER BY p.display_name, p.id
 LIMIT $5
"""
SELECT_MEMBER_BY_PARTY = """
SELECT m.person_id FROM memberships m WHERE m.community_id = $1 AND m.party_id = $2
"""
INSERT_ORGANIZATION_PARTY = """
INSERT INTO parties (community_id, kind, display_name) VALUES ($1, 'organization', $2)
RETURNING id, created_at
"""
INSERT_ORGANIZATION = """
INSERT INTO organizations (community_id, party_id, kind) VALUES ($1, $2, $3)
"""
SELECT_ORGANIZATIONS = """
SELECT o.party_id, p.display_name, o.kind, o.created_at,
       ARRAY(SELECT m.party_id FROM organization_agents a
               JOIN memberships m ON m.community_id = a.community_id AND m.person_id = a.person_id
              WHERE a.community_id = o.community_id AND a.organization_id = o.party_id
              ORDER BY m.party_id) AS agent_party_ids
  FROM organizations o JOIN parties p ON p.community_id = o.community_id AND p.id = o.party_id
 WHERE o.community_id = $1 AND ($2::uuid IS NULL OR o.party_id = $2)
 ORDER BY p.display_name, o.party_id
"""
INSERT_AGENT = """
INSERT INTO organization_agents (community_id, organization_id, person_id) VALUES ($1, $2, $3)
ON CONFLICT DO NOTHING
"""
INSERT_CLIENT = """
INSERT INTO api_clients (community_id, party_id, name, secret_hash, scopes)
VALUES ($1, $2, $3, $4, $5)
RETURNING id, created_at
"""
SELECT_CLIENTS = """
SELECT id, party_id, name, scopes, created_at, revoked_at FROM api_clients
 WHERE community_id = $1 ORDER BY created_at, id
"""
REVOKE_CLIENT = """
UPDATE api_clients SET revoked_at = coalesce(revoked_at, now())
 WHERE community_id = $1 AND id = $2
RETURNING id
"""
SELECT_PARTY = "SELECT id, kind, display_name FROM parties WHERE community_id = $1 AND id = $2"
SELECT_MEMBER = """
SELECT p.id AS party_id, p.display_name, m.role, m.created_at AS joined_at, m.person_id,
       pe.email
  FROM memberships m
  JOIN parties p ON p.community_id = m.community_id AND p.id = m.party_id
  JOIN people pe ON pe.id = m.person_id
 WHERE m.community_id = $1 AND m.party_id = $2
"""
SELECT_ACCOUNT_OWNERS = """
SELECT id, owner_id FROM accounts WHERE community_id = $1 AND id = ANY ($2::uuid[])
"""
SELECT_PARTIES = """
SELECT id, kind, display_name FROM parties WHERE community_id = $1 AND id = ANY ($2::uuid[])
"""

# Invitations (0024). A person with a password needs none; a claim takes a token
# that is pending (not used, not revoked, not expired), locked so that two uses
# at once spend it once.
SELECT_MEMBER_PARTY_BY_EMAIL = """
SELECT m.party_id FROM memberships m JOIN people pe ON pe.id = m.person_id
 WHERE m.community_id = $1 AND lower(pe.email) = lower($2)
"""
SELECT_PERSON_HAS_PASSWORD = """
SELECT password_hash IS NOT NULL FROM people WHERE lower(email) = lower($1)
"""
REVOKE_PENDING_INVITATIONS = """
UPDATE invitations SET revoked_at = now()
 WHERE community_id = $1 AND party_id = $2 AND used_at IS NULL AND revoked_at IS NULL
"""
INSERT_INVITATION = """
WITH inserted AS (
    INSERT INTO invitations (community_id, person_id, party_id, token_hash, expires_at)
    SELECT m.community_id, m.person_id, m.party_id, $3, now() + make_interval(secs => $4)
      FROM memberships m
      JOIN people pe ON pe.id = m.person_id
     WHERE m.community_id = $1 AND m.party_id = $2 AND pe.password_hash IS NULL
    RETURNING id, party_id, person_id, created_at, expires_at, used_at, revoked_at
)
SELECT i.*, pe.email, p.display_name
  FROM inserted i
  JOIN people pe ON pe.id = i.person_id
  JOIN parties p ON p.community_id = $1 AND p.id = i.party_id
"""
SELECT_INVITATIONS = """
SELECT i.id, i.party_id, i.created_at, i.expires_at, i.used_at, i.revoked_at,
       pe.email, p.display_name
  FROM invitations i
  JOIN people pe ON pe.id = i.person_id
  JOIN parties p ON p.community_id = i.community_id AND p.id = i.party_id
 WHERE i.community_id = $1
 ORDER BY i.created_at DESC, i.id
 LIMIT $2
"""
REVOKE_INVITATION = """
UPDATE invitations SET revoked_at = now()
 WHERE community_id = $1 AND id = $2 AND used_at IS NULL AND revoked_at IS NULL
RETURNING id
"""
CLAIM_INVITATION = """
UPDATE invitations i SET used_at = now()
  FROM people pe
 WHERE i.community_id = $1 AND i.token_hash = $2 AND i.used_at IS NULL AND i.revoked_at IS NULL
   AND i.expires_at > now() AND pe.id = i.person_id
RETURNING i.community_id, i.person_id, pe.email
"""
SET_FIRST_PASSWORD = """
UPDATE people SET password_hash = $2 WHERE id = $1 AND password_hash IS NULL RETURNING id
"""
