-- One maintain at a time per source table: a session-level advisory lock, never waited for.
SELECT pg_try_advisory_lock(%(k1)s, hashtext(%(key)s))
