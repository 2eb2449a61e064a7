-- The oldest open transaction of another client: what a CONCURRENTLY build waits for.
SELECT pid, 'an open transaction' AS mode, true AS granted, state, xact_start,
       left(query, 80) AS query
FROM pg_catalog.pg_stat_activity
WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid() AND backend_type = 'client backend'
ORDER BY xact_start
LIMIT 1
