-- Whether epstats.runs accepts every status this version records (`interrupted` came later).
SELECT coalesce(bool_or(strpos(pg_get_constraintdef(c.oid), 'interrupted') > 0), false)
FROM pg_catalog.pg_constraint c
WHERE c.conrelid = 'epstats.runs'::regclass AND c.conname = 'runs_status_check'
