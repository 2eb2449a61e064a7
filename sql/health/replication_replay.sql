-- On a standby: whether a WAL receiver streams, whether received WAL waits to be replayed,
-- and the age of the last transaction replayed (the lag while WAL is still arriving). A role
-- without pg_read_all_stats sees the receiver's pid but not its status (`receiver_hidden`);
-- `role` is this role (to name in the GRANT).
SELECT EXISTS (SELECT FROM pg_catalog.pg_stat_wal_receiver
               WHERE status = 'streaming') AS receiving,
       EXISTS (SELECT FROM pg_catalog.pg_stat_wal_receiver
               WHERE status IS NULL) AS receiver_hidden,
       coalesce(pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn(), false) AS behind,
       extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 AS lag_seconds,
       pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::bigint
         AS behind_bytes,
       quote_ident(current_user) AS role
