-- Whom one backend is waiting for now (a lock, or an older transaction a CONCURRENTLY
-- statement waits out): pg_blocking_pids() sees every role's sessions; either way the backend
-- waits for the blocker to finish its transaction. Per blocker: its pid, role and
-- application (always visible), the locks it holds on the relations the backend works on
-- (`AccessShareLock and RowExclusiveLock on requests`; NULL: none), and (when this role may see them: its
-- own sessions, or pg_read_all_stats) its state, transaction start and age, and query's
-- first line.
SELECT a.pid,
       (SELECT string_agg(h.modes || ' on ' || h.relation::regclass::text, ', ')
        FROM (SELECT l.relation, string_agg(DISTINCT l.mode, ' and ') AS modes
              FROM pg_catalog.pg_locks l
              WHERE l.pid = a.pid AND l.granted AND l.locktype = 'relation'
                AND l.relation IN (SELECT w.relation FROM pg_catalog.pg_locks w
                                   WHERE w.pid = %(pid)s AND w.locktype = 'relation')
              GROUP BY l.relation) h) AS holds,
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
