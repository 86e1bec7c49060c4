-- A payer may confirm what the payee proposed with a signed transfer intent (the
-- same document as a signed post's), stored as the transaction's 'intent' and
-- logged with its resolution, as a payee's acknowledgement is. A resolution thus
-- carries the payee's 'ack' when there is one, else an 'intent' written by this
-- very database transaction: a signature's created_at defaults to now(), the
-- transaction's start, so an intent logged earlier with the transaction's own
-- entry (a signed post) is never logged twice. As before, signatures are looked
-- up only when the writing transaction says it signed something
-- (SET LOCAL timebank.signed = 'on').

CREATE OR REPLACE FUNCTION log_resolution_entry(t transactions) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT '{"at":' || log_json_time(t.resolved_at)
        || ',"id":"' || t.id::text || '"'
        || CASE WHEN coalesce(current_setting('timebank.signed', true), '') <> 'on' THEN ''
                ELSE coalesce(
                    nullif(log_signatures_member(t.community_id, t.id, 'ack'), ''),
                    CASE WHEN EXISTS (SELECT 1 FROM transaction_signatures s
                                       WHERE s.community_id = t.community_id
                                         AND s.transaction_id = t.id
                                         AND s.purpose = 'intent'
                                         AND s.created_at = now())
                         THEN log_signatures_member(t.community_id, t.id, 'intent')
                         ELSE '' END) END
        || ',"state":"' || t.state::text
        || '","type":"resolution","v":1}';
$$;
