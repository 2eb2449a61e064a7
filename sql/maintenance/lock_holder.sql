-- Who holds the maintain lock: named in the exit-75 message.
SELECT l.pid, a.backend_start, a.application_name, a.client_addr::text
FROM pg_catalog.pg_locks l
LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.database = (
          SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
  AND l.classid = %(k1)s::oid AND l.objid = hashtext(%(key)s)::oid AND l.objsubid = 2
