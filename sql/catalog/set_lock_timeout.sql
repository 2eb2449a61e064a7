-- The session's lock_timeout, for the statements that follow (CONCURRENTLY ones wait longer).
SELECT set_config('lock_timeout', %(timeout)s, false)
