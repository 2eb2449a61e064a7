-- Refreshes of one rollup run one at a time; waiting here holds no lock the API needs.
SELECT pg_advisory_xact_lock(hashtext(%(key)s))
