-- Run once per connection: our timeouts for the session, and what the server is.
SELECT set_config('lock_timeout', %(lock_timeout)s, false),
       set_config('statement_timeout', %(statement_timeout)s, false),
       current_setting('server_version_num')::int,
       current_setting('server_version'),
       pg_is_in_recovery(),
       current_database(),
       current_user
