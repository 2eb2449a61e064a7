-- On a primary: each standby streaming from it, with its replay lag (NULL once it has
-- caught up and nothing new was written) and how many bytes of WAL it has still to replay;
-- and what tells apart standbys of the same application_name (pg_basebackup -R standbys all
-- connect as "walreceiver"): the slot it streams through, its address and port, its pid.
-- A role without pg_read_all_stats sees the rows but not their details (state is NULL).
SELECT coalesce(nullif(r.application_name, ''), host(r.client_addr), 'pid ' || r.pid) AS name,
       r.pid,
       host(r.client_addr) AS client_addr,
       nullif(r.client_port, -1) AS client_port,
       s.slot_name::text AS slot,
       r.state,
       extract(epoch FROM r.replay_lag)::float8 AS lag_seconds,
       pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn)::bigint AS behind_bytes
FROM pg_catalog.pg_stat_replication r
LEFT JOIN pg_catalog.pg_replication_slots s ON s.active_pid = r.pid
ORDER BY r.replay_lag DESC NULLS LAST, name, r.pid
