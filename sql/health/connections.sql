-- Client connections to the whole server against max_connections less the slots reserved
-- for superusers. Sessions of other roles this role cannot see count when they are in a
-- database (their backend_type is hidden too).
SELECT (SELECT count(*) FROM pg_catalog.pg_stat_activity
        WHERE backend_type = 'client backend'
           OR (backend_type IS NULL AND datname IS NOT NULL))::int AS used,
       current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int AS reserved
