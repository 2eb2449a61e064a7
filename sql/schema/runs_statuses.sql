-- Upgrades epstats.runs in place to accept every status this version records.
ALTER TABLE epstats.runs DROP CONSTRAINT IF EXISTS runs_status_check,
    ADD CONSTRAINT runs_status_check
    CHECK (status IN ('running', 'ok', 'failed', 'skipped', 'interrupted'))
