-- The rollup: its data rows (dated up to now()) and, from the same statement and so the same
-- snapshot, the one bookkeeping row (endpoint and day NULL): the instant it is complete
-- through and the snapshot it read with. Inside REFRESH MATERIALIZED VIEW, too, now() is the
-- transaction's start and pg_current_snapshot() the snapshot the query reads with.
{aggregate}
UNION ALL
SELECT NULL::text, NULL::date, 0::bigint, NULL::double precision, NULL::double precision,
       NULL::double precision, 0::bigint, NULL::double precision, 0::bigint,
       NULL::timestamptz, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, now(),
       pg_current_snapshot()::text, NULL::integer[], NULL::bigint[]
