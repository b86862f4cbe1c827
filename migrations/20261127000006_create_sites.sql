-- Sites an admin defined in the portal, each kept as the TOML block it was
-- defined with (the sites file's format), beside the sites file's own.

CREATE TABLE sites (
    name       TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    added_by   TEXT NOT NULL,
    added_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
