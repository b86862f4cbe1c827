-- Verifications of the whole audit chain: who started each, how far it got
-- (updated while it runs, for the progress bar), and what it found. The audit
-- page states the last result and when it was reached.
CREATE TABLE audit_verifications (
    id          BIGSERIAL PRIMARY KEY,
    started_by  TEXT NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The chain's last event when the verification started: what it covers.
    total       BIGINT NOT NULL,
    checked     BIGINT NOT NULL DEFAULT 0,
    state       TEXT NOT NULL DEFAULT 'running'
                CHECK (state IN ('running', 'intact', 'broken', 'failed')),
    finished_at TIMESTAMPTZ,
    head_id     BIGINT,
    head_hash   TEXT,
    broken_at   BIGINT,
    -- Why it broke, or why it could not finish.
    reason      TEXT
);
-- At most one verification runs at a time.
CREATE UNIQUE INDEX audit_verifications_one_running
    ON audit_verifications ((true)) WHERE state = 'running';
