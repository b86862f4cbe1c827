-- Signed checkpoints of the audit chain's head (app/src/ssr/audit/checkpoint.rs).
--
-- The chain proves that no event inside it was changed, but not that its last
-- events are still there: deleting the newest events leaves a shorter chain that
-- is still consistent. So the portal signs the head (id and hash) with an
-- HMAC-SHA256 key kept in a file outside the database, and keeps each signed
-- checkpoint here AND in an append-only file next to the key. A verification
-- compares the chain with the newest checkpoint it can trust from either place.
-- A row here can be deleted by the database's owner (the file still has it) but
-- not forged without the key: a row whose MAC does not check is reported.
CREATE TABLE audit_checkpoints (
    id          BIGSERIAL PRIMARY KEY,
    -- The database the chain lives in (current_database()) and its first event's
    -- hash: which trail the checkpoint belongs to.
    database    TEXT NOT NULL,
    first_hash  TEXT NOT NULL,
    head_id     BIGINT NOT NULL CHECK (head_id > 0),
    head_hash   TEXT NOT NULL,
    at          TIMESTAMPTZ NOT NULL,
    -- Lower-case hex HMAC-SHA256 over the fields above (see checkpoint.rs).
    mac         TEXT NOT NULL
);
CREATE INDEX audit_checkpoints_head ON audit_checkpoints (head_id DESC);

-- Like the events, checkpoints are only ever added.
CREATE FUNCTION audit_checkpoints_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_checkpoints is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_checkpoints_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_checkpoints_refuse_change();
CREATE TRIGGER audit_checkpoints_no_truncate
    BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_checkpoints_refuse_change();

-- What a verification compared the chain with: the checkpoint (or the head the
-- auditor gave with --expect-head) it was anchored to.
ALTER TABLE audit_verifications
    ADD COLUMN anchor_head_id   BIGINT,
    ADD COLUMN anchor_head_hash TEXT,
    ADD COLUMN anchor_at        TIMESTAMPTZ,
    ADD COLUMN anchor_source    TEXT;
