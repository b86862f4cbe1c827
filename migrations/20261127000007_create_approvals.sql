-- The approval gate (rules: app/src/model/approval.rs; enforced in
-- app/src/ssr/approvals.rs). A request is for one attempt of one step and one
-- exact action, identified by the SHA-256 of its fingerprint.

CREATE TABLE approval_requests (
    id             BIGSERIAL PRIMARY KEY,
    run_id         BIGINT NOT NULL,
    position       INT NOT NULL,
    step_id        TEXT NOT NULL,
    -- The attempt the approval lets run.
    attempt        INT NOT NULL CHECK (attempt >= 1),
    site           TEXT NOT NULL,
    host           TEXT,
    runbook_sha256 TEXT NOT NULL CHECK (runbook_sha256 ~ '^[0-9a-f]{64}$'),
    -- The canonical rendered action as the supervisors saw it.
    action         TEXT NOT NULL,
    action_hash    TEXT NOT NULL CHECK (action_hash ~ '^[0-9a-f]{64}$'),
    quorum         SMALLINT NOT NULL CHECK (quorum BETWEEN 1 AND 2),
    justification  TEXT NOT NULL CHECK (length(btrim(justification)) > 0),
    requested_by   BIGINT NOT NULL REFERENCES users (id),
    requested_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    state          TEXT NOT NULL DEFAULT 'pending' CHECK (state IN
                   ('pending', 'approved', 'rejected', 'withdrawn', 'expired', 'voided', 'used')),
    approved_at    TIMESTAMPTZ,
    expires_at     TIMESTAMPTZ,
    ended_at       TIMESTAMPTZ,
    -- Who ended it: a user name, or "system" (expiry, a changed action).
    ended_by       TEXT,
    ended_reason   TEXT,
    -- A supervisor approved their own request under break-glass mode.
    break_glass    BOOLEAN NOT NULL DEFAULT FALSE,
    FOREIGN KEY (run_id, position) REFERENCES run_steps (run_id, position),
    CHECK (state <> 'approved' OR expires_at IS NOT NULL)
);

-- One open request per step at a time.
CREATE UNIQUE INDEX approval_requests_one_open_per_step
    ON approval_requests (run_id, position) WHERE state IN ('pending', 'approved');
CREATE INDEX approval_requests_open
    ON approval_requests (requested_at) WHERE state IN ('pending', 'approved');
CREATE INDEX approval_requests_run ON approval_requests (run_id, position, id);

CREATE TABLE approval_decisions (
    id                 BIGSERIAL PRIMARY KEY,
    request_id         BIGINT NOT NULL REFERENCES approval_requests (id),
    user_id            BIGINT NOT NULL REFERENCES users (id),
    decision           TEXT NOT NULL CHECK (decision IN ('approve', 'reject')),
    -- The approval's comment or the rejection's reason.
    text               TEXT NOT NULL DEFAULT '',
    break_glass_reason TEXT,
    at                 TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- A supervisor counts once towards a quorum.
    UNIQUE (request_id, user_id)
);

-- The approval an attempt ran under; each approval runs one attempt.
ALTER TABLE step_attempts ADD COLUMN approval_id BIGINT REFERENCES approval_requests (id);
CREATE UNIQUE INDEX step_attempts_one_per_approval
    ON step_attempts (approval_id) WHERE approval_id IS NOT NULL;

-- The last line of defence: an attempt of a destructive step is only ever stored
-- with the used approval of exactly that run, step and attempt.
CREATE FUNCTION step_attempts_require_approval() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT destructive FROM run_steps WHERE run_id = NEW.run_id AND position = NEW.position)
       AND NOT EXISTS (
           SELECT 1 FROM approval_requests a
            WHERE a.id = NEW.approval_id AND a.state = 'used'
              AND a.run_id = NEW.run_id AND a.position = NEW.position AND a.attempt = NEW.attempt)
    THEN
        RAISE EXCEPTION 'attempt % of destructive step % of run % has no used approval',
            NEW.attempt, NEW.position, NEW.run_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER step_attempts_destructive_needs_approval
    BEFORE INSERT ON step_attempts
    FOR EACH ROW EXECUTE FUNCTION step_attempts_require_approval();

-- Sites where an admin allows supervisors to approve their own requests.
CREATE TABLE site_break_glass (
    site       TEXT PRIMARY KEY,
    enabled    BOOLEAN NOT NULL,
    reason     TEXT NOT NULL CHECK (length(btrim(reason)) > 0),
    changed_by BIGINT NOT NULL REFERENCES users (id),
    changed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
