-- Cleanup's guard: no `view build --replace` may run while its new rollup is dropped.
SELECT pg_advisory_xact_lock(hashtext(%(key)s))
