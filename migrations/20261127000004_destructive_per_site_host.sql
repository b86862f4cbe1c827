-- Host names repeat across sites (every CPS site has a pcrfclient01): the rule "one
-- running destructive step per host" is per site and host.

ALTER TABLE run_steps ADD COLUMN site TEXT;
UPDATE run_steps s SET site = r.site FROM runs r WHERE r.id = s.run_id;
ALTER TABLE run_steps ALTER COLUMN site SET NOT NULL;

DROP INDEX run_steps_one_destructive_per_host;
CREATE UNIQUE INDEX run_steps_one_destructive_per_host
    ON run_steps (site, host) WHERE destructive AND state = 'running' AND host IS NOT NULL;
