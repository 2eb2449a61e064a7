-- When an early stage of `analyze --in-stages` last committed statistics of the source table
-- at a low target (its rows' target is `<table> (stage n of m)`; the final stage's is the
-- table itself, and counts as an analyze): maintain's analyze stays due until a full ANALYZE
-- came after it.
SELECT max(finished_at) AS finished_at
FROM epstats.runs
WHERE task = 'analyze' AND status = 'ok' AND starts_with(target, %(prefix)s)
