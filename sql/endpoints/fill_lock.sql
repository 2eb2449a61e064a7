-- One fill of a rule's mappings at a time, never waited for: in the fill's transaction, before
-- it (endpoints/fill maps nothing unless this transaction holds the lock, so that its INSERT,
-- whose snapshot is taken after the lock, sees every key another fill added and needs no
-- ON CONFLICT, which doubles what an insert costs).
SELECT pg_try_advisory_xact_lock(
    %(k1)s, hashtext('epstats.endpoint_map:' || %(rule)s::bigint::text)
)
