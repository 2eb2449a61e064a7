-- Per task and target: the last successful run, the last run of any outcome, and how long
-- successful runs take (p90).
SELECT task,
       target,
       max(finished_at) FILTER (WHERE status = 'ok') AS last_ok,
       (array_agg(status ORDER BY started_at DESC))[1] AS last_status,
       (array_agg(error ORDER BY started_at DESC))[1] AS last_error,
       max(started_at) AS last_started,
       percentile_cont(0.9) WITHIN GROUP (
           ORDER BY extract(epoch FROM finished_at - started_at))
           FILTER (WHERE status = 'ok') AS p90_seconds
FROM epstats.runs
WHERE started_at > now() - interval '400 days'
GROUP BY task, target
