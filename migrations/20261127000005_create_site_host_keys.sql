-- Host keys an admin trusted in the portal (imported from an OpenSSH known_hosts
-- file or confirmed from a key the portal was shown), on top of each site's
-- known_hosts file. Applied to the executor at start and when added.

CREATE TABLE site_host_keys (
    id          BIGSERIAL PRIMARY KEY,
    site        TEXT NOT NULL,
    -- One known_hosts line, exactly as trusted.
    line        TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    source      TEXT NOT NULL CHECK (source IN ('import', 'confirmed')),
    added_by    TEXT NOT NULL,
    added_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (site, line)
);
