-- How far behind the data of this server is, for a report read here (NULL on a primary).
-- `lag_seconds`: now() minus the commit time of the last transaction replayed, never below 0.
-- On an idle primary that age grows although nothing is missing, so `caught_up` says whether
-- the standby has replayed all the WAL it received while its WAL receiver runs (then nothing
-- the primary sent is missing: the lag is 0). A role without pg_read_all_stats sees the
-- receiver's pid but not its status: a receiver it sees counts as running.
SELECT pg_is_in_recovery() AS in_recovery,
       -- NULL when it has replayed no commit since it started (greatest() would skip the NULL)
       CASE WHEN pg_last_xact_replay_timestamp() IS NOT NULL
            THEN greatest(0, extract(epoch FROM now() - pg_last_xact_replay_timestamp()))::float8
       END AS lag_seconds,
       EXISTS (SELECT FROM pg_catalog.pg_stat_wal_receiver
               WHERE status IS NULL OR status = 'streaming') AS receiving,
       coalesce(pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn(), false) AS replayed_all
