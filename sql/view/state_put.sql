-- Written in the build's or refresh's own transaction: refreshed_at is its start, and
-- refresh_seconds how long it has run; the watermark is the as-of the rollup itself records.
-- relation_oid (the relation at {view} now) and parameters mark the rollup as epstats's.
-- retired_through (the retention horizon) is only ever moved later: a refresh (NULL here)
-- keeps the one retention recorded meanwhile, a build --replace carries the old one's.
INSERT INTO epstats.rollup_state AS s
    (view_name, strategy, timezone, lookback, refreshed_at, watermark, settled_through,
     refresh_seconds, relation_oid, parameters, retired_through)
SELECT %(view)s, %(strategy)s, %(timezone)s, %(lookback)s, now(),
       (SELECT as_of FROM {view} WHERE endpoint IS NULL AND day IS NULL), %(settled_through)s,
       extract(epoch FROM clock_timestamp() - now())::double precision,
       to_regclass(format('%%I.%%I', %(schema)s::text, %(name)s::text))::oid,
       %(parameters)s::jsonb, %(retired_through)s::date
ON CONFLICT (view_name) DO UPDATE
SET strategy = excluded.strategy, timezone = excluded.timezone, lookback = excluded.lookback,
    refreshed_at = excluded.refreshed_at, watermark = excluded.watermark,
    settled_through = excluded.settled_through, refresh_seconds = excluded.refresh_seconds,
    relation_oid = excluded.relation_oid, parameters = excluded.parameters,
    retired_through = greatest(s.retired_through, excluded.retired_through)
