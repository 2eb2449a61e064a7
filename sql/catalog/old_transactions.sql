-- The open transactions of other sessions in this database that hold a snapshot, oldest
-- snapshot first: what a CONCURRENTLY statement waits out, named when nobody was seen
-- blocking it while it waited. Each transaction holds its virtualxid lock (pg_locks) and its
-- backend_xmin is shown for every role; another role's state, age and query only to a role
-- that may see them (its own sessions, or pg_read_all_stats). Sessions of no role
-- (autovacuum and other server processes) are never waited for.
SELECT a.pid, NULL::text AS holds, a.usename, a.application_name,
       a.state IS NULL AS hidden,
       a.state, a.xact_start,
       extract(epoch FROM clock_timestamp() - a.xact_start)::float8 AS age,
       CASE WHEN length(split_part(a.query, E'\n', 1)) > 80
            THEN left(split_part(a.query, E'\n', 1), 79) || '…'
            ELSE split_part(a.query, E'\n', 1) END AS query
FROM pg_catalog.pg_locks l
JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'virtualxid' AND l.granted AND l.pid <> pg_backend_pid()
  AND a.datid = (SELECT d.oid FROM pg_catalog.pg_database d
                 WHERE d.datname = pg_catalog.current_database())
  AND a.usesysid IS NOT NULL
  AND coalesce(a.backend_xmin, a.backend_xid) IS NOT NULL
ORDER BY pg_catalog.age(coalesce(a.backend_xmin, a.backend_xid)) DESC, a.pid
LIMIT 3
