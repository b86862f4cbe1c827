-- What the audit viewer and the exports filter on, indexed so that a filtered
-- page stays fast at millions of events (each index ends in id for the keyset
-- order, newest first).
CREATE INDEX audit_events_run_id
    ON audit_events ((substring(subject from '^run:([0-9]+)')), id DESC);
CREATE INDEX audit_events_host_id ON audit_events ((details->>'host'), id DESC);
CREATE INDEX audit_events_site_id ON audit_events ((details->>'site'), id DESC);
CREATE INDEX audit_events_at ON audit_events (at);
