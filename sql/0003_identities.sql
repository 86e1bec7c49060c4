-- People, their roles in communities, and their sessions. Identities live apart
-- from the ledger: a member's ledger party is linked from the membership, and
-- names and emails can be erased without touching the journal.

CREATE TABLE people (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    email         text        NOT NULL CHECK (email ~ '^[^@\s]+@[^@\s]+$' AND length(email) <= 254),
    display_name  text        NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
    -- scrypt$<log2 n>$<r>$<p>$<salt>$<key>; NULL until a password is set.
    password_hash text,
    -- Platform operators create communities; nothing else.
    is_operator   boolean     NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX people_by_email ON people (lower(email));

CREATE TABLE memberships (
    community_id uuid        NOT NULL REFERENCES communities (id),
    person_id    uuid        NOT NULL REFERENCES people (id),
    -- The member's own party in the ledger (its accounts).
    party_id     uuid        NOT NULL,
    role         text        NOT NULL CHECK (role IN ('member', 'treasurer', 'admin')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, person_id),
    UNIQUE (community_id, party_id),
    FOREIGN KEY (community_id, party_id) REFERENCES parties (community_id, id)
);
CREATE INDEX memberships_by_person ON memberships (person_id);

-- Refresh tokens rotate on every use. Each belongs to a family (one login); using
-- a spent one again means it was stolen, and the whole family is revoked.
CREATE TABLE refresh_tokens (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    family_id   uuid        NOT NULL,
    person_id   uuid        NOT NULL REFERENCES people (id),
    -- SHA-256 of the token: the token itself is never stored.
    token_hash  bytea       NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    issued_at   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);

-- Failed logins per key (an email or an address) in the current window.
CREATE TABLE login_failures (
    key          text        PRIMARY KEY,
    window_start timestamptz NOT NULL,
    failures     integer     NOT NULL CHECK (failures >= 0)
);
