-- What holds back xmin in this database (vacuum's horizon; what CREATE INDEX CONCURRENTLY
-- waits for): open transactions of client sessions (idle in transaction included; epstats'
-- own sessions left out), prepared transactions, and replication slots with an xmin.
-- A slot's age is how long it has been inactive (inactive_since, PostgreSQL 17 on);
-- `hidden` counts sessions of other roles this role cannot see
-- (pg_read_all_stats / pg_monitor shows them).
WITH holders AS (
    SELECT CASE WHEN a.state IN ('idle in transaction', 'idle in transaction (aborted)')
                THEN 'idle in transaction' ELSE 'transaction' END AS kind,
           a.pid, a.usename::text AS usename, a.application_name, NULL::text AS name,
           extract(epoch FROM now() - a.xact_start)::float8 AS age_seconds,
           age(a.backend_xmin)::bigint AS xid_age
    FROM pg_catalog.pg_stat_activity a
    WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
      AND a.backend_type = 'client backend' AND a.xact_start IS NOT NULL
      AND NOT starts_with(coalesce(a.application_name, ''), 'epstats')
    UNION ALL
    SELECT 'prepared transaction', NULL, p.owner::text, NULL, p.gid,
           extract(epoch FROM now() - p.prepared)::float8, age(p.transaction)::bigint
    FROM pg_catalog.pg_prepared_xacts p
    WHERE p.database = current_database()
    UNION ALL
    SELECT 'replication slot', s.active_pid, NULL, NULL, s.slot_name::text,
           extract(epoch FROM now() - s.inactive_since)::float8, age(s.xmin)::bigint
    FROM pg_catalog.pg_replication_slots s
    WHERE s.xmin IS NOT NULL AND NOT s.active
      AND (s.database IS NULL OR s.database = current_database())
)
SELECT h.*,
       (SELECT count(*) FROM pg_catalog.pg_stat_activity a
        WHERE a.datname = current_database() AND a.backend_type IS NULL
          AND a.pid <> pg_backend_pid()
          AND NOT starts_with(coalesce(a.application_name, ''), 'epstats'))::int AS hidden
FROM (SELECT 1) AS one
LEFT JOIN holders h ON true
ORDER BY h.age_seconds DESC NULLS FIRST
