-- What retention is retiring (the days, the snapshot their raw rows were counted in, the
-- partition being detached), recorded before the first row goes; NULL when done. A run that
-- resumes a half-deleted day reads it instead of comparing what is left of the day's rows.
UPDATE epstats.rollup_state SET retiring = %(retiring)s::jsonb WHERE view_name = %(view)s
