-- Per task and target: its latest finished runs (ok or failed, newest first, at most
-- %(runs)s of them), from which `check` tells a streak of failures.
SELECT task, target, status, error, started_at
FROM (
    SELECT task, target, status, error, started_at,
           row_number() OVER (PARTITION BY task, target ORDER BY started_at DESC, id DESC) AS n
    FROM epstats.runs
    WHERE status IN ('ok', 'failed')
      AND started_at > now() - interval '400 days'
) latest
WHERE n <= %(runs)s
ORDER BY task, target, n
