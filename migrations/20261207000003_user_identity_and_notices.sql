-- Who a person is, beyond the account name: one person holding both an admin and
-- a supervisor account could approve their own work, so the Users page warns
-- when two such accounts share an e-mail address or a display name.
ALTER TABLE users ADD COLUMN email TEXT CHECK (email IS NULL OR (length(email) BETWEEN 3 AND 254 AND email LIKE '%_@_%'));
ALTER TABLE users ADD COLUMN display_name TEXT CHECK (display_name IS NULL OR length(btrim(display_name)) BETWEEN 1 AND 100);

-- The newest audit event of the security notices (changes other admins made to
-- accounts and break glass) that this admin has acknowledged.
ALTER TABLE users ADD COLUMN notices_seen_id BIGINT NOT NULL DEFAULT 0;
