-- The last two gaps before the schema can be distributed by community
-- (docs/scaling.md, "Sharding by community").
--
-- 1. API clients keyed by community first. The client_id an integrator sends to
--    the token endpoint now names its community: `<community id>.<client id>`
--    (timebank/auth/client_ids.py), so the endpoint reads the client on its
--    community's shard. Clients made before this migration were handed a bare
--    `<client id>`; so that they keep working unchanged, their ids are copied
--    here, once, into api_client_legacy_ids: a small global table (a reference
--    table on a distributed PostgreSQL) that says which community a bare id is
--    in. Nothing adds to it afterwards (a trigger refuses it); an operator may
--    delete a row to retire a bare id once its integrator uses the new one.

CREATE TABLE api_client_legacy_ids (
    client_id    uuid PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities (id)
);
INSERT INTO api_client_legacy_ids (client_id, community_id)
SELECT id, community_id FROM api_clients;

CREATE FUNCTION api_client_legacy_ids_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'api_client_legacy_ids holds the clients made before migration 0025: % refused',
        TG_OP;
END;
$$;
CREATE TRIGGER api_client_legacy_ids_frozen BEFORE INSERT OR UPDATE ON api_client_legacy_ids
    FOR EACH ROW EXECUTE FUNCTION api_client_legacy_ids_frozen();

ALTER TABLE member_keys DROP CONSTRAINT member_keys_client_id_fkey;
ALTER TABLE api_clients DROP CONSTRAINT api_clients_pkey;
ALTER TABLE api_clients ADD PRIMARY KEY (community_id, id);
-- The primary key now leads with the community.
DROP INDEX api_clients_by_community;
-- A client's keys are registered in its own community.
ALTER TABLE member_keys
    ADD FOREIGN KEY (community_id, client_id) REFERENCES api_clients (community_id, id);

-- 2. Log origins unique by construction instead of by a global index (a node can
--    only enforce uniqueness among its own rows). An origin is `<prefix>/<slug>`:
--    the row now names its community's slug, which must be that community's
--    (a key to communities (id, slug)), and the origin must end with it. Slugs
--    hold no '/', so the origin's last segment is the slug; slugs are unique in
--    `communities` (a global table), communities are never deleted, and the key
--    keeps a slug from changing once its log has an origin. So two communities
--    can never have the same origin, and no global index is needed.

ALTER TABLE communities ADD CONSTRAINT communities_id_slug_key UNIQUE (id, slug);
ALTER TABLE log_identities ADD COLUMN slug text;
UPDATE log_identities l SET slug = c.slug FROM communities c WHERE c.id = l.community_id;
ALTER TABLE log_identities ALTER COLUMN slug SET NOT NULL;
ALTER TABLE log_identities
    ADD CONSTRAINT log_identities_origin_ends_with_slug
        CHECK (right(origin, length(slug) + 1) = '/' || slug),
    ADD CONSTRAINT log_identities_slug_fkey
        FOREIGN KEY (community_id, slug) REFERENCES communities (id, slug);
ALTER TABLE log_identities DROP CONSTRAINT log_identities_origin_key;
