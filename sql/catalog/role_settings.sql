-- What a session of this role in this database starts with, before epstats sets its own values:
-- the value RESET would restore, and whether it comes from ALTER ROLE / ALTER DATABASE ... SET
-- (the most specific wins) or from the server (postgresql.conf, its default, or the client).
WITH bound AS (
    SELECT split_part(c, '=', 1) AS name,
           CASE WHEN d.setrole <> 0 AND d.setdatabase <> 0 THEN 1
                WHEN d.setrole <> 0 THEN 2
                WHEN d.setdatabase <> 0 THEN 3
                ELSE 4 END AS rank
    FROM pg_db_role_setting d
    CROSS JOIN LATERAL unnest(d.setconfig) AS c
    WHERE d.setrole IN (0, (SELECT oid FROM pg_roles WHERE rolname = session_user))
      AND d.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
)
SELECT s.name,
       s.reset_val AS value,
       s.unit,
       CASE (SELECT min(b.rank) FROM bound b WHERE b.name = s.name)
            WHEN 1 THEN 'role in database'
            WHEN 2 THEN 'role'
            WHEN 3 THEN 'database'
            WHEN 4 THEN 'all roles'
            ELSE 'server' END AS source
FROM pg_settings s
WHERE s.name IN ('statement_timeout', 'lock_timeout', 'idle_in_transaction_session_timeout',
                 'transaction_timeout', 'default_transaction_read_only')
ORDER BY s.name
