-- Witnesses: keys of third parties (an association, the local authority) that
-- cosign a community's checkpoints after checking they extend the last one they
-- cosigned. Their cosignatures are kept in log_cosignatures (0005).
CREATE TABLE log_witnesses (
    community_id uuid        NOT NULL REFERENCES communities (id),
    name         text        NOT NULL CHECK (name ~ '^[^\s+]{1,200}$'),
    -- The verifier key: <name>+<hex key id>+<base64 of 0x01 || public key>.
    vkey         text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, name)
);
