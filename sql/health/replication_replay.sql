-- On a standby: whether a WAL receiver streams, whether received WAL waits to be replayed,
-- and the age of the last transaction replayed (the lag while WAL is still arriving).
SELECT EXISTS (SELECT FROM pg_catalog.pg_stat_wal_receiver
               WHERE status = 'streaming') AS receiving,
       coalesce(pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn(), false) AS behind,
       extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 AS lag_seconds,
       pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::bigint
         AS behind_bytes
