-- The members' directory pages by name (display_name, id) within a community; it is
-- loaded at the start of every session of the web front. Without an index in that
-- order, each page read every party, membership and person of the community and
-- sorted them (20,000 members: 63 ms a page). With it, a page reads its rows in
-- order from the index and looks up each one's membership and person. A search by a
-- part of the name still reads the community's names (that would take pg_trgm).
CREATE INDEX parties_by_name ON parties (community_id, display_name, id);
