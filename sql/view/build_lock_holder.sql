-- Who holds the build lock of a rollup (a running `view build --replace`), if anybody.
SELECT l.pid
FROM pg_catalog.pg_locks l
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
  AND l.classid = ((hashtext(%(key)s)::bigint >> 32) & 4294967295)::oid
  AND l.objid = (hashtext(%(key)s)::bigint & 4294967295)::oid
LIMIT 1
