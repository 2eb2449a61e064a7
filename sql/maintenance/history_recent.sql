-- Per task and target: its latest finished runs (ok or failed, newest first, at most
-- %(runs)s of them), from which `check` tells a streak of failures, with the kind of each
-- failure (read through to_jsonb: NULL, and the error's words judged, before `epstats init`
-- has added the column).
SELECT task, target, status, error, failure, started_at
FROM (
    SELECT r.task, r.target, r.status, r.error, to_jsonb(r) ->> 'failure' AS failure,
           r.started_at,
           row_number() OVER (PARTITION BY r.task, r.target
                              ORDER BY r.started_at DESC, r.id DESC) AS n
    FROM epstats.runs r
    WHERE r.status IN ('ok', 'failed')
      AND r.started_at > now() - interval '400 days'
) latest
WHERE n <= %(runs)s
ORDER BY task, target, n
