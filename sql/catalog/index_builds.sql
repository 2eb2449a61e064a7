-- Index builds running now on one table (ours or anybody's): leftovers of these are not ours to drop.
-- Who runs each (application and role; NULL where the role may not see it).
SELECT p.pid, p.index_relid, p.command, p.phase, a.application_name, a.usename AS role
FROM pg_catalog.pg_stat_progress_create_index p
LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = p.pid
WHERE p.relid = %(oid)s AND p.pid <> pg_backend_pid()
