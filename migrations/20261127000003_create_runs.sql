-- Runs of runbooks, their steps as a state machine (see app/src/model/run.rs),
-- each attempt of a step, and its output in order.

CREATE TABLE runs (
    id             BIGSERIAL PRIMARY KEY,
    runbook_id     TEXT NOT NULL,
    runbook_title  TEXT NOT NULL,
    runbook_sha256 TEXT NOT NULL CHECK (runbook_sha256 ~ '^[0-9a-f]{64}$'),
    -- The exact runbook text the run was started from.
    runbook_source TEXT NOT NULL,
    site           TEXT NOT NULL,
    parameters     JSONB NOT NULL,
    state          TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'completed', 'cancelled')),
    started_by     BIGINT NOT NULL REFERENCES users (id),
    started_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at    TIMESTAMPTZ
);
CREATE INDEX runs_state_started ON runs (state, started_at DESC);

CREATE TABLE run_steps (
    run_id      BIGINT NOT NULL REFERENCES runs (id),
    position    INT NOT NULL CHECK (position >= 0),
    step_id     TEXT NOT NULL,
    title       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    destructive BOOLEAN NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending' CHECK (state IN
                ('pending', 'awaiting_approval', 'running', 'succeeded', 'failed', 'skipped', 'cancelled', 'interrupted')),
    attempts    INT NOT NULL DEFAULT 0,
    -- The host of the current attempt, for steps that run on one.
    host        TEXT,
    -- Why it was skipped or marked done.
    note        TEXT,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, position),
    UNIQUE (run_id, step_id)
);

-- Two runs never execute destructive steps on the same host at the same time.
CREATE UNIQUE INDEX run_steps_one_destructive_per_host
    ON run_steps (host) WHERE destructive AND state = 'running' AND host IS NOT NULL;

CREATE TABLE step_attempts (
    id          BIGSERIAL PRIMARY KEY,
    run_id      BIGINT NOT NULL,
    position    INT NOT NULL,
    attempt     INT NOT NULL CHECK (attempt >= 1),
    host        TEXT,
    -- The canonical text of the rendered action (runbook::render).
    action      TEXT NOT NULL,
    started_by  TEXT NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at TIMESTAMPTZ,
    outcome     JSONB,
    UNIQUE (run_id, position, attempt),
    FOREIGN KEY (run_id, position) REFERENCES run_steps (run_id, position)
);

CREATE TABLE step_output (
    id         BIGSERIAL PRIMARY KEY,
    attempt_id BIGINT NOT NULL REFERENCES step_attempts (id),
    seq        INT NOT NULL CHECK (seq >= 0),
    stream     TEXT NOT NULL CHECK (stream IN ('stdout', 'stderr')),
    at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    data       BYTEA NOT NULL,
    UNIQUE (attempt_id, seq)
);
