-- Per task and target: its latest finished runs (ok or failed, newest first, at most
-- %(runs)s of them), from which `check` tells a streak of failures, with the kind of each
-- failure (read through to_jsonb: NULL, and the error's words judged, before `epstats init`
-- has added the column). A build of the rollup (`view build`, plain or the swap of --replace)
-- that succeeded is also a success of its refresh. A failure that left something behind is
-- judged as the failure it was once that is gone (a cleanup task succeeded after it, or
-- nothing is left: not %(remaining)s): a busy lock when each of its failed steps (rows of the
-- same process within its span), or itself, failed with waits.LockNotGranted's words.
SELECT task, target, status, error, started_at,
       CASE WHEN NOT coalesce(failure = 'left_behind',
                              status = 'failed' AND error ILIKE '%%left behind%%')
              OR (%(remaining)s AND NOT EXISTS (
                      SELECT 1 FROM epstats.runs c
                      WHERE c.task = 'cleanup' AND c.target LIKE 'leftovers of %%'
                        AND c.status = 'ok' AND c.started_at >= latest.finished_at))
            THEN failure
            WHEN coalesce((SELECT bool_and(s.error ~ '^lock not (granted|available)')
                           FROM epstats.runs s
                           WHERE s.task = latest.task AND s.target <> latest.target
                             AND s.status = 'failed' AND (to_jsonb(s) ->> 'pid')::int = pid
                             AND s.started_at BETWEEN latest.started_at AND latest.finished_at),
                          error ~ '^lock not (granted|available)')
            THEN 'lock_busy'
            ELSE 'error' END AS failure
FROM (
    SELECT r.*, row_number() OVER (PARTITION BY r.task, r.target
                                   ORDER BY r.started_at DESC, r.id DESC) AS n
    FROM (
        SELECT x.id, x.task, x.target, x.status, x.error, to_jsonb(x) ->> 'failure' AS failure,
               x.started_at, x.finished_at, (to_jsonb(x) ->> 'pid')::int AS pid
        FROM epstats.runs x
        UNION ALL
        SELECT b.id, 'refresh', b.target, b.status, NULL, NULL, b.started_at, b.finished_at,
               NULL
        FROM epstats.runs b
        WHERE b.task IN ('build', 'swap') AND b.status = 'ok'
    ) r
    WHERE r.status IN ('ok', 'failed')
      AND r.started_at > now() - interval '400 days'
) latest
WHERE n <= %(runs)s
ORDER BY task, target, n
