-- The audit trail: append-only and hash-chained.
--
-- Each event's hash is SHA-256 over a canonical encoding of the event that
-- includes the previous event's hash (see app/src/ssr/audit/chain.rs). Ids are
-- dense (1, 2, 3, ...) and assigned by the appender under an advisory lock, so
-- a deleted row shows as a gap and a changed row as a hash that no longer fits.
CREATE TABLE audit_events (
    id         BIGINT PRIMARY KEY CHECK (id > 0),
    at         TIMESTAMPTZ NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    details    JSONB NOT NULL,
    prev_hash  TEXT NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
    hash       TEXT NOT NULL UNIQUE CHECK (hash ~ '^[0-9a-f]{64}$'),
    -- One successor per event: two concurrent appenders can never fork the chain.
    CONSTRAINT audit_events_single_successor UNIQUE (prev_hash)
);
CREATE INDEX audit_events_actor_id ON audit_events (actor, id DESC);
CREATE INDEX audit_events_action_id ON audit_events (action, id DESC);

CREATE FUNCTION audit_events_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_events_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_refuse_change();

CREATE TRIGGER audit_events_no_truncate
    BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_change();
