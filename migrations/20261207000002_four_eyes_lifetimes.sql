-- Four eyes that nobody can get round by waiting: a request for approval expires
-- when it is not decided in time, and break glass switches itself off.
ALTER TABLE approval_requests ADD COLUMN decide_by TIMESTAMPTZ;
UPDATE approval_requests SET decide_by = requested_at + interval '24 hours' WHERE state = 'pending';
CREATE INDEX approval_requests_pending_decide_by
    ON approval_requests (decide_by) WHERE state = 'pending';

ALTER TABLE site_break_glass ADD COLUMN expires_at TIMESTAMPTZ;
UPDATE site_break_glass SET expires_at = changed_at + interval '1 hour';
ALTER TABLE site_break_glass ALTER COLUMN expires_at SET NOT NULL;
