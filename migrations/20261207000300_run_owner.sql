-- Who may act on a run: the operator who started it, until someone takes it over
-- (with a reason, audited as run.taken_over). Viewing stays open to every role.

ALTER TABLE runs ADD COLUMN owner BIGINT REFERENCES users (id);
UPDATE runs SET owner = started_by;
ALTER TABLE runs ALTER COLUMN owner SET NOT NULL;
