-- A pool manager's decision may carry their signature: the exact bytes of the
-- signed decision (RFC 8785: ledger, request, decision, key id) and the Ed25519 or
-- P-256 signature, by a key of theirs registered in the log before it. Logged with
-- the decision, so the replay checks it like a payer's intent.

ALTER TABLE pool_decisions
    ADD COLUMN signed    bytea CHECK (length(signed) <= 4096),
    ADD COLUMN signature bytea CHECK (length(signature) = 64),
    ADD COLUMN key_id    text,
    ADD CONSTRAINT pool_decisions_signed_whole
        CHECK ((signed IS NULL) = (signature IS NULL) AND (signed IS NULL) = (key_id IS NULL)),
    ADD CONSTRAINT pool_decisions_key FOREIGN KEY (community_id, key_id)
        REFERENCES member_keys (community_id, key_id);

CREATE OR REPLACE FUNCTION log_pool_decision_added() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM log_append(ARRAY[NEW.community_id], ARRAY[
        '{"decision":"' || NEW.decision
        || '","manager":"' || NEW.manager_id::text
        || '","request":"' || NEW.request_id::text
        || '"' || CASE WHEN NEW.signed IS NULL THEN ''
                       ELSE ',"signature":{"key_id":"' || NEW.key_id
                            || '","purpose":"decision","signature":"' || log_b64url(NEW.signature)
                            || '","signed":"' || log_b64url(NEW.signed) || '"}' END
        || ',"type":"pool_decision","v":1}']);
    RETURN NULL;
END
$$;
