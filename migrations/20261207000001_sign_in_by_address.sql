-- Sign-in throttling moves from per-username blocks (which let anyone lock out
-- any account) to slowing down per client address and per (username, address).
ALTER TABLE sign_in_failures ADD COLUMN address TEXT NOT NULL DEFAULT 'unknown';
DROP INDEX sign_in_failures_username_time;
CREATE INDEX sign_in_failures_address_time ON sign_in_failures (address, failed_at DESC);
CREATE INDEX sign_in_failures_username_address_time ON sign_in_failures (username, address, failed_at DESC);
CREATE INDEX sign_in_failures_time ON sign_in_failures (failed_at);

-- Failed and throttled sign-ins are audited once per key and fixed window, with
-- a count, so that guessing cannot flood the audit chain: the first attempt of a
-- window writes an event at once, and when the window has closed with more
-- attempts, one summary event records how many there were.
CREATE TABLE sign_in_audit_windows (
    kind          TEXT NOT NULL CHECK (kind IN ('failed', 'throttled')),
    -- 'failed': the username key; 'throttled': the client address.
    key           TEXT NOT NULL,
    window_start  TIMESTAMPTZ NOT NULL,
    attempts      BIGINT NOT NULL DEFAULT 1,
    -- A few of the other side's values (addresses of failures, usernames of
    -- throttled attempts), for the summary; bounded so it cannot grow.
    seen          TEXT[] NOT NULL DEFAULT '{}',
    last_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    summarized_at TIMESTAMPTZ,
    PRIMARY KEY (kind, key, window_start)
);
CREATE INDEX sign_in_audit_windows_open ON sign_in_audit_windows (window_start) WHERE summarized_at IS NULL;
