-- One `view build --replace` of a rollup at a time, held across its build and swap; cleanup
-- never takes a new rollup for a leftover while this is held.
SELECT pg_try_advisory_lock(hashtext(%(key)s))
