-- The settings advise recommends, as a new session of this role starts with them: reset_val,
-- not setting (advise's own read-only session has turned jit off for itself), with the unit
-- the value is counted in, where it comes from and the context (postmaster: a restart).
-- Where this session changed a setting, pg_settings.source says 'session': the source of the
-- value it started with is then ALTER ROLE / DATABASE ... SET's, the default's or the server's.
SELECT s.name,
       s.reset_val AS value,
       s.unit,
       CASE WHEN s.source <> 'session' THEN s.source
            WHEN EXISTS (SELECT 1
                         FROM pg_db_role_setting d
                         CROSS JOIN LATERAL unnest(d.setconfig) AS c
                         WHERE split_part(c, '=', 1) = s.name
                           AND d.setrole IN (0, (SELECT oid FROM pg_roles
                                                 WHERE rolname = session_user))
                           AND d.setdatabase IN (0, (SELECT oid FROM pg_database
                                                     WHERE datname = current_database())))
                 THEN 'role or database'
            WHEN s.reset_val = s.boot_val THEN 'default'
            ELSE 'server' END AS source,
       s.context
FROM pg_settings s
WHERE s.name = ANY(%(names)s)
ORDER BY s.name
