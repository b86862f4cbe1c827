-- People who sign in to the portal. Usernames are stored lower-case: the
-- application normalises them, and the check keeps the database honest.
CREATE TABLE users (
    id                   BIGSERIAL PRIMARY KEY,
    username             TEXT NOT NULL UNIQUE CHECK (username = lower(username) AND username ~ '^[a-z][a-z0-9._-]{1,31}$'),
    role                 TEXT NOT NULL CHECK (role IN ('operator', 'supervisor', 'auditor', 'admin')),
    password_hash        TEXT NOT NULL,
    disabled             BOOLEAN NOT NULL DEFAULT FALSE,
    must_change_password BOOLEAN NOT NULL DEFAULT FALSE,
    -- Bumped whenever every existing session of the user must end (password
    -- change, reset, disable, role change). Sessions carry the epoch they were
    -- created under and are refused once it no longer matches.
    session_epoch        BIGINT NOT NULL DEFAULT 0,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_sign_in_at      TIMESTAMPTZ
);

-- Failed sign-in attempts, keyed by the username as typed (lower-cased), so
-- unknown and known usernames are throttled alike.
CREATE TABLE sign_in_failures (
    id         BIGSERIAL PRIMARY KEY,
    username   TEXT NOT NULL,
    failed_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX sign_in_failures_username_time ON sign_in_failures (username, failed_at DESC);
