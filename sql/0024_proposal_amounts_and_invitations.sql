-- Two things the web front needed of the service (issue 6).
--
-- 1. The amount a payee proposed. A proposal with what a pool takes from it has
--    three legs, and the legs alone do not say the amount the payer must sign
--    (how the levy was shared, or whether the rule changed since): the proposal
--    keeps the amount it was made for, and the payer's confirmation must sign
--    exactly that amount. Written by the service right after the proposal, and
--    again (changing nothing) on each retry of it.
CREATE TABLE transfer_proposals (
    community_id   uuid   NOT NULL,
    transaction_id uuid   NOT NULL,
    -- In the unit's smallest step, before any levy: the transfer's own amount.
    amount         bigint NOT NULL CHECK (amount > 0),
    PRIMARY KEY (community_id, transaction_id),
    FOREIGN KEY (community_id, transaction_id) REFERENCES transactions (community_id, id)
);

-- 2. Invitations: an admin invites a person by email; the invitation is a link
--    with a one-time token (only its SHA-256 is kept) with which the person sets
--    their own password. It expires, is used once, and may be revoked before.
CREATE TABLE invitations (
    community_id uuid        NOT NULL REFERENCES communities (id),
    id           uuid        NOT NULL DEFAULT gen_random_uuid(),
    person_id    uuid        NOT NULL REFERENCES people (id),
    party_id     uuid        NOT NULL,
    token_hash   bytea       NOT NULL CHECK (length(token_hash) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    revoked_at   timestamptz,
    PRIMARY KEY (community_id, id),
    FOREIGN KEY (community_id, party_id) REFERENCES parties (community_id, id),
    CONSTRAINT invitations_consistent CHECK (
        expires_at > created_at
        AND (used_at IS NULL OR revoked_at IS NULL)
        AND (used_at IS NULL OR used_at >= created_at)
        AND (revoked_at IS NULL OR revoked_at >= created_at))
);
-- A token names its community (<community id>.<secret>): it is looked up by its
-- hash within that community, on that community's node once sharded.
CREATE UNIQUE INDEX invitations_by_token ON invitations (community_id, token_hash);
