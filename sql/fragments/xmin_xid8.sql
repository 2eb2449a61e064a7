-- The row's inserting transaction as a full xid8, from its 32-bit xmin and the epoch of the
-- snapshot's xmax: the signed 32-bit distance from xmax's low 32 bits, so it holds for xids
-- before and after xmax and across an epoch boundary.
greatest(
    pg_snapshot_xmax(%(snapshot)s::pg_snapshot)::text::bigint
    + mod(xmin::text::bigint - mod(pg_snapshot_xmax(%(snapshot)s::pg_snapshot)::text::bigint,
                                   4294967296) + 6442450944, 4294967296) - 2147483648,
    3)::text::xid8
