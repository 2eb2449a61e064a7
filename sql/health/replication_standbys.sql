-- On a primary: each standby streaming from it, with its replay lag (NULL once it has
-- caught up and nothing new was written) and how many bytes of WAL it has still to replay.
-- A role without pg_read_all_stats sees the rows but not their details (state is NULL).
SELECT coalesce(nullif(application_name, ''), client_addr::text, 'pid ' || pid) AS name,
       state,
       extract(epoch FROM replay_lag)::float8 AS lag_seconds,
       pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint AS behind_bytes
FROM pg_catalog.pg_stat_replication
ORDER BY replay_lag DESC NULLS LAST, name
