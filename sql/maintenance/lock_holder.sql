-- Who holds the maintain lock: named in the exit-75 message, with the statement it runs (an
-- epstats killed mid-statement leaves it running on the server, holding the lock till it ends).
SELECT l.pid, a.backend_start, a.application_name, a.client_addr::text,
       a.state, left(a.query, 120) AS query, a.query_start, now() - a.query_start AS running
FROM pg_catalog.pg_locks l
LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.database = (
          SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
  AND l.classid = %(k1)s::oid AND l.objid = hashtext(%(key)s)::oid AND l.objsubid = 2
