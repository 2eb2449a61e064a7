-- (A fragment of retention's statements.) A raw row the rollup does not count: written by a transaction the snapshot %(snapshot)s, in
-- which the rollup's days equalled their raw rows, could not see.
NOT pg_visible_in_snapshot({xid8}, %(snapshot)s::pg_snapshot)
