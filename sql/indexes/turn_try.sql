-- epstats's index work on one table, one process at a time: a session-level advisory lock per
-- table, tried (never waited for inside a transaction, whose snapshot the holder's
-- CONCURRENTLY statement would wait out: a deadlock).
SELECT pg_catalog.pg_try_advisory_lock(%(k1)s, pg_catalog.hashtext('epstats.indexes:' || %(oid)s::text))
