-- Index builds running now on one table (ours or anybody's): leftovers of these are not ours to drop.
SELECT p.pid, p.index_relid, p.command, p.phase
FROM pg_catalog.pg_stat_progress_create_index p
WHERE p.relid = %(oid)s AND p.pid <> pg_backend_pid()
