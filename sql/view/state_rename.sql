-- The state row travels with its relation: `view build --replace` wrote it for the new
-- relation, which now takes the rollup's name (and the old rollup's row); a rename keeps the
-- relation's oid, so relation_oid still marks it. The retention horizon never moves earlier, and
-- the day retention is retiring stays (the new rollup holds it as the old one did).
WITH moved AS (
    DELETE FROM epstats.rollup_state WHERE view_name = %(from_view)s
    RETURNING strategy, timezone, lookback, refreshed_at, watermark, settled_through,
              refresh_seconds, relation_oid, parameters, retired_through
)
INSERT INTO epstats.rollup_state AS s
    (view_name, strategy, timezone, lookback, refreshed_at, watermark, settled_through,
     refresh_seconds, relation_oid, parameters, retired_through)
SELECT %(view)s, strategy, timezone, lookback, refreshed_at, watermark, settled_through,
       refresh_seconds, relation_oid, parameters, retired_through
FROM moved
ON CONFLICT (view_name) DO UPDATE
SET strategy = excluded.strategy, timezone = excluded.timezone, lookback = excluded.lookback,
    refreshed_at = excluded.refreshed_at, watermark = excluded.watermark,
    settled_through = excluded.settled_through, refresh_seconds = excluded.refresh_seconds,
    relation_oid = excluded.relation_oid, parameters = excluded.parameters,
    retired_through = greatest(s.retired_through, excluded.retired_through),
    retiring = coalesce(excluded.retiring, s.retiring)
