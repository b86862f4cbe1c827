-- Approval notifications (app/src/ssr/notify/). Admins name, per site, the
-- webhooks and e-mail recipients that hear of every request for approval. The
-- request writes its notification and one delivery per channel into this outbox
-- in its own transaction; a background worker delivers them with retries.

CREATE TABLE notification_channels (
    id          BIGSERIAL PRIMARY KEY,
    site        TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('webhook', 'email')),
    -- The webhook's URL or the recipient's address.
    target      TEXT NOT NULL CHECK (length(btrim(target)) > 0),
    -- The webhook's HMAC key: it must be readable to sign with, so it is kept as
    -- given; the portal never shows more than its last characters.
    secret      TEXT,
    added_by    TEXT NOT NULL,
    added_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Channels are removed, not deleted, so that past deliveries keep their target.
    removed_by  TEXT,
    removed_at  TIMESTAMPTZ,
    CHECK ((kind = 'webhook') = (secret IS NOT NULL AND length(secret) > 0)),
    CHECK ((removed_at IS NULL) = (removed_by IS NULL))
);

CREATE UNIQUE INDEX notification_channels_one_active
    ON notification_channels (site, kind, target) WHERE removed_at IS NULL;

-- One message: the exact bytes every webhook receives (and e-mails are written
-- from), so that retries are identical and receivers can dedupe by event id.
CREATE TABLE notification_events (
    id          BIGSERIAL PRIMARY KEY,
    event_id    TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL,
    approval_id BIGINT NOT NULL REFERENCES approval_requests (id),
    site        TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE notification_deliveries (
    id              BIGSERIAL PRIMARY KEY,
    event_id        BIGINT NOT NULL REFERENCES notification_events (id),
    channel_id      BIGINT NOT NULL REFERENCES notification_channels (id),
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'delivered', 'failed', 'cancelled')),
    -- Attempts started; a claim counts one before sending, so a delivery cut off
    -- by a restart is neither lost nor retried forever.
    attempts        INT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- When the worker may take it next (pending only).
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_attempt_at TIMESTAMPTZ,
    last_error      TEXT,
    finished_at     TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (event_id, channel_id)
);

CREATE INDEX notification_deliveries_due
    ON notification_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX notification_deliveries_recent ON notification_deliveries (id DESC);
