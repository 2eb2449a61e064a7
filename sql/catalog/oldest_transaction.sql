-- The oldest open transaction of another client: what a CONCURRENTLY build waits for.
SELECT pid, 'an open transaction' AS mode, true AS granted, state, xact_start,
       extract(epoch FROM clock_timestamp() - xact_start)::float8 AS age,
       CASE WHEN length(split_part(query, E'\n', 1)) > 80
            THEN left(split_part(query, E'\n', 1), 79) || '…'
            ELSE split_part(query, E'\n', 1) END AS query
FROM pg_catalog.pg_stat_activity
WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid() AND backend_type = 'client backend'
ORDER BY xact_start
LIMIT 1
