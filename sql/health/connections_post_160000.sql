-- Client connections to the whole server against max_connections less the reserved slots:
-- superuser_reserved_connections, and from PostgreSQL 16 on reserved_connections (for roles
-- with pg_use_reserved_connections). Sessions of other roles this role cannot see count when
-- they are in a database (their backend_type is hidden too).
SELECT (SELECT count(*) FROM pg_catalog.pg_stat_activity
        WHERE backend_type = 'client backend'
           OR (backend_type IS NULL AND datname IS NOT NULL))::int AS used,
       current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int
         + current_setting('reserved_connections')::int AS reserved
