-- Whom one backend is waiting for now (a lock, or an older transaction a CONCURRENTLY
-- statement waits out): pid, what it holds, its transaction's age and its query's first line.
SELECT a.pid,
       coalesce((SELECT string_agg(DISTINCT l.mode, '/') FROM pg_catalog.pg_locks l
                 WHERE l.pid = a.pid AND l.granted AND l.locktype = 'relation'),
                'an open transaction') AS mode,
       a.state,
       a.xact_start,
       extract(epoch FROM clock_timestamp() - a.xact_start)::float8 AS age,
       CASE WHEN length(split_part(a.query, E'\n', 1)) > 80
            THEN left(split_part(a.query, E'\n', 1), 79) || '…'
            ELSE split_part(a.query, E'\n', 1) END AS query
FROM unnest(pg_catalog.pg_blocking_pids(%(pid)s)) AS b(pid)
JOIN pg_catalog.pg_stat_activity a ON a.pid = b.pid
ORDER BY a.xact_start
