-- Whom one backend is waiting for now (a lock, or an older transaction a CONCURRENTLY
-- statement waits out): pg_blocking_pids() sees every role's sessions. Per blocker: its pid,
-- role and application (always visible), what it holds, and (when this role may see them:
-- its own sessions, or pg_read_all_stats) its state, transaction age and query's first line.
SELECT a.pid,
       coalesce((SELECT string_agg(DISTINCT l.mode, '/') FROM pg_catalog.pg_locks l
                 WHERE l.pid = a.pid AND l.granted AND l.locktype = 'relation'),
                'an open transaction') AS mode,
       a.usename,
       a.application_name,
       a.state IS NULL AS hidden,
       a.state,
       a.xact_start,
       extract(epoch FROM clock_timestamp() - a.xact_start)::float8 AS age,
       CASE WHEN length(split_part(a.query, E'\n', 1)) > 80
            THEN left(split_part(a.query, E'\n', 1), 79) || '…'
            ELSE split_part(a.query, E'\n', 1) END AS query
FROM unnest(pg_catalog.pg_blocking_pids(%(pid)s)) AS b(pid)
JOIN pg_catalog.pg_stat_activity a ON a.pid = b.pid
ORDER BY a.xact_start NULLS LAST, a.pid
