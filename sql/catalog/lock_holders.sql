-- Who else holds (or waits for) a lock on a relation (holds: `ShareLock on public.requests`):
-- named when our lock_timeout expires.
-- pg_locks shows every role's locks; another role's state, age and query only to a role that
-- may see them (its own sessions, or pg_read_all_stats).
SELECT l.pid, l.mode || ' on ' || l.relation::regclass::text AS holds, l.granted, a.usename, a.application_name,
       a.state IS NULL AS hidden,
       a.state, a.xact_start,
       extract(epoch FROM clock_timestamp() - a.xact_start)::float8 AS age,
       CASE WHEN length(split_part(a.query, E'\n', 1)) > 80
            THEN left(split_part(a.query, E'\n', 1), 79) || '…'
            ELSE split_part(a.query, E'\n', 1) END AS query
FROM pg_catalog.pg_locks l
LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'relation' AND l.relation = %(oid)s AND l.pid <> pg_backend_pid()
  AND l.mode = ANY(%(modes)s)
ORDER BY l.granted DESC, a.xact_start NULLS LAST, l.pid
