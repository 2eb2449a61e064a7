-- epstats' own values for the settings a role or database may bring along (ALTER ROLE ... SET),
-- so that what epstats does never depends on them. local = false: for the session (a direct
-- connection or a session pool); local = true: for the current transaction only (through a
-- pooler: sent with each statement, in the same implicit transaction). jit NULL: left as the
-- server or role has it (changing sessions); read-only ones turn it off (db.READ_ONLY_JIT).
-- PostgreSQL 17 added transaction_timeout.
SELECT set_config('statement_timeout', %(statement_timeout)s, %(local)s),
       set_config('lock_timeout', %(lock_timeout)s, %(local)s),
       -- how values come back, whatever another client of a pool or the role set
       set_config('IntervalStyle', %(IntervalStyle)s, %(local)s),
       set_config('DateStyle', %(DateStyle)s, %(local)s),
       set_config('extra_float_digits', %(extra_float_digits)s, %(local)s),
       set_config('idle_in_transaction_session_timeout', %(idle_in_transaction_session_timeout)s,
                  %(local)s),
       set_config('jit', coalesce(%(jit)s::text, current_setting('jit')), %(local)s),
       set_config('transaction_timeout', %(transaction_timeout)s, %(local)s)
