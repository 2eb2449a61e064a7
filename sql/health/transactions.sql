-- What holds back xmin in this database (vacuum's horizon; what CREATE INDEX CONCURRENTLY
-- waits for): open transactions of client sessions (idle in transaction included; epstats'
-- own sessions left out), sessions idle in a failed transaction (they hold nothing back, but
-- wait for a ROLLBACK: aged from their error, as the server forgets when the transaction
-- began), prepared transactions, and replication slots with an xmin (an active one's is its
-- standby's oldest snapshot, hot_standby_feedback). age_seconds is NULL for a slot when the
-- server does not record since when it is inactive (before PostgreSQL 17), and for an active
-- one; `hidden` counts sessions of other roles this role cannot see (pg_read_all_stats /
-- pg_monitor shows them), `role` is this role (to name in the GRANT).
WITH holders AS (
    SELECT CASE a.state WHEN 'idle in transaction' THEN 'idle in transaction'
                        WHEN 'idle in transaction (aborted)' THEN 'failed transaction'
                        ELSE 'transaction' END AS kind,
           a.pid, a.usename::text AS usename, a.application_name, NULL::text AS name,
           extract(epoch FROM now() - coalesce(a.xact_start, a.state_change))::float8
             AS age_seconds,
           age(a.backend_xmin)::bigint AS xid_age
    FROM pg_catalog.pg_stat_activity a
    WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
      AND a.backend_type = 'client backend'
      AND (a.xact_start IS NOT NULL OR a.state = 'idle in transaction (aborted)')
      AND NOT starts_with(coalesce(a.application_name, ''), 'epstats')
    UNION ALL
    SELECT 'prepared transaction', NULL, p.owner::text, NULL, p.gid,
           extract(epoch FROM now() - p.prepared)::float8, age(p.transaction)::bigint
    FROM pg_catalog.pg_prepared_xacts p
    WHERE p.database = current_database()
    UNION ALL
    SELECT CASE WHEN s.active THEN 'active replication slot' ELSE 'replication slot' END,
           s.active_pid, NULL, NULL, s.slot_name::text,
           CASE WHEN NOT s.active THEN NULL::float8 END, age(s.xmin)::bigint
    FROM pg_catalog.pg_replication_slots s
    WHERE s.xmin IS NOT NULL
      AND (s.database IS NULL OR s.database = current_database())
)
SELECT h.*,
       (SELECT count(*) FROM pg_catalog.pg_stat_activity a
        WHERE a.datname = current_database() AND a.backend_type IS NULL
          AND a.pid <> pg_backend_pid()
          AND NOT starts_with(coalesce(a.application_name, ''), 'epstats'))::int AS hidden,
       current_setting('autovacuum_freeze_max_age')::int AS freeze_max_age,
       quote_ident(current_user) AS role
FROM (SELECT 1) AS one
LEFT JOIN holders h ON true
ORDER BY h.age_seconds DESC NULLS FIRST
