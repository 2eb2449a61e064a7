-- The epstats process whose index work on a table holds its advisory lock (turn_try): named
-- while another waits for its turn, and when that one gives up.
SELECT l.pid, NULL::text AS holds, a.usename, a.application_name,
       a.state IS NULL AS hidden,
       a.state, a.xact_start,
       extract(epoch FROM clock_timestamp() - a.xact_start)::float8 AS age,
       CASE WHEN length(split_part(a.query, E'\n', 1)) > 80
            THEN left(split_part(a.query, E'\n', 1), 79) || '…'
            ELSE split_part(a.query, E'\n', 1) END AS query,
       %(oid)s::oid::regclass::text AS relation
FROM pg_catalog.pg_locks l
LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
  AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d
                    WHERE d.datname = pg_catalog.current_database())
  AND l.classid = %(k1)s::oid
  AND l.objid = pg_catalog.hashtext('epstats.indexes:' || %(oid)s::text)::oid
